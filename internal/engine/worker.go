package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddystream/eddy/internal/metrics"
	"github.com/eddystream/eddy/internal/rebalance"
	"github.com/eddystream/eddy/processor"
	"github.com/eddystream/eddy/state"
	"github.com/eddystream/eddy/topology"
)

// maxPollRecords bounds one poll, and so the time between two chances
// for a rebalance to proceed (rebalances wait while a batch is processed).
const maxPollRecords = 10_000

// maxBufferedRecords bounds the records the producer holds unacknowledged;
// the loop commits early when it is half full (see step).
const maxBufferedRecords = 100_000

// pollWait bounds how long one poll blocks when no records come, so that
// commits, wall-clock punctuators and finished restores are handled on
// time.
const pollWait = 100 * time.Millisecond

// worker is one group member: a client that consumes and produces, the
// tasks assigned to it, and its loop.
//
// The loop goroutine owns the tasks, with one exception: kgo's rebalance
// callbacks (assigned, revoked, lost) create and close tasks. The client
// runs with BlockRebalanceOnPoll, so callbacks run only between the loop's
// AllowRebalance and its next poll; mu makes that hand-over explicit and
// race-free.
type worker struct {
	e   *Engine
	idx int
	log *slog.Logger
	cl  *kgo.Client
	bal *rebalance.Balancer
	// sess drives the transactions under exactly-once (nil otherwise); it
	// wraps cl.
	sess *kgo.GroupTransactSession
	// stall tracks a streak of failed commits.
	stall stall
	// needBegin is set while no transaction could be begun after the last
	// one ended; nextBegin is when to try again (see begin).
	needBegin bool
	// endCutOff is set when a transaction's end failed and was healed by
	// an abort, until a transaction begins again (see selfFenced).
	endCutOff bool
	nextBegin time.Time
	// beginDone receives the result of a Begin left running past its
	// deadline (see beginBounded); shutdown waits for it.
	beginDone chan error
	// rewindTo holds, per input partition of the worker's tasks, where an
	// aborted commit rewinds it to: the offset the tasks last committed,
	// or, before their first commit, the first offset read. Offsets come
	// from the tasks, so records polled but not processed by the last
	// commit (held by a restoring task, or still queued) are read again.
	rewindTo map[string]map[int32]kgo.EpochOffset
	// resets counts the times the tasks went back to their last commit
	// (resetTasks), for tests.
	resets atomic.Int64

	// prodCtx outlives the run context so that the final commit at
	// shutdown can still produce.
	prodCtx    context.Context
	prodCancel context.CancelFunc
	// ready is closed when the worker is fully built; see newWorker.
	ready chan struct{}
	// owned is a snapshot of the ids in mu.tasks; see ownedTasks.
	owned atomic.Pointer[[]processor.TaskID]

	mu struct {
		sync.Mutex
		tasks   map[processor.TaskID]*activeTask
		fatal   error
		closing bool
		// abortPending is set when a rebalance took tasks away during the
		// open transaction, which can then only abort (exactly-once).
		abortPending bool
	}

	restores *restorer

	// produced holds the first produce failure since the last commit
	// attempt; promise callbacks run on kgo's goroutines. (What each task
	// produced is its collector's.)
	produced struct {
		sync.Mutex
		err error
	}

	nextCommit  time.Time
	uncommitted bool
	wm          *metrics.WorkerMetrics
	// standbys is the number of standby tasks in the last assignment,
	// for the tasks-by-state metric (written by kgo's group goroutine).
	standbys atomic.Int64

	// For the probes (see health.go): the worker's last published
	// health; whether it lost its tasks and has not been assigned since;
	// its last group-membership error; when it was last assigned.
	health       atomic.Pointer[workerHealth]
	lost         atomic.Bool
	groupErr     atomic.Pointer[timedError]
	lastAssigned atomic.Pointer[time.Time]

	// loopTurn is when the loop last came round, in unix nanoseconds
	// (see stuck).
	loopTurn atomic.Int64

	// onFail, set by the engine before run, hears the worker's failure
	// before it shuts down.
	onFail func(error)

	// rebalanceWaiting is set while a rebalance waits for the loop to
	// allow it; endCancel cancels a transaction's end in progress (see
	// end in eos.go).
	rebalanceWaiting atomic.Bool
	endCancel        atomic.Pointer[context.CancelCauseFunc]
}

