package engine

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddystream/eddy/changelog"
	"github.com/eddystream/eddy/internal/task"
	"github.com/eddystream/eddy/processor"
	"github.com/eddystream/eddy/state"
	"github.com/eddystream/eddy/state/pebblestore"
)

// lockWait is how long a task waits for its state directory's lock: long
// enough for a worker of this process that is closing the task to let go.
const lockWait = 10 * time.Second

const checkpointFile = ".checkpoint"

// openTask locks the task's directory, reads its checkpoint, opens its
// stores and instantiates its processors. It does not restore.
func (w *worker) openTask(id processor.TaskID) (*activeTask, error) {
	spec := w.e.specs[id.Subtopology]
	if spec == nil {
		return nil, fmt.Errorf("task %s: the topology has no sub-topology %d: is another application using this application id?", id, id.Subtopology)
	}
	at := &activeTask{
		dir:        taskDir(w.e.cfg.StateDir, w.e.cfg.ApplicationID, id),
		logged:     map[string]changelog.TopicPartition{},
		persistent: map[string]bool{},
		checkpoint: changelog.Checkpoint{},
	}
	var err error
	if at.lock, err = lockTaskDir(at.dir, lockWait); err != nil {
		return nil, fmt.Errorf("task %s: %w", id, err)
	}
	cp := w.readCheckpoint(id, at.dir)
	backends := map[string]state.Backend{}
	fail := func(err error) (*activeTask, error) {
		for _, b := range backends {
			b.Close()
		}
		at.lock.unlock()
		return nil, fmt.Errorf("task %s: %w", id, err)
	}
	for _, s := range spec.Stores {
		tp := changelog.TopicPartition{Topic: s.ChangelogTopic, Partition: id.Partition}
		if s.ChangelogTopic != "" {
			at.logged[s.Name] = tp
		}
		if !s.Persistent {
			backends[s.Name] = state.NewMemoryBackend()
			continue
		}
		at.persistent[s.Name] = true
		off, valid := cp[tp]
		dir := filepath.Join(at.dir, s.Name)
		if !valid || s.ChangelogTopic == "" {
			// Local data that no checkpoint vouches for may be ahead of, or
			// unrelated to, the changelog: start from nothing.
			if err := pebblestore.Destroy(dir); err != nil {
				return fail(err)
			}
		}
		b, err := w.openStore(dir)
		if errors.Is(err, state.ErrCorruptStore) {
			w.log.Warn("store is corrupt; wiping it and restoring it in full from its changelog", "task", id, "store", s.Name, "err", err)
			delete(cp, tp)
			if err = pebblestore.Destroy(dir); err == nil {
				b, err = w.openStore(dir)
			}
		}
		if err != nil {
			return fail(fmt.Errorf("open store %q: %w", s.Name, err))
		}
		backends[s.Name] = b
		if _, ok := cp[tp]; ok && s.ChangelogTopic != "" {
			at.checkpoint[tp] = off
		}
	}
	at.written = len(at.checkpoint) > 0
	at.backends = backends
	at.t, err = task.New(task.Config{
		ID:              id,
		ApplicationID:   w.e.cfg.ApplicationID,
		Spec:            spec,
		Backends:        backends,
		Output:          w.output,
		ChangelogOutput: w.changelogOutput,
		Errors: task.ErrorPolicy{
			SkipDeserializationErrors: w.e.cfg.SkipBadRecords,
			SkipProcessingErrors:      w.e.cfg.SkipProcessingErrors,
			DeadLetterTopic:           w.e.cfg.DeadLetterTopic,
			OnSkip: func(_ *kgo.Record, err error) {
				w.e.skipped.Add(1)
				w.log.Warn("skipping a record", "err", err, "dead_letter_topic", w.e.cfg.DeadLetterTopic)
			},
		},
	})
	if err != nil {
		at.lock.unlock()
		return nil, err
	}
	return at, nil
}

// readCheckpoint reads a task's checkpoint file. A missing file means no
// checkpoint; a corrupt one is logged, deleted and treated as missing, so
// the task's stores restore in full.
func (w *worker) readCheckpoint(id processor.TaskID, dir string) changelog.Checkpoint {
	path := filepath.Join(dir, checkpointFile)
	cp, err := changelog.ReadCheckpoint(path)
	switch {
	case err == nil:
		return cp
	case errors.Is(err, fs.ErrNotExist):
	default:
		w.log.Warn("checkpoint is unusable; the task's stores will be restored in full", "task", id, "err", err)
		if derr := changelog.DeleteCheckpoint(path); derr != nil {
			w.log.Warn("delete checkpoint", "task", id, "err", derr)
		}
	}
	return changelog.Checkpoint{}
}

// writeCheckpoint writes the task's checkpoint if it changed. It is called
// only when the stores hold exactly the committed state.
func (w *worker) writeCheckpoint(at *activeTask) error {
	if at.written || len(at.checkpoint) == 0 {
		return nil
	}
	if err := changelog.WriteCheckpoint(filepath.Join(at.dir, checkpointFile), at.checkpoint); err != nil {
		return fmt.Errorf("task %s: %w", at.t.ID(), err)
	}
	at.written = true
	return nil
}

// openStore opens a persistent store on the process's shared block cache,
// logging through the worker's logger.
func (w *worker) openStore(dir string) (state.Backend, error) {
	return pebblestore.Open(dir, pebblestore.WithCache(w.e.cache), pebblestore.WithLogger(w.log))
}
