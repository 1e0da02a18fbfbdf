package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddystream/eddy/internal/changelog"
	"github.com/eddystream/eddy/processor"
	"github.com/eddystream/eddy/state"
)

// standbyCheckpointInterval is how often a standby task writes the
// checkpoint of its persistent stores while it replays.
const standbyCheckpointInterval = 10 * time.Second

// standbyGrace is how long a standby task that no assignment lists any
// more stays open. A task that moves to this process takes two rebalances
// (see rebalance.Plan.Deferred); between them the task is neither active
// nor standby here, and closing it would cost the promotion its head
// start (all of it, for in-memory stores).
const standbyGrace = 30 * time.Second

// standbyEndsInterval is how often the manager lists the last stable
// offsets of the standby changelogs, so that the lag it reports is current
// also when no records come (a fetch that returns none tells nothing).
const standbyEndsInterval = 2 * time.Second

// standbyPollWait bounds one poll of the standby consumer, so that changes
// to the standby set are picked up soon even when no records come.
const standbyPollWait = 250 * time.Millisecond

// standbyManager keeps the process's standby tasks (and warm-up replicas,
// which are standby tasks too): stores that replay their changelogs,
// read_committed, as the active task elsewhere writes them. It is shared by
// the process's workers: each reports the standby tasks of its assignment,
// and a worker that is assigned a task as active takes the standby's
// stores over (take), so the task restores only what the standby had not
// yet replayed.
//
// One goroutine (run) owns the consumer and does the replay; mu guards the
// tasks, which rebalance callbacks (take) and the join metadata
// (offsetSums, through a snapshot) also reach.
type standbyManager struct {
	e    *Engine
	log  *slog.Logger
	cl   *kgo.Client
	ctx  context.Context
	stop context.CancelFunc
	done chan struct{}

	// mu guards the open standby tasks. The manager's goroutine holds it
	// across store I/O (open, apply, sync, close), so nothing that a group
	// callback or a balancer hook calls takes it: they use want.
	mu struct {
		sync.Mutex
		tasks map[processor.TaskID]*standbyTask
		byTP  map[changelog.TopicPartition]standbyStore
	}
	// want holds what the assignments ask for; it is never held across
	// I/O.
	want struct {
		sync.Mutex
		// wanted holds each worker's standby tasks, from its last
		// assignment.
		wanted map[int][]processor.TaskID
		// wake ends the poll in flight, so that a change to wanted is
		// acted on at once.
		wake context.CancelFunc
	}
	// positions is a snapshot of every standby task's changelog offset
	// sum, for the join metadata (read by kgo's group goroutine, which must
	// not wait for a replay batch).
	positions atomic.Pointer[map[processor.TaskID]int64]
}

// standbyStore names one logged store of a standby task.
type standbyStore struct {
	task  *standbyTask
	store string
}

// standbyTask is one standby task's stores and replay position.
type standbyTask struct {
	life   lifecycle
	stores *taskStores
	// next holds, per changelog partition, the offset of the next record
	// to replay; end the last stable offset the last fetch reported; from
	// where the replay started (the checkpoint, or 0).
	next map[changelog.TopicPartition]int64
	end  map[changelog.TopicPartition]int64
	from map[changelog.TopicPartition]int64
	// unwantedSince is when the task left every assignment (zero while a
	// worker wants it).
	unwantedSince  time.Time
	lastCheckpoint time.Time
}

// resumeAt returns the replay position of the in-memory stores: where a
// promoted task's restore picks up. The persistent stores' positions are
// in the task's checkpoint.
func (sb *standbyTask) resumeAt() map[changelog.TopicPartition]int64 {
	out := map[changelog.TopicPartition]int64{}
	for store, tp := range sb.stores.logged {
		if !sb.stores.persistent[store] {
			out[tp] = sb.next[tp]
		}
	}
	return out
}

