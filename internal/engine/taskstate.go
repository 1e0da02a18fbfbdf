package engine

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"path/filepath"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddystream/eddy/internal/changelog"
	"github.com/eddystream/eddy/internal/task"
	"github.com/eddystream/eddy/processor"
	"github.com/eddystream/eddy/state"
)

// lockWait is how long a task waits for its state directory's lock: long
// enough for a worker of this process that is closing the task to let go.
const lockWait = 10 * time.Second

const checkpointFile = ".checkpoint"

// checkpointRecords is how many changelog offsets a task's stores move
// past their checkpoint file before the file is written again, besides
// when the task closes. Kafka Streams uses the same threshold (under
// exactly-once). A checkpoint file older than the stores is still valid:
// a restore from it replays changelog records the stores already hold,
// which leaves them as they were (each record is a key's whole value).
const checkpointRecords = 10_000

// taskStores are the open stores of one task, active or standby, with the
// lock on its state directory. They decide what happens to the task's
// local state: openTaskStores keeps what a valid checkpoint vouches for
// and wipes the rest, wipe starts over when the checkpoint turns out to
// be ahead of the changelog, and advance and writeCheckpoint keep the
// checkpoint monotonic. One goroutine at a time owns them: the restore
// goroutine while an active task restores, the worker's loop while it
// runs, the closer while it closes, the standby manager for a standby.
type taskStores struct {
	e    *Engine
	log  *slog.Logger
	id   processor.TaskID
	dir  string
	lock *dirLock
	// logged maps each logged store to its changelog partition;
	// persistent marks those whose data survives on disk.
	logged     map[string]changelog.TopicPartition
	persistent map[string]bool
	suppliers  map[string]state.BackendSupplier
	backends   map[string]state.Backend
	// retention maps each window or session store to its retention: the
	// segments state.ExpireSegments drops after a restore and as a
	// standby replays.
	retention map[string]time.Duration
	// checkpoint is the changelog offset each persistent store's data
	// matches (or is ahead of, since the checkpoint file is written only
	// now and then): what a restore starts from.
	checkpoint changelog.Checkpoint
	written    bool  // checkpoint is on disk as is
	sinceWrite int64 // offsets the checkpoint moved since it was written
}

