package engine

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddystream/eddy/changelog"
	"github.com/eddystream/eddy/processor"
)

// restorer restores a worker's newly assigned tasks off the loop
// goroutine, so that a long restore never stops the worker from polling
// (and so from heartbeating and taking part in rebalances). A restoring
// task's backends belong to its restore goroutine until the job is done;
// the loop then initialises the task and starts feeding it records.
type restorer struct {
	w    *worker
	cl   *kgo.Client // a client that never consumes, for restore fetches
	r    *changelog.Restorer
	ctx  context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup
	// done receives a token when a restore finishes, so that a poll
	// waiting for records of paused partitions ends early.
	done chan struct{}
	// running counts restores in flight. Rebalance callbacks (under w.mu)
	// add to it; the loop reads it before polling, without w.mu.
	running atomic.Int32
}

// restoreJob is the restoration of one task's logged stores.
type restoreJob struct {
	cancel  context.CancelFunc
	done    chan struct{}
	started time.Time
	results []changelog.RestoreResult
	err     error
}

func newRestorer(w *worker) (*restorer, error) {
	cl, err := kgo.NewClient(w.e.clientOpts()...)
	if err != nil {
		return nil, fmt.Errorf("eddy: create restore client: %w", err)
	}
	r, err := changelog.NewRestorer(cl, changelog.WithLogger(w.log), changelog.WithListener(w.e.metrics.restoreListener()))
	if err != nil {
		cl.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &restorer{w: w, cl: cl, r: r, ctx: ctx, stop: cancel, done: make(chan struct{}, 1)}, nil
}

// start begins restoring at's logged stores.
func (rs *restorer) start(at *activeTask) {
	var jobs []changelog.RestoreJob
	for store, tp := range at.logged {
		cp := changelog.NoCheckpoint
		if off, ok := at.checkpoint[tp]; ok && at.persistent[store] {
			cp = off
		} else if off, ok := at.resumeAt[tp]; ok && !at.persistent[store] {
			cp = off
		}
		jobs = append(jobs, changelog.RestoreJob{Partition: tp, Checkpoint: cp, Target: changelog.NewStoreTarget(at.backends[store])})
	}
	ctx, cancel := context.WithCancel(rs.ctx)
	job := &restoreJob{cancel: cancel, done: make(chan struct{}), started: time.Now()}
	at.restore = job
	rs.running.Add(1)
	rs.wg.Add(1)
	go func() {
		defer rs.wg.Done()
		defer cancel()
		job.results, job.err = rs.restore(ctx, at.t.ID(), jobs)
		close(job.done)
		select {
		case rs.done <- struct{}{}:
		default: // a wake-up is pending already
		}
	}()
}

// restore runs one task's restore jobs on the restore goroutine. A panic
// (a bug: store errors are errors) fails the restore instead of the
// process.
func (rs *restorer) restore(ctx context.Context, id processor.TaskID, jobs []changelog.RestoreJob) (results []changelog.RestoreResult, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &InternalPanicError{Where: fmt.Sprintf("the restore of task %s", id), Value: v, Stack: debug.Stack()}
		}
	}()
	if err := rs.waitStableOffsets(ctx, id); err != nil {
		return nil, err
	}
	// Each StoreTarget is synced by its restore (changelog.Syncer), so the
	// stores are durable before a checkpoint claims them.
	results, errs := rs.r.RestoreAll(ctx, jobs)
	return results, errors.Join(errs...)
}

// stableOffsetsPoll is how often a restore asks again whether the task's
// committed input offsets are stable.
const stableOffsetsPoll = 50 * time.Millisecond