// ahead says why, if the checkpoint the task opened at claims offsets of
// tp that the changelog, whose log ends at logEnd, does not have: nothing
// has been replayed since (the consumer reset to the log start, and every
// record it reads lies below the checkpoint). It returns "" when the
// checkpoint is fine. The log's end, not its last stable offset, decides:
// a transaction still open below the checkpoint (a zombie's) holds the
// last stable offset below data that is there (see changelog.Restorer).
func (sb *standbyTask) ahead(tp changelog.TopicPartition, logEnd int64) string {
	if sb.next[tp] != sb.from[tp] || sb.from[tp] <= logEnd {
		return ""
	}
	return fmt.Sprintf("%s: checkpoint %d, log end %d", tp, sb.from[tp], logEnd)
}

// lag returns how many changelog records the task is behind, as of the
// last fetch.
func (sb *standbyTask) lag() int64 {
	var lag int64
	for tp, next := range sb.next {
		if end, ok := sb.end[tp]; ok && end > next {
			lag += end - next
		}
	}
	return lag
}

// offsetSum is the sum of the task's replay positions.
func (sb *standbyTask) offsetSum() int64 {
	var sum int64
	for _, next := range sb.next {
		sum += next
	}
	return sum
}

func newStandbyManager(e *Engine) (*standbyManager, error) {
	cl, err := kgo.NewClient(e.clientOpts(
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(500*time.Millisecond),
	)...)
	if err != nil {
		return nil, fmt.Errorf("eddy: create standby client: %w", err)
	}
	sm := &standbyManager{e: e, log: e.log.With("component", "standby"), cl: cl, done: make(chan struct{})}
	sm.want.wanted = map[int][]processor.TaskID{}
	sm.mu.tasks = map[processor.TaskID]*standbyTask{}
	sm.mu.byTP = map[changelog.TopicPartition]standbyStore{}
	sm.ctx, sm.stop = context.WithCancel(context.Background())
	go sm.run()
	return sm, nil
}

// assign records worker's standby tasks from its latest assignment. It
// does not block on I/O: the manager's goroutine opens and closes tasks.
func (sm *standbyManager) assign(worker int, tasks []processor.TaskID) {
	sm.want.Lock()
	defer sm.want.Unlock()
	if slices.Equal(sm.want.wanted[worker], tasks) {
		return
	}
	sm.want.wanted[worker] = slices.Clone(tasks)
	if sm.want.wake != nil {
		sm.want.wake()
	}
}

// wantedBy returns the standby tasks worker was last assigned.
func (sm *standbyManager) wantedBy(worker int) []processor.TaskID {
	sm.want.Lock()
	defer sm.want.Unlock()
	return slices.Clone(sm.want.wanted[worker])
}

// take removes the standby of id, if the process has one open, and hands
// its stores (and directory lock) to the caller, which makes it an active
// task. It returns nil if there is none.
func (sm *standbyManager) take(id processor.TaskID) *standbyTask {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	sb := sm.mu.tasks[id]
	if sb == nil {
		return nil
	}
	sm.removeLocked(id, sb)
	sm.e.metrics.task(id).ClearStandbyLag()
	return sb
}

// removeLocked stops replaying sb. sm.mu is held.
func (sm *standbyManager) removeLocked(id processor.TaskID, sb *standbyTask) {
	sb.life.to(taskClosed)
	delete(sm.mu.tasks, id)
	rm := map[string][]int32{}
	for _, tp := range sb.stores.logged {
		delete(sm.mu.byTP, tp)
		rm[tp.Topic] = append(rm[tp.Topic], tp.Partition)
	}
	sm.cl.RemoveConsumePartitions(rm)
	sm.publishLocked()
}

// publishLocked refreshes the positions snapshot. sm.mu is held.
func (sm *standbyManager) publishLocked() {
	pos := make(map[processor.TaskID]int64, len(sm.mu.tasks))
	for id, sb := range sm.mu.tasks {
		pos[id] = sb.offsetSum()
	}
	sm.positions.Store(&pos)
}