func newWorker(e *Engine, idx int) (*worker, error) {
	w := &worker{e: e, idx: idx, log: e.log.With("worker", idx), wm: e.metrics.m.Worker(idx)}
	w.mu.tasks = map[processor.TaskID]*activeTask{}
	var subs []rebalance.Subtopology
	var manual []string
	for _, st := range e.top.Subtopologies(e.cfg.ApplicationID) {
		sub := rebalance.Subtopology{ID: st.ID, SourceTopics: st.SourceTopics}
		if spec := e.specs[st.ID]; spec != nil {
			for _, s := range spec.Stores {
				if s.ChangelogTopic != "" {
					sub.ChangelogTopics = append(sub.ChangelogTopics, s.ChangelogTopic)
				}
			}
		}
		subs = append(subs, sub)
	}
	for _, it := range e.top.InternalTopics(e.cfg.ApplicationID) {
		if it.Kind == topology.Changelog {
			manual = append(manual, it.Name)
		}
	}
	bal, err := rebalance.NewBalancer(rebalance.Config{
		Subtopologies:    subs,
		ProcessID:        e.procID,
		Endpoint:         e.cfg.Endpoint,
		Rack:             e.cfg.Rack,
		WorkerIndex:      idx,
		WorkerCount:      e.cfg.Workers,
		OwnedTasks:       w.ownedTasks,
		StandbyTasks:     func() []processor.TaskID { return e.standbys.wantedBy(idx) },
		TaskOffsetSums:   e.taskOffsetSums,
		EndOffsets:       e.endOffsets,
		Assignor:         e.cfg.Assignor,
		RequestRebalance: w.requestRebalance,
		OnAssignment:     w.onAssignment,
		Logger:           w.log,
	})
	if err != nil {
		return nil, err
	}
	w.bal = bal
	if w.restores, err = newRestorer(w); err != nil {
		return nil, err
	}
	w.prodCtx, w.prodCancel = context.WithCancel(context.Background())
	// kgo joins the group inside NewClient, so a rebalance callback can run
	// before NewClient returns: callbacks wait for ready, closed once the
	// worker is complete.
	w.ready = make(chan struct{})
	defer close(w.ready)
	opts := e.clientOpts(
		kgo.ConsumerGroup(e.cfg.ApplicationID),
		kgo.ConsumeTopics(bal.Layout().SourceTopics()...),
		kgo.Balancers(bal),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.SessionTimeout(e.cfg.SessionTimeout),
		kgo.HeartbeatInterval(e.cfg.HeartbeatInterval),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.OnPartitionsAssigned(w.onAssigned),
		kgo.OnPartitionsRevoked(w.onRevoked),
		kgo.OnPartitionsLost(w.onLost),
		kgo.OnPartitionsCallbackBlocked(w.onRebalanceBlocked),
		kgo.RecordPartitioner(newPartitioner(manual)),
		// The Java consumer's fetch.max.wait.ms (kgo waits 5 s): partitions
		// resumed after a restore join the next fetch, which starts only
		// when the one in flight returns.
		kgo.FetchMaxWait(500*time.Millisecond),
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.MaxBufferedRecords(maxBufferedRecords),
		kgo.WithHooks(w),
	)
	if e.cfg.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(fmt.Sprintf("%s-%d", e.cfg.InstanceID, idx)))
	}
	if e.cfg.FailOnProductionError {
		opts = append(opts, kgo.RecordRetries(0))
	} else {
		opts = append(opts, kgo.RecordRetries(produceRetries))
	}
	if e.cfg.ExactlyOnce {
		// Appended last: the application's KafkaOptions must not turn
		// these off.
		opts = append(opts, eosOpts(e.cfg.ApplicationID, e.procID, idx)...)
		if w.sess, err = kgo.NewGroupTransactSession(opts...); err == nil {
			w.cl = w.sess.Client()
		}
	} else {
		w.cl, err = kgo.NewClient(opts...)
	}
	if err != nil {
		w.bal.Close()
		w.restores.close()
		w.prodCancel()
		return nil, fmt.Errorf("eddy: create client: %w", err)
	}
	return w, nil
}