// openTaskStores locks the task's directory, reads its checkpoint and opens
// its stores. lockWait bounds the wait for the directory's lock. Persistent
// stores that no checkpoint vouches for, or that are corrupt, start empty.
func (e *Engine) openTaskStores(id processor.TaskID, log *slog.Logger, lockWait time.Duration) (*taskStores, error) {
	spec := e.specs[id.Subtopology]
	if spec == nil {
		return nil, fmt.Errorf("task %s: the topology has no sub-topology %d: is another application using this application id?", id, id.Subtopology)
	}
	ts := &taskStores{
		e:          e,
		log:        log,
		id:         id,
		dir:        taskDir(e.cfg.StateDir, e.cfg.ApplicationID, id),
		logged:     map[string]changelog.TopicPartition{},
		persistent: map[string]bool{},
		suppliers:  map[string]state.BackendSupplier{},
		backends:   map[string]state.Backend{},
		retention:  map[string]time.Duration{},
		checkpoint: changelog.Checkpoint{},
	}
	var err error
	if ts.lock, err = lockTaskDir(ts.dir, lockWait); err != nil {
		return nil, fmt.Errorf("task %s: %w", id, err)
	}
	cp := readCheckpoint(log, id, ts.dir)
	for _, s := range spec.Stores {
		tp := changelog.TopicPartition{Topic: s.ChangelogTopic, Partition: id.Partition}
		if s.ChangelogTopic != "" {
			ts.logged[s.Name] = tp
		}
		ts.suppliers[s.Name] = e.supplier(s)
		ts.persistent[s.Name] = ts.suppliers[s.Name].Persistent()
		if s.Kind != state.KindKeyValue && s.Retention > 0 {
			ts.retention[s.Name] = s.Retention
		}
		off, valid := cp[tp]
		if s.ChangelogTopic == "" {
			// Local data of a store without a changelog is unrelated to
			// anything this task can restore: start from nothing.
			if err := ts.destroy(s.Name); err != nil {
				ts.close()
				return nil, fmt.Errorf("task %s: %w", id, err)
			}
		}
		corrupt, err := ts.open(s.Name)
		if err != nil {
			ts.close()
			return nil, fmt.Errorf("task %s: open store %q (%s): %w", id, s.Name, ts.suppliers[s.Name].Name(), err)
		}
		if !ts.persistent[s.Name] || s.ChangelogTopic == "" || corrupt {
			continue
		}
		// A store that records its changelog offset with its data
		// (state.OffsetRecorder, KIP-1035) says itself how far it is:
		// behind the checkpoint file after a crash lost the tail of its
		// write-ahead log, ahead of it since the file is written only now
		// and then. It restores from there, with or without a file.
		if rec, ok := ts.backends[s.Name].(state.OffsetRecorder); ok {
			next, recorded, err := rec.RecordedOffset()
			if err != nil {
				ts.close()
				return nil, fmt.Errorf("task %s: store %q: read its recorded changelog offset: %w", id, s.Name, err)
			}
			if recorded {
				if valid && next < off {
					log.Warn("store is behind its checkpoint (its write-ahead log lost its tail in a crash?); restoring the tail from the changelog", "task", id, "store", s.Name, "store_offset", next, "checkpoint", off)
				}
				ts.checkpoint[tp] = next
				continue
			}
		}
		if !valid {
			// Local data that no checkpoint vouches for may be ahead of, or
			// unrelated to, the changelog: start from nothing.
			if err := ts.wipeStore(s.Name); err != nil {
				ts.close()
				return nil, fmt.Errorf("task %s: %w", id, err)
			}
			continue
		}
		ts.checkpoint[tp] = off
	}
	ts.written = len(ts.checkpoint) > 0 && maps.Equal(ts.checkpoint, cp)
	return ts, nil
}

// open opens the backend of store, wiping it first if it is corrupt (and
// then reporting so).
func (ts *taskStores) open(store string) (corrupt bool, err error) {
	sup := ts.suppliers[store]
	if h := ts.e.testing.beforeOpenStore; h != nil && sup.Persistent() {
		h(store)
	}
	dir := filepath.Join(ts.dir, store)
	b, err := sup.Open(dir, ts.log)
	if errors.Is(err, state.ErrCorruptStore) {
		ts.log.Warn("store is corrupt; wiping it and restoring it in full from its changelog", "task", ts.id, "store", store, "backend", sup.Name(), "err", err)
		corrupt = true
		if err = sup.Destroy(dir); err == nil {
			b, err = sup.Open(dir, ts.log)
		}
	}
	if err != nil {
		return corrupt, err
	}
	ts.backends[store] = b
	return corrupt, nil
}

// destroy removes the data of a persistent store (closed).
func (ts *taskStores) destroy(store string) error {
	if !ts.persistent[store] {
		return nil
	}
	return ts.suppliers[store].Destroy(filepath.Join(ts.dir, store))
}

// wipeStore empties one open store: closed, destroyed and opened again.
func (ts *taskStores) wipeStore(store string) error {
	if b := ts.backends[store]; b != nil {
		if err := b.Close(); err != nil {
			return fmt.Errorf("close store %q: %w", store, err)
		}
		delete(ts.backends, store)
	}
	if err := ts.destroy(store); err != nil {
		return err
	}
	if _, err := ts.open(store); err != nil {
		return fmt.Errorf("open store %q: %w", store, err)
	}
	return nil
}

// wipe empties every store and forgets the checkpoint, for a task whose
// checkpoint is ahead of its changelog (the topic was recreated, or the
// stores hold writes that never committed): neither can be trusted, and
// the stores restore in full. The directory stays locked.
func (ts *taskStores) wipe() error {
	var errs []error
	if err := changelog.DeleteCheckpoint(filepath.Join(ts.dir, checkpointFile)); err != nil {
		errs = append(errs, err)
	}
	ts.checkpoint = changelog.Checkpoint{}
	ts.written, ts.sinceWrite = true, 0
	ts.e.forgetOffsetSum(ts.id)
	for name := range ts.backends {
		if err := ts.wipeStore(name); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("task %s: wipe its stores: %w", ts.id, err)
	}
	return nil
}

