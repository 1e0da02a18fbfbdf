package rebalance

import (
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"sync"

	"github.com/eddystream/eddy/processor"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ProtocolName is the name of eddy's group protocol, under which members
// join the group. Versions of the data within it are negotiated by the
// version bytes of eddy's user data, so the name never changes.
const ProtocolName = "eddy"

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

	mu struct {
		sync.Mutex
		last Assignment
		ok   bool
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
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Balancer{cfg: cfg, layout: layout, log: log}, nil
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
// owned partitions, the owned tasks, the generation and the configured
// identity.
func (b *Balancer) JoinGroupMetadata(_ []string, currentAssignment map[string][]int32, generation int32) []byte {
	var owned []processor.TaskID
	if b.cfg.OwnedTasks != nil {
		for _, t := range b.cfg.OwnedTasks() {
			if err := checkTask(t); err != nil {
				b.log.Error("rebalance: OwnedTasks returned an invalid task; leaving it out of the join metadata", "task", t.String())
				continue
			}
			owned = append(owned, t)
		}
	} else {
		owned = b.layout.TasksOf(currentAssignment)
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

// ParseSyncAssignment implements kgo.GroupBalancer. It decodes the member's
// Assignment, records it for LastAssignment and OnAssignment, and returns
// the partitions of its active tasks, which kgo consumes. An empty
// assignment (the leader gave the member nothing) is an empty Assignment.
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

// BalanceOrError implements kgo.GroupMemberBalancerOrError: it runs Assign
// and encodes the plan. kgo fails the balance with its error, such as a
// *CopartitionError.
func (mb *memberBalancer) BalanceOrError(topics map[string]int32) (kgo.IntoSyncAssignment, error) {
	log := mb.b.log
	plan, err := Assign(mb.b.layout, topics, mb.members)
	if err != nil {
		log.Error("rebalance: balance failed", "err", err)
		return nil, err
	}
	out := make(syncAssignments, 0, len(plan.Assignments))
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
		log.Debug("rebalance: member assignment", "member", id, "active", tasksString(a.ActiveTasks))
	}
	log.Info("rebalance: balanced", "members", len(plan.Assignments), "deferred", len(plan.Deferred))
	for _, tr := range plan.Deferred {
		log.Info("rebalance: task moves after its owners revoke it", "task", tr.Task.String(), "from", tr.From, "to", tr.To)
	}
	return out, nil
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