// onAssignment hears every assignment the worker receives, from kgo's
// group goroutine, before kgo's revoke and assign callbacks run for it.
// It hands the standby tasks to the process's standby manager.
func (w *worker) onAssignment(a rebalance.Assignment) {
	now := time.Now()
	w.lastAssigned.Store(&now)
	w.lost.Store(false)
	w.e.standbys.assign(w.idx, a.StandbyTasks)
	w.standbys.Store(int64(len(a.StandbyTasks)))
	w.wm.Rebalanced()
}

// requestRebalance makes the worker rejoin the group: the balancer calls it
// when a probing rebalance is due.
func (w *worker) requestRebalance() {
	select {
	case <-w.ready:
	default:
		return // still joining: the join in progress is as good
	}
	if w.cl != nil {
		w.log.Info("requesting a probing rebalance: warm-up replicas may have caught up")
		w.cl.ForceRebalance()
	}
}

// ownedTasks reports the active tasks at a join, for the balancer's
// stickiness. kgo calls it from its group goroutine while it holds the
// join, and the loop may at that moment hold w.mu inside a commit that
// waits for the join to finish: so it reads a snapshot, never w.mu.
func (w *worker) ownedTasks() []processor.TaskID {
	if ids := w.owned.Load(); ids != nil {
		return *ids
	}
	return nil
}

// publishOwned refreshes the snapshot ownedTasks reads. w.mu is held.
func (w *worker) publishOwned() {
	ids := w.sortedTasks()
	w.owned.Store(&ids)
}

// run is the worker's loop. It returns nil after a clean shutdown. A
// failure is told to onFail (if set) before the worker shuts down, so
// that the engine's shutdown deadline covers this worker's shutdown too.
//
// The loop returns with rebalances blocked (its last poll returned and
// it did not allow them again): shutdown ends the transaction with w.mu
// held, and kgo's transact session holds its own lock while it runs the
// revoke callback, which takes w.mu. A rebalance allowed before shutdown
// deadlocked the two (seen in a broker fault run); shutdown allows
// rebalances once it is done with the transaction.
func (w *worker) run(ctx context.Context) (err error) {
	defer func() {
		logPanicStack(w.log, err)
		var wedged *wedgedProducerError
		if err != nil && w.onFail != nil && !errors.As(err, &wedged) {
			w.onFail(err)
		}
		err = errors.Join(err, w.shutdown(err == nil))
	}()
	w.nextCommit = time.Now().Add(w.e.cfg.CommitInterval)
	if w.sess != nil {
		if err := w.begin(time.Now()); err != nil {
			return fmt.Errorf("eddy: worker %d: %w", w.idx, err)
		}
	}
	for {
		w.loopTurn.Store(time.Now().UnixNano())
		pollCtx, cancel := context.WithTimeout(ctx, pollWait)
		stopWaking := w.restores.wakeOnDone(cancel)
		fetches := w.cl.PollRecords(pollCtx, maxPollRecords)
		stopWaking()
		cancel()
		if ctx.Err() != nil || fetches.IsClientClosed() {
			return nil
		}
		_, gen := w.cl.GroupMetadata()
		w.wm.SetGeneration(gen)
		err := w.locked(func() error {
			defer w.publishHealth()
			if w.mu.fatal != nil {
				return w.mu.fatal
			}
			if h := w.e.testing.beforeStep; h != nil {
				h(w, fetches)
			}
			return w.step(fetches)
		})
		if err != nil {
			return fmt.Errorf("eddy: worker %d: %w", w.idx, err)
		}
		w.rebalanceWaiting.Store(false)
		w.cl.AllowRebalance()
	}
}

// locked runs fn with w.mu held. A panic in fn (a bug of eddy's: user
// code's panics are recovered by the tasks) is returned as an error, with
// w.mu released, so that the worker stops and shuts down instead of
// deadlocking on w.mu in its deferred shutdown.
func (w *worker) locked(fn func() error) (err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	defer recoverInternal(&err)
	return fn()
}