// offsetSums returns the replay position of every standby task.
func (sm *standbyManager) offsetSums() map[processor.TaskID]int64 {
	if p := sm.positions.Load(); p != nil {
		return *p
	}
	return nil
}

// run is the manager's goroutine: it opens and closes standby tasks as the
// assignments change, and replays their changelogs.
func (sm *standbyManager) run() {
	defer close(sm.done)
	var listed time.Time
	for {
		if time.Since(listed) >= standbyEndsInterval {
			sm.refreshEnds()
			listed = time.Now()
		}
		ctx, cancel := context.WithTimeout(sm.ctx, standbyPollWait)
		sm.mu.Lock()
		sm.reconcileLocked(time.Now())
		sm.mu.Unlock()
		sm.want.Lock()
		sm.want.wake = cancel
		sm.want.Unlock()
		fetches := sm.cl.PollRecords(ctx, maxPollRecords)
		sm.want.Lock()
		sm.want.wake = nil
		sm.want.Unlock()
		cancel()
		if sm.ctx.Err() != nil {
			return
		}
		if err := sm.apply(fetches); err != nil {
			// A store that cannot take writes cannot be a standby: close
			// it; a later assignment reopens it from its checkpoint.
			sm.log.Warn("standby replay failed", "err", err)
		}
	}
}

// reconcileLocked opens the wanted standby tasks that are not open, closes
// those nobody has wanted for standbyGrace, and writes due checkpoints.
// sm.mu is held.
func (sm *standbyManager) reconcileLocked(now time.Time) {
	wanted := map[processor.TaskID]bool{}
	sm.want.Lock()
	for _, ids := range sm.want.wanted {
		for _, id := range ids {
			wanted[id] = true
		}
	}
	sm.want.Unlock()
	for _, id := range sortedIDs(wanted) {
		if sb := sm.mu.tasks[id]; sb != nil {
			sb.unwantedSince = time.Time{}
			continue
		}
		if err := sm.openLocked(id, now); err != nil {
			if errors.Is(err, ErrTaskDirLocked) {
				// A worker of this process still runs or closes the
				// task as active; try again next round.
				sm.log.Debug("standby task waits for its directory", "task", id)
				continue
			}
			sm.log.Warn("cannot open standby task; it will be retried", "task", id, "err", err)
		}
	}
	changed := false
	for id, sb := range sm.mu.tasks {
		switch {
		case wanted[id]:
		case sb.unwantedSince.IsZero():
			sb.unwantedSince = now
		case now.Sub(sb.unwantedSince) >= standbyGrace:
			sm.closeLocked(id, sb)
			changed = true
			continue
		}
		if now.Sub(sb.lastCheckpoint) >= standbyCheckpointInterval {
			if err := sb.stores.writeCheckpoint(); err != nil {
				sm.log.Warn("write standby checkpoint", "task", id, "err", err)
			}
			sb.lastCheckpoint = now
		}
	}
	if changed {
		sm.publishLocked()
	}
}

// openLocked opens a standby task's stores and starts replaying their
// changelogs from the checkpoint (persistent stores) or from the start.
// sm.mu is held.
func (sm *standbyManager) openLocked(id processor.TaskID, now time.Time) error {
	ts, err := sm.e.openTaskStores(id, sm.log, 0)
	if err != nil {
		return err
	}
	if len(ts.logged) == 0 {
		// Nothing to keep warm (the assignor gives standbys only to
		// stateful tasks; this guards a mismatched topology).
		return ts.close()
	}
	sb := &standbyTask{
		stores:         ts,
		next:           map[changelog.TopicPartition]int64{},
		end:            map[changelog.TopicPartition]int64{},
		from:           map[changelog.TopicPartition]int64{},
		lastCheckpoint: now,
	}
	add := map[string]map[int32]kgo.Offset{}
	for store, tp := range ts.logged {
		start := int64(0)
		off := kgo.NewOffset().AtStart()
		if cp, ok := ts.checkpoint[tp]; ok && ts.persistent[store] {
			start = cp
			off = kgo.NewOffset().At(cp)
		}
		sb.next[tp], sb.from[tp] = start, start
		if add[tp.Topic] == nil {
			add[tp.Topic] = map[int32]kgo.Offset{}
		}
		add[tp.Topic][tp.Partition] = off
		sm.mu.byTP[tp] = standbyStore{task: sb, store: store}
	}
	sb.life = lifecycle{id: id, kind: "standby", table: standbyTransitions}
	sb.life.to(taskRunning)
	sm.mu.tasks[id] = sb
	sm.cl.AddConsumePartitions(add)
	sm.publishLocked()
	sm.log.Info("standby task opened", "task", id, "checkpoint", fmt.Sprint(ts.checkpoint))
	return nil
}

