package rebalance

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/eddystream/eddy/processor"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddystream/eddy/internal/settings"
	"github.com/eddystream/eddy/rebalance"
)

// endOffsetsTimeout bounds the leader's Config.EndOffsets call: the
// balance runs inside the group's rebalance, which must not stall.
const endOffsetsTimeout = 10 * time.Second

// ProtocolName is rebalance.ProtocolName, the name of eddy's group
// protocol.
const ProtocolName = rebalance.ProtocolName

// Config configures a Balancer.
type Config struct {
	// Subtopologies lists the topology's sub-topologies and their source
	// topics (see NewLayout for what is valid). Required.
	Subtopologies []Subtopology
	// ProcessID identifies the instance; all workers of an instance share
	// it. Use a UUID that the instance keeps across restarts, so that after
	// a restart it gets back the tasks whose state it has. Required; Kafka
	// Streams keeps its equivalent, the process id, in the state directory.
	ProcessID string
	// Endpoint is the instance's host:port for interactive queries. The
	// default, "", is none. Kafka Streams: application.server.
	Endpoint string
	// Rack is the member's rack, sent in the standard subscription field
	// (KIP-881). The default, "", leaves it to kgo's Rack option, which
	// fills the same field. Kafka Streams: client.rack.
	Rack string
	// WorkerIndex and WorkerCount are the member's worker number within
	// its instance and the instance's number of workers, reported in the
	// metadata for operators. The default, 0 and 0, is not reported.
	// Kafka Streams: the stream thread index and num.stream.threads.
	WorkerIndex, WorkerCount int
	// OwnedTasks returns the active tasks the member runs, when it joins;
	// the engine knows them. The default derives them from the partitions
	// kgo says the member owns: every task with at least one owned
	// partition. Kafka Streams: the previous active tasks of its
	// subscription info.
	OwnedTasks func() []processor.TaskID
	// StandbyTasks returns the standby tasks (standby and warm-up
	// replicas) the member runs, when it joins; reported in its metadata.
	// kgo calls it from its group goroutine: it must not block. The
	// default reports none. Kafka Streams: the previous standby tasks of
	// its subscription info.
	StandbyTasks func() []processor.TaskID
	// TaskOffsetSums returns, for every task whose state the member's
	// instance has (on disk, as a standby or as an active task), the sum
	// of the task's changelog offsets the state has restored up to (the
	// next offsets to read: its checkpoint; see Layout.TaskOffsetSum), or
	// OffsetSumRunning for a task the member runs as an active task and is
	// caught up. The workers of an instance may report the same map or
	// parts of it: the leader takes, per instance and task, the best.
	// Sums below 0, other than OffsetSumRunning, are left out. kgo calls
	// it from its group goroutine: it must not block. The default reports
	// none, so the leader sees no state anywhere but on the tasks' owners.
	// Kafka Streams: the task offset sums of its subscription info.
	TaskOffsetSums func() map[processor.TaskID]int64
	// EndOffsets returns the end offsets of the partitions of the given
	// topics, by topic and partition. The group leader calls it inside
	// each balance, with Layout().ChangelogTopics() (not at all for a
	// stateless topology) and a context that expires after 10 seconds, to
	// compute the lags of stateful tasks. The default, nil, or an error
	// (logged at Warn) leaves the lags unknown: tasks then stay with their
	// owners and instances that have their state, and the group probes
	// again after ProbingRebalanceInterval. Kafka Streams: the leader's
	// admin client listing the changelogs' end offsets.
	EndOffsets func(ctx context.Context, topics []string) (map[string]map[int32]int64, error)
	// Assignor holds the replica settings, under the names of the eddy
	// options that set them, taken literally (see settings.Assignor):
	// NumStandbyReplicas is how many standby replicas of each stateful
	// task the leader assigns, each on another instance than the task's
	// active one; AcceptableRecoveryLag the lag (changelog records, summed
	// over a task's changelog partitions) up to which an instance counts
	// as caught up; MaxWarmupReplicas how many warm-up replicas the group
	// may have at once; ProbingRebalanceInterval how long after an
	// assignment that asks for a probing rebalance
	// (Assignment.ProbeRebalance) the member calls RequestRebalance, which
	// must be positive if RequestRebalance is set. Kafka Streams:
	// num.standby.replicas, acceptable.recovery.lag, max.warmup.replicas,
	// probing.rebalance.interval.ms.
	settings.Assignor
	// RequestRebalance triggers a rebalance of the group; the engine
	// passes its kgo client's ForceRebalance. The Balancer calls it from a
	// timer goroutine when a probing rebalance is due; a newer assignment
	// cancels or re-arms the timer, and Close stops it. The default, nil,
	// never probes.
	RequestRebalance func()
	// OnAssignment, if set, is called with each assignment the member
	// receives, from kgo's group goroutine inside ParseSyncAssignment:
	// before kgo calls OnPartitionsRevoked and OnPartitionsAssigned for
	// that assignment. It must not block. The default is no call; see also
	// Balancer.LastAssignment.
	OnAssignment func(Assignment)
	// Logger receives the balancer's logs: Info for each balance the
	// member leads, Debug for every member's assignment. The default
	// discards them.
	Logger *slog.Logger
}