// step handles one poll's worth of work. w.mu is held.
func (w *worker) step(fetches kgo.Fetches) error {
	if w.needBegin {
		return w.retryBegin(fetches)
	}
	if w.mu.abortPending {
		// The open transaction lost tasks in a rebalance: abort it now, and
		// drop the records in hand: the abort rewinds their partitions to
		// the worker's rewind points, noted first so that a partition read
		// for the first time in this poll has one too.
		w.noteReads(fetches)
		return w.endTransaction(w.prodCtx, time.Now(), false, true)
	}
	if w.abortRequested() { // eddy bench's RequestAbort (aborthook.go)
		return w.abortOnRequest(fetches)
	}
	fetches.EachError(func(topic string, p int32, err error) {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return
		}
		w.log.Warn("fetch error; the client retries", "topic", topic, "partition", p, "err", err)
	})
	if err := w.finishRestores(); err != nil {
		return err
	}
	w.noteReads(fetches)
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		if len(p.Records) == 0 {
			return
		}
		id, ok := w.bal.Layout().TaskOf(p.Topic, p.Partition)
		at := w.mu.tasks[id]
		if !ok || at == nil {
			return
		}
		at.tm.Consumed.Add(float64(len(p.Records)))
		if at.running() {
			at.t.Add(p.Records)
		} else {
			// Polled before its partitions were paused: kept for the
			// task's first step (an abort meanwhile rewinds them).
			at.held = append(at.held, p.Records)
		}
	})
	now := time.Now()
	processed := 0
	for _, id := range w.sortedTasks() {
		at := w.mu.tasks[id]
		if !at.running() {
			continue
		}
		if at.t.Buffered() > 0 {
			limit := at.t.Buffered()
			if w.e.testing.maxProcess > 0 {
				limit = min(limit, w.e.testing.maxProcess)
			}
			n, err := at.t.Process(limit)
			at.tm.Processed.Add(float64(n))
			processed += n
			w.uncommitted = true
			if err != nil {
				return err
			}
		}
		if err := at.t.Punctuate(now); err != nil {
			return err
		}
	}
	if processed > 0 {
		w.wm.ObserveBatch(time.Since(now), processed)
	}
	// A producer buffer half full commits early: past full, producing
	// blocks the loop (for as long as the brokers do not answer, with no
	// commit attempt, and so no deadline, to notice), and a commit's
	// flush is bounded and reports why it fails.
	if !now.Before(w.nextCommit) || w.cl.BufferedProduceRecords() > maxBufferedRecords/2 {
		w.nextCommit = now.Add(w.e.cfg.CommitInterval)
		if w.uncommitted {
			if err := w.commit(w.prodCtx, w.runningTasks(nil)); err != nil {
				return err
			}
			w.uncommitted = false
		}
	}
	return nil
}

func (w *worker) sortedTasks() []processor.TaskID {
	ids := make([]processor.TaskID, 0, len(w.mu.tasks))
	for id := range w.mu.tasks {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].Less(ids[j]) })
	return ids
}

// runningTasks returns the running tasks among ids (all when ids is nil).
func (w *worker) runningTasks(ids []processor.TaskID) []*activeTask {
	if ids == nil {
		ids = w.sortedTasks()
	}
	var out []*activeTask
	for _, id := range ids {
		if at := w.mu.tasks[id]; at != nil && at.running() {
			out = append(out, at)
		}
	}
	return out
}

// output is every task's Output: it hands sink records to the producer.
// Their promise takes no lock unless the record failed.
func (w *worker) output(r *kgo.Record) {
	w.uncommitted = true
	w.cl.Produce(w.prodCtx, r, w.onProduced)
}

func (w *worker) onProduced(r *kgo.Record, err error) {
	if err != nil {
		w.produceFailed(r, err)
	}
}

func (w *worker) produceFailed(r *kgo.Record, err error) {
	w.produced.Lock()
	defer w.produced.Unlock()
	if w.produced.err == nil {
		w.produced.err = &produceError{topic: r.Topic, partition: r.Partition, err: err}
	}
}

// commit makes the work of tasks durable, in at-least-once order: changelog
// records and outputs flushed, then the tasks' input offsets committed,
// then the overlays applied and the checkpoints advanced. Every step is
// bounded (see attemptContext); an attempt that fails with an error that
// may pass rewinds the tasks to the last commit (see retryOrFail and
// rewind) and returns nil, so that the loop goes on and tries again.
func (w *worker) commit(ctx context.Context, tasks []*activeTask) error {
	if len(tasks) == 0 {
		return nil
	}
	start := time.Now()
	for _, at := range tasks {
		at.t.FlushChangelog(start)
	}
	defer w.recordStoreSizes(tasks)
	if w.sess != nil {
		return w.commitTransaction(ctx, start)
	}
	result := metrics.CommitFailed
	defer func() { w.wm.ObserveCommit(result, time.Since(start)) }()
	ok, err := w.commitToKafka(ctx, start, tasks)
	if !ok || err != nil {
		return err
	}
	if err := w.applyCommitted(tasks); err != nil {
		return err
	}
	result = metrics.CommitOK
	w.committed()
	w.log.Debug("committed", "tasks", len(tasks), "took", time.Since(start))
	return nil
}