// closeLocked stops a standby task and closes its stores, checkpointed.
// sm.mu is held.
func (sm *standbyManager) closeLocked(id processor.TaskID, sb *standbyTask) {
	sm.removeLocked(id, sb)
	sm.e.metrics.task(id).ClearStandbyLag()
	if err := sb.stores.writeCheckpoint(); err != nil {
		sm.log.Warn("write standby checkpoint", "task", id, "err", err)
	}
	if err := sb.stores.close(); err != nil {
		sm.log.Warn("close standby task", "task", id, "err", err)
	}
	sm.log.Info("standby task closed", "task", id)
}

// apply replays fetched changelog records into the standby stores.
func (sm *standbyManager) apply(fetches kgo.Fetches) error {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	fetches.EachError(func(topic string, p int32, err error) {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return
		}
		sm.log.Warn("standby fetch error; the client retries", "topic", topic, "partition", p, "err", err)
	})
	var errs []error
	touched := map[*standbyTask]bool{}
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		tp := changelog.TopicPartition{Topic: p.Topic, Partition: p.Partition}
		s, ok := sm.mu.byTP[tp]
		if !ok {
			return // removed while the fetch was in flight
		}
		sb := s.task
		if p.Err != nil || len(p.Records) == 0 {
			return
		}
		if why := sb.ahead(tp, p.HighWatermark); why != "" {
			sm.wipeLocked(sb, why)
			delete(touched, sb)
			return
		}
		next := sb.next[tp]
		batch := make([]state.Write, 0, len(p.Records))
		for _, r := range p.Records {
			if r.Offset < next {
				continue
			}
			batch = append(batch, state.Write{Key: r.Key, Value: r.Value, Delete: r.Value == nil})
			next = r.Offset + 1
		}
		if len(batch) > 0 {
			if err := applyNoSync(sb.stores.backends[s.store], batch, next); err != nil {
				errs = append(errs, fmt.Errorf("task %s: store %q: %w", sb.stores.id, s.store, err))
				sm.closeLocked(sb.stores.id, sb)
				return
			}
			sb.next[tp] = next
			sb.stores.advance(map[changelog.TopicPartition]int64{tp: next})
			if retention := sb.stores.retention[s.store]; retention > 0 {
				// A replica's window store is never written through its
				// typed store, which would expire its segments.
				if _, err := state.ExpireSegments(sb.stores.backends[s.store], retention); err != nil {
					errs = append(errs, fmt.Errorf("task %s: store %q: drop expired segments: %w", sb.stores.id, s.store, err))
				}
			}
		}
		sb.end[tp] = p.LastStableOffset
		touched[sb] = true
	})
	for sb := range touched {
		if _, open := sm.mu.tasks[sb.stores.id]; open {
			sm.e.metrics.task(sb.stores.id).SetStandbyLag(sb.lag())
		}
	}
	if len(touched) > 0 {
		sm.publishLocked()
	}
	return errors.Join(errs...)
}