// waitStableOffsets waits, under exactly-once, until no transaction holds
// pending offsets for the task's input partitions (KIP-447). The previous
// owner's last transaction may still be completing when the task arrives
// here (its commit decided but not yet written, or an abort pending on the
// transaction timeout), and it holds changelog records that the last
// stable offset does not cover yet. A restore that stopped short of them
// would run the task on state that misses them, while the input offsets,
// once stable, resume after the records that made them. Offsets are
// stable once that transaction has ended, and then the changelog's last
// stable offset covers all it wrote.
func (rs *restorer) waitStableOffsets(ctx context.Context, id processor.TaskID) error {
	w := rs.w
	if w.sess == nil {
		return nil
	}
	parts := w.bal.Layout().Partitions([]processor.TaskID{id})
	topics := make([]string, 0, len(parts))
	for t := range parts {
		topics = append(topics, t)
	}
	start := time.Now()
	for {
		resps, err := w.e.adm.FetchOffsetsForTopics(kadm.RequireStable(ctx), w.e.cfg.ApplicationID, topics...)
		if err == nil {
			unstable := false
			for t, ps := range parts {
				for _, p := range ps {
					if r, ok := resps.Lookup(t, p); ok && errors.Is(r.Err, kerr.UnstableOffsetCommit) {
						unstable = true
					}
				}
			}
			if !unstable {
				if waited := time.Since(start); waited > time.Second {
					w.log.Info("waited for the previous owner's transaction to end before restoring", "task", id, "waited", waited.Round(time.Millisecond))
				}
				return nil
			}
		} else if ctx.Err() == nil {
			w.log.Debug("fetch committed offsets before a restore; retrying", "task", id, "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(stableOffsetsPoll):
		}
	}
}

// wakeOnDone arranges for wake to be called when a restore finishes, while
// restores are in flight; the returned function stops that and waits for
// the helper goroutine.
func (rs *restorer) wakeOnDone(wake func()) (stop func()) {
	if rs.running.Load() == 0 {
		return func() {}
	}
	quit := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		select {
		case <-rs.done:
			wake()
		case <-quit:
		}
	}()
	return func() {
		close(quit)
		<-exited
	}
}

// cancel stops at's restore, if any, and waits for it.
func (rs *restorer) cancel(at *activeTask) {
	if at.restore == nil {
		return
	}
	at.restore.cancel()
	<-at.restore.done
	at.restore = nil
	rs.running.Add(-1)
}

// close stops every restore and waits for them.
func (rs *restorer) close() {
	rs.stop()
	rs.wg.Wait()
	rs.cl.Close()
}

// finishRestores moves the tasks whose restore is done to running: their
// checkpoints record the restored offsets, their processors are
// initialised, and their partitions are resumed. w.mu is held.
func (w *worker) finishRestores() error {
	for _, id := range w.sortedTasks() {
		at := w.mu.tasks[id]
		job := at.restore
		if job == nil {
			continue
		}
		select {
		case <-job.done:
		default:
			continue
		}
		at.restore = nil
		w.restores.running.Add(-1)
		if errors.Is(job.err, changelog.ErrCheckpointAhead) {
			// The checkpoint claims changelog offsets the topic does not
			// have (it was recreated, or the store holds writes that never
			// committed): trust neither, restore in full.
			w.log.Warn("checkpoint is ahead of the changelog; wiping the task's stores and restoring them in full", "task", id, "err", job.err)
			w.closeTasks([]processor.TaskID{id}, false)
			if err := changelog.DeleteCheckpoint(filepath.Join(at.dir, checkpointFile)); err != nil {
				return err
			}
			if err := w.startTasks([]processor.TaskID{id}); err != nil {
				return err
			}
			continue
		}
		if job.err != nil {
			return fmt.Errorf("restore task %s: %w", id, job.err)
		}
		var records int64
		for _, res := range job.results {
			records += res.Records
			for store, tp := range at.logged {
				if tp == res.Partition && at.persistent[store] && at.checkpoint[tp] != res.EndOffset {
					at.checkpoint[tp] = res.EndOffset
					at.written = false
				}
			}
		}
		if err := at.writeCheckpoint(); err != nil {
			return err
		}
		if err := w.startRunning(at, records, job.started); err != nil {
			return err
		}
		w.cl.ResumeFetchPartitions(w.bal.Layout().Partitions([]processor.TaskID{id}))
	}
	return nil
}

// startRunning initialises a restored task's processors and lets it
// process. w.mu is held.
func (w *worker) startRunning(at *activeTask, restored int64, since time.Time) error {
	if err := at.t.Init(); err != nil {
		return err
	}
	at.running = true
	w.e.running.set(at.t.ID(), true)
	w.abortTaskRunning(at.t.ID()) // eddy bench's RequestAbort (aborthook.go)
	w.log.Info("task restored and running", "task", at.t.ID(), "restored_records", restored, "took", time.Since(since).Round(time.Millisecond))
	return nil
}