// commitToKafka is the Kafka half of an at-least-once commit: it flushes
// the producer and commits the tasks' input offsets. ok reports that the
// records are durable; when not, the attempt failed and the worker went
// back to its last commit (err is nil) or fails (err). w.mu is held.
func (w *worker) commitToKafka(ctx context.Context, start time.Time, tasks []*activeTask) (ok bool, err error) {
	actx, cancel := w.attemptContext(ctx, start)
	defer cancel()
	if cause := w.flush(actx); cause != nil {
		if err := w.retryOrFail(start, cause); err != nil {
			return false, err
		}
		return false, w.rewind()
	}
	offsets := taskOffsets(tasks)
	if len(offsets) > 0 {
		if err := w.commitOffsets(actx, offsets); err != nil {
			// The outputs and changelog records are durable; only the
			// offsets are not, so the records since the last commit will be
			// processed again by whoever owns them next: at-least-once.
			w.log.Warn("offset commit failed; records since the last commit will be processed again", "err", err)
		} else {
			w.noteCommitted(offsets)
		}
	}
	return true, nil
}

// taskOffsets returns the input offsets to commit for tasks: for each
// partition, the offset after the last record its task processed. Only
// processed records are committed, under both guarantees.
func taskOffsets(tasks []*activeTask) map[string]map[int32]kgo.EpochOffset {
	offsets := map[string]map[int32]kgo.EpochOffset{}
	for _, at := range tasks {
		for tp, o := range at.t.Offsets() {
			if offsets[tp.Topic] == nil {
				offsets[tp.Topic] = map[int32]kgo.EpochOffset{}
			}
			offsets[tp.Topic][tp.Partition] = kgo.EpochOffset{Epoch: -1, Offset: o}
		}
	}
	return offsets
}

// noteCommitted moves the rewind point of committed partitions to what
// was committed.
func (w *worker) noteCommitted(offsets map[string]map[int32]kgo.EpochOffset) {
	if w.rewindTo == nil {
		w.rewindTo = map[string]map[int32]kgo.EpochOffset{}
	}
	for topic, ps := range offsets {
		if w.rewindTo[topic] == nil {
			w.rewindTo[topic] = map[int32]kgo.EpochOffset{}
		}
		for p, o := range ps {
			w.rewindTo[topic][p] = o
		}
	}
}

// applyCommitted applies the tasks' committed writes to their stores and
// advances their checkpoints to the changelog offsets each task produced,
// writing a checkpoint file once it has moved checkpointRecords past the
// last one. Both guarantees call it once their commit succeeded. w.mu is
// held.
func (w *worker) applyCommitted(tasks []*activeTask) error {
	for _, at := range tasks {
		if at.store == nil {
			if err := at.t.CommitStores(noOffsets); err != nil {
				return err
			}
			continue
		}
		ends := at.out.changelogEnds()
		if err := at.t.CommitStores(at.store.nextOffsets(ends)); err != nil {
			return err
		}
		at.store.advance(ends)
		if at.store.checkpointDue() {
			if err := at.store.writeCheckpoint(); err != nil {
				return err
			}
		}
	}
	return nil
}

// recordStoreSizes exports the size of the tasks' stores whose backends
// can tell it.
func (w *worker) recordStoreSizes(tasks []*activeTask) {
	for _, at := range tasks {
		if at.store == nil {
			continue
		}
		for name, b := range at.store.backends {
			if sz, ok := b.(state.Sizer); ok {
				if n, err := sz.ApproximateSize(); err == nil {
					at.tm.SetStoreSize(name, n)
				}
			}
		}
	}
}

func (w *worker) commitOffsets(ctx context.Context, offsets map[string]map[int32]kgo.EpochOffset) error {
	var out error
	w.cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			out = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil && out == nil {
					out = fmt.Errorf("%s-%d: %w", t.Topic, p.Partition, err)
				}
			}
		}
	})
	return out
}

// partitionsByTask groups partitions into the tasks they belong to.
func (w *worker) partitionsByTask(ps map[string][]int32) []processor.TaskID {
	return w.bal.Layout().TasksOf(ps)
}