// Balancer is eddy's kgo.GroupBalancer: a cooperative balancer that assigns
// whole tasks. Give each member's kgo client its own Balancer, with
// kgo.Balancers, and have it consume exactly Layout().SourceTopics().
//
// As a member, the Balancer encodes its MemberMetadata at each join and
// decodes the Assignment it receives. As the group leader it decodes every
// member's metadata and runs Assign.
type Balancer struct {
	cfg    Config
	layout *Layout
	log    *slog.Logger

	// probes counts the probing timers that fired and are calling
	// RequestRebalance, for Close to wait for.
	probes sync.WaitGroup

	mu struct {
		sync.Mutex
		last   Assignment
		ok     bool
		probe  *time.Timer // the pending probing rebalance, or nil
		closed bool
	}
}

var _ kgo.GroupBalancer = (*Balancer)(nil)

// NewBalancer validates cfg and returns a Balancer. Errors wrap
// ErrInvalidConfig.
func NewBalancer(cfg Config) (*Balancer, error) {
	layout, err := NewLayout(cfg.Subtopologies)
	if err != nil {
		return nil, err
	}
	if cfg.ProcessID == "" {
		return nil, fmt.Errorf("%w: ProcessID is empty; give each instance a UUID that it keeps", ErrInvalidConfig)
	}
	if cfg.WorkerIndex < 0 || cfg.WorkerCount < 0 || cfg.WorkerIndex > math.MaxInt32 || cfg.WorkerCount > math.MaxInt32 ||
		cfg.WorkerCount > 0 && cfg.WorkerIndex >= cfg.WorkerCount {
		return nil, fmt.Errorf("%w: WorkerIndex %d, WorkerCount %d: want 0 <= WorkerIndex < WorkerCount, or both 0",
			ErrInvalidConfig, cfg.WorkerIndex, cfg.WorkerCount)
	}
	switch {
	case cfg.NumStandbyReplicas < 0:
		return nil, fmt.Errorf("%w: NumStandbyReplicas %d is negative", ErrInvalidConfig, cfg.NumStandbyReplicas)
	case cfg.AcceptableRecoveryLag < 0:
		return nil, fmt.Errorf("%w: AcceptableRecoveryLag %d is negative", ErrInvalidConfig, cfg.AcceptableRecoveryLag)
	case cfg.MaxWarmupReplicas < 0:
		return nil, fmt.Errorf("%w: MaxWarmupReplicas %d is negative", ErrInvalidConfig, cfg.MaxWarmupReplicas)
	case cfg.ProbingRebalanceInterval < 0 || cfg.RequestRebalance != nil && cfg.ProbingRebalanceInterval == 0:
		return nil, fmt.Errorf("%w: ProbingRebalanceInterval %v: want a positive interval for RequestRebalance", ErrInvalidConfig, cfg.ProbingRebalanceInterval)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Balancer{cfg: cfg, layout: layout, log: log}, nil
}

// Close stops the pending probing rebalance timer, if any, and waits for a
// RequestRebalance call that its timer started to return. Later
// assignments arm no timer. Call it when the member leaves the group.
func (b *Balancer) Close() {
	b.mu.Lock()
	b.mu.closed = true
	if b.mu.probe != nil {
		b.mu.probe.Stop()
		b.mu.probe = nil
	}
	b.mu.Unlock()
	b.probes.Wait()
}

// scheduleProbeLocked cancels the pending probing rebalance and, if probe
// is set, arms a new one. b.mu is held.
func (b *Balancer) scheduleProbeLocked(probe bool) {
	if b.mu.probe != nil {
		b.mu.probe.Stop()
		b.mu.probe = nil
	}
	if !probe || b.mu.closed || b.cfg.RequestRebalance == nil {
		return
	}
	var t *time.Timer
	t = time.AfterFunc(b.cfg.ProbingRebalanceInterval, func() {
		b.mu.Lock()
		if b.mu.probe != t { // cancelled after it fired, or closed
			b.mu.Unlock()
			return
		}
		b.mu.probe = nil
		// Added under b.mu, before Close can set closed: Close's
		// Wait sees this call.
		b.probes.Add(1)
		b.mu.Unlock()
		defer b.probes.Done()
		b.log.Info("rebalance: requesting a probing rebalance")
		b.cfg.RequestRebalance()
	})
	b.mu.probe = t
}

// Layout returns the task layout the Balancer assigns by.
func (b *Balancer) Layout() *Layout { return b.layout }

// LastAssignment returns the last assignment the member received; ok is
// false until it receives one.
func (b *Balancer) LastAssignment() (a Assignment, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.mu.last, b.mu.ok
}

// ProtocolName implements kgo.GroupBalancer; it returns ProtocolName.
func (*Balancer) ProtocolName() string { return ProtocolName }

// IsCooperative implements kgo.GroupBalancer; it returns true. A member
// keeps consuming what it keeps across a rebalance, and kgo makes a member
// that lost partitions rejoin, which completes a move (see Plan.Deferred).
func (*Balancer) IsCooperative() bool { return true }

// JoinGroupMetadata implements kgo.GroupBalancer. It encodes the member's
// MemberMetadata: the layout's source topics (not kgo's topic interests, so
// that every member states the topology's inputs), currentAssignment as the
// owned partitions, the owned and standby tasks and the task offset sums
// from the Config's callbacks, the generation and the configured identity.
func (b *Balancer) JoinGroupMetadata(_ []string, currentAssignment map[string][]int32, generation int32) []byte {
	var owned []processor.TaskID
	if b.cfg.OwnedTasks != nil {
		owned = b.validTasks("OwnedTasks", b.cfg.OwnedTasks())
	} else {
		owned = b.layout.TasksOf(currentAssignment)
	}
	var standby []processor.TaskID
	if b.cfg.StandbyTasks != nil {
		standby = b.validTasks("StandbyTasks", b.cfg.StandbyTasks())
	}
	var sums map[processor.TaskID]int64
	if b.cfg.TaskOffsetSums != nil {
		for t, sum := range b.cfg.TaskOffsetSums() {
			if checkTask(t) != nil || sum < 0 && sum != OffsetSumRunning {
				b.log.Error("rebalance: TaskOffsetSums returned an invalid entry; leaving it out of the join metadata",
					"task", t.String(), "sum", sum)
				continue
			}
			if sums == nil {
				sums = make(map[processor.TaskID]int64)
			}
			sums[t] = sum
		}
	}
	m := MemberMetadata{
		ProcessID:       b.cfg.ProcessID,
		Endpoint:        b.cfg.Endpoint,
		Rack:            b.cfg.Rack,
		WorkerIndex:     b.cfg.WorkerIndex,
		WorkerCount:     b.cfg.WorkerCount,
		Topics:          b.layout.SourceTopics(),
		OwnedPartitions: currentAssignment,
		Generation:      generation,
		ActiveTasks:     owned,
		StandbyTasks:    standby,
		TaskOffsetSums:  sums,
	}
	out, err := m.Encode()
	if err != nil {
		// Only a negative partition from kgo can get here. Joining
		// with no metadata makes the leader fail the balance with a
		// MemberMetadataError naming this member, which is louder
		// than joining with a wrong claim.
		b.log.Error("rebalance: cannot encode join metadata", "err", err)
		return nil
	}
	return out
}

// validTasks returns the valid tasks of ts, a copy, logging the others.
func (b *Balancer) validTasks(from string, ts []processor.TaskID) []processor.TaskID {
	var out []processor.TaskID
	for _, t := range ts {
		if err := checkTask(t); err != nil {
			b.log.Error("rebalance: "+from+" returned an invalid task; leaving it out of the join metadata", "task", t.String())
			continue
		}
		out = append(out, t)
	}
	return out
}

// ParseSyncAssignment implements kgo.GroupBalancer. It decodes the member's
// Assignment, records it for LastAssignment and OnAssignment, and returns
// the partitions of its active tasks, which kgo consumes. An empty
// assignment (the leader gave the member nothing) is an empty Assignment.
// If the assignment asks for a probing rebalance, it arms a timer that
// calls Config.RequestRebalance after Config.ProbingRebalanceInterval;
// every assignment cancels the timer of the previous one.
func (b *Balancer) ParseSyncAssignment(assignment []byte) (map[string][]int32, error) {
	var a Assignment
	if len(assignment) > 0 {
		var err error
		if a, err = DecodeAssignment(assignment); err != nil {
			return nil, err
		}
	}
	b.mu.Lock()
	b.mu.last, b.mu.ok = a, true
	b.scheduleProbeLocked(a.ProbeRebalance)
	b.mu.Unlock()
	if b.cfg.OnAssignment != nil {
		b.cfg.OnAssignment(a)
	}
	out := make(map[string][]int32, len(a.Partitions))
	for topic, ps := range a.Partitions {
		out[topic] = slices.Clone(ps)
	}
	return out, nil
}

// MemberBalancer implements kgo.GroupBalancer; kgo calls it on the group
// leader. It decodes every member's metadata and returns a balancer for
// them, and as topics the layout's source topics and every topic a member
// consumes. A member whose metadata is not eddy's fails it with a
// *MemberMetadataError.
func (b *Balancer) MemberBalancer(members []kmsg.JoinGroupResponseMember) (kgo.GroupMemberBalancer, map[string]struct{}, error) {
	topics := make(map[string]struct{})
	for _, t := range b.layout.topics {
		topics[t] = struct{}{}
	}
	ms := make([]Member, 0, len(members))
	for _, jm := range members {
		md, err := DecodeMemberMetadata(jm.ProtocolMetadata)
		if err != nil {
			e := &MemberMetadataError{MemberID: jm.MemberID, Err: err}
			if jm.InstanceID != nil {
				e.InstanceID = *jm.InstanceID
			}
			return nil, nil, e
		}
		for _, t := range md.Topics {
			topics[t] = struct{}{}
		}
		ms = append(ms, Member{ID: jm.MemberID, Metadata: md})
	}
	return &memberBalancer{b: b, members: ms}, topics, nil
}

// memberBalancer balances one rebalance on the leader.
type memberBalancer struct {
	b       *Balancer
	members []Member
}

var _ kgo.GroupMemberBalancerOrError = (*memberBalancer)(nil)

// Balance implements kgo.GroupMemberBalancer. kgo calls BalanceOrError
// instead; Balance returns nil on error, which kgo reports as a failed
// balance.
func (mb *memberBalancer) Balance(topics map[string]int32) kgo.IntoSyncAssignment {
	into, err := mb.BalanceOrError(topics)
	if err != nil {
		return nil
	}
	return into
}

// BalanceOrError implements kgo.GroupMemberBalancerOrError: it fetches
// the changelogs' end offsets (Config.EndOffsets), runs Assign and encodes
// the plan. kgo fails the balance with Assign's error, such as a
// *CopartitionError.
func (mb *memberBalancer) BalanceOrError(topics map[string]int32) (kgo.IntoSyncAssignment, error) {
	b, log := mb.b, mb.b.log
	plan, err := Assign(b.layout, topics, mb.members, b.assignOptions())
	if err != nil {
		log.Error("rebalance: balance failed", "err", err)
		return nil, err
	}
	out := make(syncAssignments, 0, len(plan.Assignments))
	var active, standby int
	for _, id := range slices.Sorted(maps.Keys(plan.Assignments)) {
		a := plan.Assignments[id]
		enc, err := a.Encode()
		if err != nil {
			return nil, fmt.Errorf("member %q: %w", id, err)
		}
		sa := kmsg.NewSyncGroupRequestGroupAssignment()
		sa.MemberID = id
		sa.MemberAssignment = enc
		out = append(out, sa)
		active += len(a.ActiveTasks)
		standby += len(a.StandbyTasks)
		log.Debug("rebalance: member assignment", "member", id, "active", tasksString(a.ActiveTasks),
			"standby", tasksString(a.StandbyTasks), "probe", a.ProbeRebalance)
	}
	log.Info("rebalance: balanced", "members", len(plan.Assignments), "active", active,
		"standby", standby-len(plan.Warmups), "warmup", len(plan.Warmups), "held", len(plan.Held),
		"deferred", len(plan.Deferred), "probe", plan.ProbeRebalance)
	for _, tr := range plan.Deferred {
		log.Info("rebalance: task moves after its owners revoke it", "task", tr.Task.String(), "from", tr.From, "to", tr.To)
	}
	for _, h := range plan.Held {
		log.Info("rebalance: stateful task held where its state is caught up", "task", h.Task.String(), "on", h.On, "target", h.To)
	}
	return out, nil
}

// assignOptions returns Assign's options: the configured replica settings
// and the changelogs' end offsets.
func (b *Balancer) assignOptions() AssignOptions {
	return AssignOptions{EndOffsets: b.endOffsets(), Assignor: b.cfg.Assignor}
}

// endOffsets returns the end offsets of the layout's changelog topics, or
// nil if the topology is stateless, Config.EndOffsets is nil or fails.
func (b *Balancer) endOffsets() map[string]map[int32]int64 {
	topics := b.layout.ChangelogTopics()
	if len(topics) == 0 || b.cfg.EndOffsets == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), endOffsetsTimeout)
	defer cancel()
	ends, err := b.cfg.EndOffsets(ctx, topics)
	if err != nil {
		b.log.Warn("rebalance: cannot fetch the changelogs' end offsets; assigning stateful tasks by stickiness only, and probing again later",
			"err", err)
		return nil
	}
	return ends
}

// syncAssignments is an encoded plan, sorted by member id.
type syncAssignments []kmsg.SyncGroupRequestGroupAssignment

// IntoSyncAssignment implements kgo.IntoSyncAssignment.
func (s syncAssignments) IntoSyncAssignment() []kmsg.SyncGroupRequestGroupAssignment { return s }

func tasksString(ts []processor.TaskID) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.String()
	}
	return out
}