// advance moves the checkpoint of each persistent store to the changelog
// offset in ends, if that is further: a checkpoint never moves backwards.
// The stores must hold (durably, before the checkpoint is written) the
// state up to those offsets.
func (ts *taskStores) advance(ends map[changelog.TopicPartition]int64) {
	for store, tp := range ts.logged {
		if !ts.persistent[store] {
			continue
		}
		next, ok := ends[tp]
		if !ok {
			continue
		}
		if cur, had := ts.checkpoint[tp]; !had || next > cur {
			ts.sinceWrite += next - cur
			ts.checkpoint[tp] = next
			ts.written = false
		}
	}
}

// nextOffsets maps a store to the changelog offset in ends of its
// partition, for task.CommitStores.
func (ts *taskStores) nextOffsets(ends map[changelog.TopicPartition]int64) func(store string) (int64, bool) {
	return func(store string) (int64, bool) {
		tp, ok := ts.logged[store]
		if !ok {
			return 0, false
		}
		next, ok := ends[tp]
		return next, ok
	}
}

// noOffsets is the nextOffsets of a task without stores.
func noOffsets(string) (int64, bool) { return 0, false }

// recordEnds records, in each store that keeps its changelog offset
// (state.OffsetRecorder), the offset in ends of its partition, durably:
// a restore or a standby's replay reached it.
func (ts *taskStores) recordEnds(ends map[changelog.TopicPartition]int64) error {
	for store, tp := range ts.logged {
		next, ok := ends[tp]
		rec, isRec := ts.backends[store].(state.OffsetRecorder)
		if !ok || !isRec {
			continue
		}
		if err := rec.ApplyAt(nil, next, true); err != nil {
			return fmt.Errorf("task %s: store %q: record changelog offset %d: %w", ts.id, store, next, err)
		}
	}
	return nil
}

// close closes the stores and releases the directory's lock.
func (ts *taskStores) close() error {
	var errs []error
	for name, b := range ts.backends {
		if err := b.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close store %q: %w", name, err))
		}
	}
	if err := ts.lock.unlock(); err != nil {
		errs = append(errs, fmt.Errorf("unlock task directory: %w", err))
	}
	return errors.Join(errs...)
}

// checkpointDue reports whether the checkpoint moved far enough since it
// was last written to write it again (checkpointRecords).
func (ts *taskStores) checkpointDue() bool {
	return !ts.written && ts.sinceWrite >= checkpointRecords
}

// writeCheckpoint writes the task's checkpoint if it changed, after making
// the stores' writes durable (a standby's replay applies them without an
// fsync; see state.BulkApplier): the stores hold at least the state it
// names.
func (ts *taskStores) writeCheckpoint() error {
	if ts.written || len(ts.checkpoint) == 0 {
		return nil
	}
	for name, b := range ts.backends {
		if bulk, ok := b.(state.BulkApplier); ok && ts.persistent[name] {
			if err := bulk.Sync(); err != nil {
				return fmt.Errorf("task %s: sync store %q: %w", ts.id, name, err)
			}
		}
	}
	if err := changelog.WriteCheckpoint(filepath.Join(ts.dir, checkpointFile), ts.checkpoint); err != nil {
		return fmt.Errorf("task %s: %w", ts.id, err)
	}
	ts.written, ts.sinceWrite = true, 0
	ts.e.noteOffsetSum(ts.id, ts.checkpoint)
	return nil
}

