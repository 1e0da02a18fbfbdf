package engine

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddystream/eddy/internal/changelog"
	"github.com/eddystream/eddy/processor"
)

// restorer opens and restores a worker's newly assigned tasks off the
// loop goroutine and off the group callbacks, so that neither a long
// restore nor a slow disk stops the worker from polling (and so from
// heartbeating and taking part in rebalances). A restoring task's stores
// belong to its restore goroutine until the job is done; the loop then
// instantiates the task and starts feeding it records.
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
	// restored counts the changelog records restored, for tests.
	restored atomic.Int64
}

// restoreJob is the opening and restoration of one task's stores.
type restoreJob struct {
	cancel  context.CancelFunc
	done    chan struct{}
	started time.Time
	// Set by the restore goroutine before done is closed.
	stores  *taskStores
	records int64
	err     error

	// mu orders the goroutine's end with abandon: a job abandoned before
	// it ends closes its stores itself; one abandoned after, by whoever
	// abandons it (see abandon).
	mu        sync.Mutex
	abandoned bool
	ended     bool
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

// start opens at's stores, or takes them over from the process's standby
// of the task, and restores the logged ones, on a goroutine of its own.
// w.mu is held (it may be a group callback): start does no I/O.
func (rs *restorer) start(at *activeTask) {
	ctx, cancel := context.WithCancel(rs.ctx)
	job := &restoreJob{cancel: cancel, done: make(chan struct{}), started: time.Now()}
	at.restore = job
	at.life.to(taskRestoring)
	id := at.id
	rs.running.Add(1)
	rs.wg.Add(1)
	go func() {
		defer rs.wg.Done()
		defer cancel()
		stores, records, err := rs.openAndRestore(ctx, id)
		job.mu.Lock()
		job.stores, job.records, job.err = stores, records, err
		job.ended = true
		abandoned := job.abandoned
		job.mu.Unlock()
		if abandoned && stores != nil {
			if err := stores.close(); err != nil {
				rs.w.log.Warn("close the stores of a task revoked while it restored", "task", id, "err", err)
			}
		}
		close(job.done)
		select {
		case rs.done <- struct{}{}:
		default: // a wake-up is pending already
		}
	}()
}

// openAndRestore opens task id's stores and restores them. A checkpoint
// found ahead of its changelog wipes the stores and restores them in full.
func (rs *restorer) openAndRestore(ctx context.Context, id processor.TaskID) (ts *taskStores, records int64, err error) {
	w := rs.w
	var resumeAt map[changelog.TopicPartition]int64
	if sb := w.e.standbys.take(id); sb != nil {
		ts, resumeAt = sb.stores, sb.resumeAt()
		w.log.Info("promoting standby task", "task", id, "lag_records", sb.lag())
	} else if ts, err = rs.openWaiting(ctx, id, lockWait); err != nil {
		return nil, 0, err
	}
	fail := func(err error) (*taskStores, int64, error) {
		if cerr := ts.close(); cerr != nil {
			w.log.Warn("close the stores of a task whose restore failed", "task", id, "err", cerr)
		}
		return nil, 0, err
	}
	if len(ts.logged) == 0 {
		return ts, 0, nil
	}
	for wiped := false; ; wiped = true {
		jobs := ts.restoreJobs(resumeAt)
		results, err := rs.restore(ctx, id, jobs)
		if errors.Is(err, changelog.ErrCheckpointAhead) && !wiped {
			w.log.Warn("checkpoint is ahead of the changelog; wiping the task's stores and restoring them in full", "task", id, "err", err)
			if err := ts.wipe(); err != nil {
				return fail(err)
			}
			resumeAt = nil
			continue
		}
		if err != nil {
			return fail(err)
		}
		// Only what moved: a restore that found nothing past where it
		// started (an empty changelog at a task's first start) writes
		// nothing, so a first start costs no disk writes beyond opening
		// the stores.
		from := map[changelog.TopicPartition]int64{}
		for _, j := range jobs {
			from[j.Partition] = max(j.Checkpoint, 0)
		}
		ends := map[changelog.TopicPartition]int64{}
		for _, res := range results {
			records += res.Records
			if res.EndOffset > from[res.Partition] {
				ends[res.Partition] = res.EndOffset
			}
		}
		ts.advance(ends)
		if err := ts.recordEnds(ends); err != nil {
			return fail(err)
		}
		if records > 0 {
			if err := ts.expireSegments(); err != nil {
				return fail(err)
			}
		}
		if err := ts.writeCheckpoint(); err != nil {
			return fail(err)
		}
		rs.restored.Add(records)
		return ts, records, nil
	}
}

// openWaiting opens task id's stores, waiting for its directory's lock
// (wait at a time)
// while this process's closer or standby manager still holds it (closing
// a large store can take a while), for up to the task timeout: only this
// process can hold it (Run locks the state directory), so a longer wait
// is a bug, reported as an error.
func (rs *restorer) openWaiting(ctx context.Context, id processor.TaskID, wait time.Duration) (*taskStores, error) {
	w := rs.w
	start := time.Now()
	for {
		ts, err := w.e.openTaskStores(id, w.log, wait)
		if !errors.Is(err, ErrTaskDirLocked) || time.Since(start) >= w.e.cfg.TaskTimeout {
			return ts, err
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		w.log.Warn("a task's state directory is still locked (by this process closing it?); waiting", "task", id, "waited", time.Since(start).Round(time.Second))
	}
}

// abandon stops at's open or restore, if any, without waiting for it
// (it may be waiting on the disk): the stores it opened are closed by its
// goroutine, or here if it had already ended.
func (rs *restorer) abandon(at *activeTask) {
	job := at.restore
	if job == nil {
		return
	}
	at.restore = nil
	rs.running.Add(-1)
	job.cancel()
	job.mu.Lock()
	job.abandoned = true
	ended := job.ended
	job.mu.Unlock()
	if ended && job.stores != nil {
		rs.w.e.closer.close(job.stores, nil, false)
	}
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

// close stops every restore and waits for them.
func (rs *restorer) close() {
	rs.stop()
	rs.wg.Wait()
	rs.cl.Close()
}

// finishRestores starts the tasks whose restore is done: their processors
// are instantiated and initialised, and their partitions resumed. w.mu is
// held.
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
		if job.err != nil {
			return fmt.Errorf("restore task %s: %w", id, job.err)
		}
		at.store = job.stores
		if err := w.startRunning(at, job.records, job.started); err != nil {
			return err
		}
		w.cl.ResumeFetchPartitions(w.bal.Layout().Partitions([]processor.TaskID{id}))
	}
	return nil
}

// startRunning instantiates and initialises a task's processors over its
// open stores, lets it process, and hands it the records polled for it
// while it restored. w.mu is held.
func (w *worker) startRunning(at *activeTask, restored int64, since time.Time) error {
	t, err := w.newTask(at)
	if err != nil {
		return err
	}
	at.t = t
	at.life.to(taskRunning)
	if err := at.t.Init(); err != nil {
		return err
	}
	for _, recs := range at.held {
		at.t.Add(recs)
	}
	at.held = nil
	w.e.running.set(at.id, true)
	w.abortTaskRunning(at.id) // eddy bench's RequestAbort (aborthook.go)
	w.log.Info("task restored and running", "task", at.id, "restored_records", restored, "took", time.Since(since).Round(time.Millisecond))
	return nil
}