// onAssigned creates the newly assigned tasks and starts restoring them.
func (w *worker) onAssigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	<-w.ready
	w.mu.Lock()
	defer w.mu.Unlock()
	defer w.recoverCallback("assigned")
	if w.mu.closing || w.mu.fatal != nil {
		return
	}
	var fresh []processor.TaskID
	for _, id := range w.partitionsByTask(assigned) {
		if _, ok := w.mu.tasks[id]; !ok {
			fresh = append(fresh, id)
		}
	}
	if len(fresh) == 0 {
		return
	}
	w.log.Info("tasks assigned", "tasks", fmt.Sprint(fresh))
	if err := w.startTasks(fresh); err != nil {
		w.mu.fatal = err
	}
}

// startTasks creates tasks and starts them: at once when they have no
// store, else after their restore goroutine has opened (and restored)
// their stores, with their partitions paused until then. It does no I/O:
// group callbacks call it. w.mu is held.
func (w *worker) startTasks(ids []processor.TaskID) error {
	var restoring []processor.TaskID
	for _, id := range ids {
		spec := w.e.specs[id.Subtopology]
		if spec == nil {
			return fmt.Errorf("task %s: the topology has no sub-topology %d: is another application using this application id?", id, id.Subtopology)
		}
		at := newActiveTask(id, w.e.metrics.task(id))
		w.mu.tasks[id] = at
		w.publishOwned()
		if len(spec.Stores) == 0 {
			if err := w.startRunning(at, 0, time.Now()); err != nil {
				return err
			}
			continue
		}
		restoring = append(restoring, id)
		w.restores.start(at)
	}
	if len(restoring) > 0 {
		// No input until the stores are restored.
		w.cl.PauseFetchPartitions(w.bal.Layout().Partitions(restoring))
	}
	return nil
}

// onRevoked commits and closes the tasks that lose partitions. Their
// stores are closed (and, under at-least-once, their last writes applied
// and checkpointed) by the engine's closer: a callback does no disk I/O.
func (w *worker) onRevoked(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
	<-w.ready
	w.mu.Lock()
	defer w.mu.Unlock()
	defer w.recoverCallback("revoked")
	ids := w.partitionsByTask(revoked)
	if len(ids) == 0 || w.mu.closing {
		return
	}
	w.log.Info("tasks revoked", "tasks", fmt.Sprint(ids))
	w.stall.orphaned = !w.stall.since.IsZero()
	if w.sess != nil {
		// The open transaction covers these tasks' work and will abort
		// (kgo's transact session sees the revocation): close them
		// without their uncommitted writes, and abort before processing
		// more.
		w.closeTasks(ids, closeDirty)
		w.mu.abortPending = true
		return
	}
	mode := closeDirty
	if w.mu.fatal == nil {
		tasks := w.runningTasks(ids)
		for _, at := range tasks {
			at.t.FlushChangelog(time.Now())
		}
		ok, err := w.commitToKafka(w.prodCtx, time.Now(), tasks)
		if err != nil {
			w.mu.fatal = err
		} else if ok {
			mode = closeApply
		}
	}
	w.closeTasks(ids, mode)
}

// onLost closes the tasks whose partitions were lost (the session
// expired): another member may own them already, so nothing is committed.
func (w *worker) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	<-w.ready
	w.mu.Lock()
	defer w.mu.Unlock()
	defer w.recoverCallback("lost")
	ids := w.partitionsByTask(lost)
	if len(ids) == 0 {
		return
	}
	w.log.Warn("tasks lost (session expired?); closing them without commit", "tasks", fmt.Sprint(ids))
	w.stall.orphaned = !w.stall.since.IsZero()
	w.lost.Store(true)
	w.closeTasks(ids, closeDirty)
	w.mu.abortPending = w.sess != nil
}

// closeMode says what closing a task does with its uncommitted writes.
type closeMode uint8

const (
	// closeDirty discards them; the checkpoint stays as it was on disk.
	closeDirty closeMode = iota
	// closeClean: the task's work is committed and applied; its
	// checkpoint is written.
	closeClean
	// closeApply: the task's work is committed in Kafka but not yet
	// applied to its stores; the closer applies it, then writes the
	// checkpoint.
	closeApply
)

