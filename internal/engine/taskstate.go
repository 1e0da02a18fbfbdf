package engine

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddystream/eddy/changelog"
	"github.com/eddystream/eddy/internal/task"
	"github.com/eddystream/eddy/processor"
	"github.com/eddystream/eddy/state"
)

// lockWait is how long a task waits for its state directory's lock: long
// enough for a worker of this process that is closing the task to let go.
const lockWait = 10 * time.Second

const checkpointFile = ".checkpoint"

// taskStores are the open stores of one task, active or standby, with the
// lock on its state directory.
type taskStores struct {
	id   processor.TaskID
	dir  string
	lock *dirLock
	// logged maps each logged store to its changelog partition;
	// persistent marks those whose data survives on disk.
	logged     map[string]changelog.TopicPartition
	persistent map[string]bool
	backends   map[string]state.Backend
	// checkpoint is what the task's checkpoint file says (or will say
	// after the next write): the changelog offset each persistent store
	// matches.
	checkpoint changelog.Checkpoint
	written    bool // checkpoint is on disk as is
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
		id:         id,
		dir:        taskDir(e.cfg.StateDir, e.cfg.ApplicationID, id),
		logged:     map[string]changelog.TopicPartition{},
		persistent: map[string]bool{},
		backends:   map[string]state.Backend{},
		checkpoint: changelog.Checkpoint{},
	}
	var err error
	if ts.lock, err = lockTaskDir(ts.dir, lockWait); err != nil {
		return nil, fmt.Errorf("task %s: %w", id, err)
	}
	cp := readCheckpoint(log, id, ts.dir)
	fail := func(err error) (*taskStores, error) {
		ts.close()
		return nil, fmt.Errorf("task %s: %w", id, err)
	}
	for _, s := range spec.Stores {
		tp := changelog.TopicPartition{Topic: s.ChangelogTopic, Partition: id.Partition}
		if s.ChangelogTopic != "" {
			ts.logged[s.Name] = tp
		}
		sup := e.supplier(s)
		dir := filepath.Join(ts.dir, s.Name)
		if !sup.Persistent() {
			b, err := sup.Open(dir, log)
			if err != nil {
				return fail(fmt.Errorf("open store %q (%s): %w", s.Name, sup.Name(), err))
			}
			ts.backends[s.Name] = b
			continue
		}
		ts.persistent[s.Name] = true
		off, valid := cp[tp]
		if !valid || s.ChangelogTopic == "" {
			// Local data that no checkpoint vouches for may be ahead of, or
			// unrelated to, the changelog: start from nothing.
			if err := sup.Destroy(dir); err != nil {
				return fail(err)
			}
		}
		b, err := sup.Open(dir, log)
		if errors.Is(err, state.ErrCorruptStore) {
			log.Warn("store is corrupt; wiping it and restoring it in full from its changelog", "task", id, "store", s.Name, "backend", sup.Name(), "err", err)
			delete(cp, tp)
			if err = sup.Destroy(dir); err == nil {
				b, err = sup.Open(dir, log)
			}
		}
		if err != nil {
			return fail(fmt.Errorf("open store %q: %w", s.Name, err))
		}
		ts.backends[s.Name] = b
		if _, ok := cp[tp]; ok && s.ChangelogTopic != "" {
			ts.checkpoint[tp] = off
		}
	}
	ts.written = len(ts.checkpoint) > 0
	return ts, nil
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

// writeCheckpoint writes the task's checkpoint if it changed. It is called
// only when the stores hold exactly the state the checkpoint names.
func (ts *taskStores) writeCheckpoint() error {
	if ts.written || len(ts.checkpoint) == 0 {
		return nil
	}
	if err := changelog.WriteCheckpoint(filepath.Join(ts.dir, checkpointFile), ts.checkpoint); err != nil {
		return fmt.Errorf("task %s: %w", ts.id, err)
	}
	ts.written = true
	return nil
}

// syncAndCheckpoint makes the stores' unsynced writes durable (see
// state.BulkApplier), then writes the checkpoint if it changed.
func (ts *taskStores) syncAndCheckpoint() error {
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
	return ts.writeCheckpoint()
}

// openTask opens the task's stores, or takes them over from the process's
// standby of the task, and instantiates its processors. It does not
// restore.
func (w *worker) openTask(id processor.TaskID) (*activeTask, error) {
	at := &activeTask{}
	if sb := w.e.standbys.take(id); sb != nil {
		at.taskStores = sb.stores
		at.resumeAt = sb.resumeAt()
		w.log.Info("promoting standby task", "task", id, "lag_records", sb.lag())
	} else {
		ts, err := w.e.openTaskStores(id, w.log, lockWait)
		if err != nil {
			return nil, err
		}
		at.taskStores = ts
	}
	tm := w.e.metrics.task(id)
	at.tm = tm
	var err error
	at.t, err = task.New(task.Config{
		ID:            id,
		ApplicationID: w.e.cfg.ApplicationID,
		Spec:          w.e.specs[id.Subtopology],
		Backends:      at.backends,
		Output: func(r *kgo.Record) {
			tm.Produced.Inc()
			w.output(r)
		},
		ChangelogOutput: func(r *kgo.Record) {
			tm.ChangelogProduced.Inc()
			w.changelogOutput(r)
		},
		Errors: task.ErrorPolicy{
			SkipDeserializationErrors: w.e.cfg.SkipBadRecords,
			SkipProcessingErrors:      w.e.cfg.SkipProcessingErrors,
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
	if err != nil {
		at.taskStores.close()
		return nil, err
	}
	return at, nil
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