// restoreJobs plans the restore of the logged stores: persistent ones from
// their checkpoint, in-memory ones from resumeAt (what a standby replayed
// into them) or from the start.
func (ts *taskStores) restoreJobs(resumeAt map[changelog.TopicPartition]int64) []changelog.RestoreJob {
	var jobs []changelog.RestoreJob
	for store, tp := range ts.logged {
		cp := changelog.NoCheckpoint
		if off, ok := ts.checkpoint[tp]; ok && ts.persistent[store] {
			cp = off
		} else if off, ok := resumeAt[tp]; ok && !ts.persistent[store] {
			cp = off
		}
		jobs = append(jobs, changelog.RestoreJob{Partition: tp, Checkpoint: cp, Target: changelog.NewStoreTarget(ts.backends[store])})
	}
	return jobs
}

// newTask instantiates the processors of at over its open stores (user
// code: Build). w.mu is held.
func (w *worker) newTask(at *activeTask) (*task.Task, error) {
	id, tm, out := at.id, at.tm, at.out
	var backends map[string]state.Backend
	if at.store != nil {
		backends = at.store.backends
	}
	return task.New(task.Config{
		ID:            id,
		ApplicationID: w.e.cfg.ApplicationID,
		Spec:          w.e.specs[id.Subtopology],
		Backends:      backends,
		Globals:       w.e.globals.typedStores(),
		Output: func(r *kgo.Record) {
			tm.Produced.Inc()
			w.output(r)
		},
		ChangelogOutput: func(r *kgo.Record) {
			tm.ChangelogProduced.Inc()
			w.uncommitted = true
			w.cl.Produce(w.prodCtx, r, func(r *kgo.Record, err error) {
				if err != nil {
					w.produceFailed(r, err)
					return
				}
				out.acked(changelog.TopicPartition{Topic: r.Topic, Partition: r.Partition}, r.Offset)
			})
		},
		Errors: task.ErrorPolicy{
			SkipDeserializationErrors: w.e.cfg.SkipOnDeserializationError,
			SkipProcessingErrors:      w.e.cfg.SkipOnProcessingError,
			DeadLetterTopic:           w.e.cfg.DeadLetterTopic,
			OnSkip: func(rec *kgo.Record, err error) {
				if rec == nil {
					w.log.Warn("a punctuator failed; skipping it until it is due again", "err", err)
				} else {
					w.e.skipped.Add(1)
					w.log.Warn("skipping a record", "err", err, "dead_letter_topic", w.e.cfg.DeadLetterTopic)
				}
				logPanicStack(w.log, err)
			},
		},
		OnDrop: func(d task.Drop) {
			tm.Dropped(dropReason(d.Reason))
			logDrop(w.log, id, d)
		},
	})
}

// readCheckpoint reads a task's checkpoint file. A missing file means no
// checkpoint; a corrupt one is logged, deleted and treated as missing, so
// the task's stores restore in full.
func readCheckpoint(log *slog.Logger, id processor.TaskID, dir string) changelog.Checkpoint {
	path := filepath.Join(dir, checkpointFile)
	cp, err := changelog.ReadCheckpoint(path)
	switch {
	case err == nil:
		return cp
	case errors.Is(err, fs.ErrNotExist):
	default:
		log.Warn("checkpoint is unusable; the task's stores will be restored in full", "task", id, "err", err)
		if derr := changelog.DeleteCheckpoint(path); derr != nil {
			log.Warn("delete checkpoint", "task", id, "err", derr)
		}
	}
	return changelog.Checkpoint{}
}

// supplier returns the supplier of a store's backend: its own, or the
// application's default.
func (e *Engine) supplier(s task.StoreSpec) state.BackendSupplier {
	if s.Supplier != nil {
		return s.Supplier
	}
	return e.cfg.DefaultSupplier
}

// expireSegments drops the expired segments of the task's window and
// session stores (state.ExpireSegments): their records reached the
// backends from the changelog, which holds them a day longer than the
// stores keep them.
func (ts *taskStores) expireSegments() error {
	for name, retention := range ts.retention {
		b := ts.backends[name]
		if b == nil {
			continue
		}
		if _, err := state.ExpireSegments(b, retention); err != nil {
			return fmt.Errorf("task %s: store %q: drop expired segments: %w", ts.id, name, err)
		}
	}
	return nil
}