// refreshEnds lists the last stable offsets of the standby tasks'
// changelog partitions and updates their lag. The listing runs without
// sm.mu, so a promotion never waits for it.
func (sm *standbyManager) refreshEnds() {
	sm.mu.Lock()
	topics := map[string]bool{}
	for tp := range sm.mu.byTP {
		topics[tp.Topic] = true
	}
	sm.mu.Unlock()
	if len(topics) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(sm.ctx, 5*time.Second)
	defer cancel()
	names := slices.Sorted(maps.Keys(topics))
	listed, err := sm.e.adm.ListCommittedOffsets(ctx, names...)
	if err == nil {
		err = listed.Error()
	}
	var logEnds kadm.ListedOffsets
	if err == nil {
		if logEnds, err = sm.e.adm.ListEndOffsets(ctx, names...); err == nil {
			err = logEnds.Error()
		}
	}
	if err != nil {
		if sm.ctx.Err() == nil {
			sm.log.Debug("list standby changelog ends", "err", err)
		}
		return
	}
	sm.mu.Lock()
	defer sm.mu.Unlock()
	touched := map[*standbyTask]bool{}
	ahead := map[*standbyTask]string{}
	listed.Each(func(o kadm.ListedOffset) {
		tp := changelog.TopicPartition{Topic: o.Topic, Partition: o.Partition}
		s, ok := sm.mu.byTP[tp]
		if !ok {
			return
		}
		sb := s.task
		if logEnd, ok := logEnds.Lookup(o.Topic, o.Partition); ok {
			if why := sb.ahead(tp, logEnd.Offset); why != "" {
				ahead[sb] = why
			}
		}
		sb.end[tp] = max(sb.end[tp], o.Offset)
		touched[sb] = true
	})
	for sb, why := range ahead {
		sm.wipeLocked(sb, why)
		delete(touched, sb)
	}
	for sb := range touched {
		sm.e.metrics.task(sb.stores.id).SetStandbyLag(sb.lag())
	}
}

// wipeLocked wipes a standby task whose checkpoint is ahead of its
// changelog (the topic was recreated, or the store holds writes that never
// committed), as an active task's restore would (taskStores.wipe), and
// closes it, so that the next round reopens it empty and replays it in
// full from a consumer position of its own. sm.mu is held.
func (sm *standbyManager) wipeLocked(sb *standbyTask, why string) {
	id := sb.stores.id
	sm.log.Warn("standby checkpoint is ahead of the changelog; wiping the standby's stores and replaying them in full", "task", id, "detail", why)
	sm.removeLocked(id, sb)
	sm.e.metrics.task(id).ClearStandbyLag()
	if err := sb.stores.wipe(); err != nil {
		sm.log.Warn("wipe standby task", "task", id, "err", err)
	}
	if err := sb.stores.close(); err != nil {
		sm.log.Warn("close standby task", "task", id, "err", err)
	}
}

// close stops the manager and closes every standby task, checkpointed.
func (sm *standbyManager) close() {
	sm.stop()
	<-sm.done
	sm.mu.Lock()
	for id, sb := range sm.mu.tasks {
		sm.closeLocked(id, sb)
	}
	sm.mu.Unlock()
	sm.cl.Close()
}

// sortedIDs returns the keys of a task set in order.
func sortedIDs(set map[processor.TaskID]bool) []processor.TaskID {
	ids := make([]processor.TaskID, 0, len(set))
	for id := range set {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, processor.TaskID.Compare)
	return ids
}

// applyNoSync applies a replayed batch, which ends before changelog
// offset next, without an fsync where the backend allows it: the standby
// syncs before each checkpoint instead. A backend that records its offset
// (state.OffsetRecorder) records next with the batch.
func applyNoSync(b state.Backend, batch []state.Write, next int64) error {
	if rec, ok := b.(state.OffsetRecorder); ok {
		return rec.ApplyAt(batch, next, false)
	}
	if bulk, ok := b.(state.BulkApplier); ok {
		return bulk.ApplyNoSync(batch)
	}
	return b.Apply(batch)
}