// closeTasks closes tasks: a restoring one's goroutine is abandoned, a
// running one's processors are closed here (user code, no I/O), and their
// stores go to the engine's closer. w.mu is held.
func (w *worker) closeTasks(ids []processor.TaskID, mode closeMode) {
	for _, id := range ids {
		at := w.mu.tasks[id]
		if at == nil {
			continue
		}
		delete(w.mu.tasks, id)
		w.publishOwned()
		w.forgetPartitions(id)
		w.e.running.set(id, false)
		w.e.metrics.m.RemoveTask(id.String())
		w.restores.abandon(at)
		at.held = nil
		if at.t != nil {
			if mode == closeDirty {
				at.t.AbortStores()
			}
			if n := at.t.DropBuffered(); n > 0 {
				w.log.Debug("dropped buffered records of a closed task", "task", id, "records", n)
			}
			if err := at.t.Close(); err != nil {
				w.log.Warn("close task", "task", id, "err", err)
			}
		}
		if at.store != nil {
			var apply func() error
			if mode == closeApply {
				t, ts, out := at.t, at.store, at.out
				apply = func() error {
					ends := out.changelogEnds()
					if err := t.CommitStores(ts.nextOffsets(ends)); err != nil {
						return err
					}
					ts.advance(ends)
					return nil
				}
			}
			w.e.closer.close(at.store, apply, mode == closeClean)
		}
		at.life.to(taskClosed)
	}
}

// forgetPartitions drops the rewind points of task id's partitions.
func (w *worker) forgetPartitions(id processor.TaskID) {
	for topic, ps := range w.bal.Layout().Partitions([]processor.TaskID{id}) {
		for _, p := range ps {
			delete(w.rewindTo[topic], p)
		}
	}
}

// shutdown commits (when clean) and closes every task, then closes the
// client, which leaves the group at once.
func (w *worker) shutdown(clean bool) error {
	w.mu.Lock()
	w.mu.closing = true
	var err error
	// Nothing new since the last commit means nothing to commit (and under
	// exactly-once an empty commit costs kgo a 500 ms pause).
	if clean && w.mu.fatal == nil && w.uncommitted {
		// Half the shutdown budget: closing and leaving the group need
		// the rest.
		ctx, cancel := context.WithTimeout(w.prodCtx, w.e.cfg.ShutdownTimeout/2)
		err = w.commit(ctx, w.runningTasks(nil))
		cancel()
		if err != nil {
			err = fmt.Errorf("eddy: worker %d: final commit: %w", w.idx, err)
		}
	} else if clean && w.mu.fatal == nil && !w.stall.since.IsZero() && !w.stall.orphaned && len(w.mu.tasks) > 0 {
		// The last commit attempt failed and the tasks went back to the
		// commit before it: nothing is left to commit, but what was read
		// since that commit was not committed. Say so rather than stop as
		// if all were well. (A worker whose tasks were taken away after the
		// failure, as a fenced zombie's are, owes nothing, even if it was
		// given tasks again: their work restarts from what the brokers
		// hold.)
		err = fmt.Errorf("eddy: worker %d: stopped while commits were failing (for %v, %d attempts): the records read since the last commit were not committed and will be processed again by the next owner of their tasks: %w",
			w.idx, time.Since(w.stall.since).Round(time.Millisecond), w.stall.attempts, w.stall.cause)
	}
	cleanClose := clean && err == nil && w.mu.fatal == nil
	// With a Begin still running (beginBounded), no transaction is open,
	// and End would wait for that Begin's lock.
	if w.sess != nil && !cleanClose && w.beginDone == nil {
		// Abort what is open so that the next owner of these tasks need
		// not wait for the transaction timeout. Best effort: after a fence
		// this fails, and the coordinator aborts it anyway.
		ctx, cancel := context.WithTimeout(w.prodCtx, 5*time.Second)
		if _, aerr := w.sess.End(ctx, kgo.TryAbort); aerr != nil {
			w.log.Debug("abort at shutdown", "err", aerr)
		}
		cancel()
	}
	mode := closeDirty
	if cleanClose {
		mode = closeClean
	}
	w.closeTasks(w.sortedTasks(), mode)
	w.mu.Unlock()
	w.restores.close()
	w.bal.Close()
	w.cl.AllowRebalance()
	w.cl.Close()
	if w.beginDone != nil {
		<-w.beginDone // the client's close ends it
	}
	w.prodCancel()
	return err
}
