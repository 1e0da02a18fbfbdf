package rebalance

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/eddystream/eddy/internal/settings"
	"github.com/eddystream/eddy/processor"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var testSubs = []Subtopology{{ID: 0, SourceTopics: []string{"a", "b"}}, {ID: 1, SourceTopics: []string{"c"}}}

func newTestBalancer(t *testing.T, cfg Config) *Balancer {
	t.Helper()
	if cfg.Subtopologies == nil {
		cfg.Subtopologies = testSubs
	}
	if cfg.ProcessID == "" {
		cfg.ProcessID = "proc-1"
	}
	b, err := NewBalancer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestNewBalancerRejects(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no sub-topologies": {ProcessID: "p"},
		"no process id":     {Subtopologies: testSubs},
		"worker index":      {Subtopologies: testSubs, ProcessID: "p", WorkerIndex: 2, WorkerCount: 2},
		"negative workers":  {Subtopologies: testSubs, ProcessID: "p", WorkerCount: -1},
		"negative standbys": {Subtopologies: testSubs, ProcessID: "p", Assignor: settings.Assignor{NumStandbyReplicas: -1}},
		"negative lag":      {Subtopologies: testSubs, ProcessID: "p", Assignor: settings.Assignor{AcceptableRecoveryLag: -1}},
		"negative warm-ups": {Subtopologies: testSubs, ProcessID: "p", Assignor: settings.Assignor{MaxWarmupReplicas: -1}},
		"negative interval": {Subtopologies: testSubs, ProcessID: "p", Assignor: settings.Assignor{ProbingRebalanceInterval: -time.Second}},
	} {
		if _, err := NewBalancer(cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: err = %v, want ErrInvalidConfig", name, err)
		}
	}
}

func TestBalancerJoinGroupMetadata(t *testing.T) {
	b := newTestBalancer(t, Config{Endpoint: "h:1", Rack: "r1", WorkerIndex: 1, WorkerCount: 3})
	if b.ProtocolName() != ProtocolName || !b.IsCooperative() {
		t.Fatalf("ProtocolName %q, IsCooperative %v", b.ProtocolName(), b.IsCooperative())
	}
	current := map[string][]int32{"a": {1, 4}, "b": {1, 4}, "c": {0}}
	meta, err := DecodeMemberMetadata(b.JoinGroupMetadata([]string{"ignored"}, current, 7))
	if err != nil {
		t.Fatal(err)
	}
	want := MemberMetadata{
		Version:         MemberMetadataVersion,
		ProcessID:       "proc-1",
		Endpoint:        "h:1",
		Rack:            "r1",
		WorkerIndex:     1,
		WorkerCount:     3,
		Topics:          []string{"a", "b", "c"},
		OwnedPartitions: current,
		Generation:      7,
		ActiveTasks:     []processor.TaskID{tid(0, 1), tid(0, 4), tid(1, 0)},
	}
	if !reflect.DeepEqual(meta, want) {
		t.Fatalf("got  %+v\nwant %+v", meta, want)
	}

	// The engine's view of its tasks replaces the derived one; invalid
	// tasks are left out.
	b = newTestBalancer(t, Config{OwnedTasks: func() []processor.TaskID { return []processor.TaskID{tid(1, 9), tid(0, -1)} }})
	meta, err = DecodeMemberMetadata(b.JoinGroupMetadata(nil, current, 7))
	if err != nil {
		t.Fatal(err)
	}
	if want := []processor.TaskID{tid(1, 9)}; !reflect.DeepEqual(meta.ActiveTasks, want) {
		t.Fatalf("ActiveTasks = %v, want %v", meta.ActiveTasks, want)
	}
}

func TestBalancerParseSyncAssignment(t *testing.T) {
	var seen []Assignment
	b := newTestBalancer(t, Config{OnAssignment: func(a Assignment) { seen = append(seen, a) }})
	if _, ok := b.LastAssignment(); ok {
		t.Fatal("LastAssignment before any assignment")
	}
	a := Assignment{ActiveTasks: []processor.TaskID{tid(0, 2)}, StandbyTasks: []processor.TaskID{tid(1, 0)}, Partitions: map[string][]int32{"a": {2}, "b": {2}}}
	enc, err := a.Encode()
	if err != nil {
		t.Fatal(err)
	}
	parts, err := b.ParseSyncAssignment(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(parts, a.Partitions) {
		t.Fatalf("partitions = %v, want %v", parts, a.Partitions)
	}
	a.Version = AssignmentVersion
	if got, ok := b.LastAssignment(); !ok || !reflect.DeepEqual(got, a) {
		t.Fatalf("LastAssignment = %+v, %v", got, ok)
	}
	if len(seen) != 1 || !reflect.DeepEqual(seen[0], a) {
		t.Fatalf("OnAssignment saw %+v", seen)
	}
	parts["a"][0] = 99 // the caller may modify what it got
	if got, _ := b.LastAssignment(); !reflect.DeepEqual(got, a) {
		t.Fatal("modifying the returned map changed LastAssignment")
	}

	// The leader gave this member nothing: an empty assignment.
	parts, err = b.ParseSyncAssignment(nil)
	if err != nil || len(parts) != 0 {
		t.Fatalf("empty assignment: %v, %v", parts, err)
	}
	if got, ok := b.LastAssignment(); !ok || len(got.ActiveTasks) != 0 {
		t.Fatalf("LastAssignment after an empty assignment = %+v, %v", got, ok)
	}

	// A leader that is not eddy.
	plain := kmsg.ConsumerMemberAssignment{Topics: []kmsg.ConsumerMemberAssignmentTopic{{Topic: "a", Partitions: []int32{1}}}}
	if _, err := b.ParseSyncAssignment(plain.AppendTo(nil)); !errors.Is(err, ErrNotEddy) {
		t.Fatalf("err = %v, want ErrNotEddy", err)
	}
}

func TestBalancerMemberBalancerRejectsForeignMember(t *testing.T) {
	b := newTestBalancer(t, Config{})
	ours := kmsg.NewJoinGroupResponseMember()
	ours.MemberID = "eddy-1"
	ours.ProtocolMetadata = b.JoinGroupMetadata(nil, nil, -1)
	foreign := kmsg.NewJoinGroupResponseMember()
	foreign.MemberID = "plain-1"
	instance := "static-9"
	foreign.InstanceID = &instance
	foreign.ProtocolMetadata = kgo.CooperativeStickyBalancer().JoinGroupMetadata([]string{"a"}, nil, -1)

	_, _, err := b.MemberBalancer([]kmsg.JoinGroupResponseMember{ours, foreign})
	var me *MemberMetadataError
	if !errors.As(err, &me) || me.MemberID != "plain-1" || me.InstanceID != "static-9" || !errors.Is(err, ErrNotEddy) {
		t.Fatalf("err = %v, want a *MemberMetadataError for plain-1 wrapping ErrNotEddy", err)
	}
	for _, s := range []string{`member "plain-1" (instance "static-9")`, "not an eddy member", `protocol name "eddy"`} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("%q does not mention %q", err, s)
		}
	}
}

func TestBalancerBalance(t *testing.T) {
	b := newTestBalancer(t, Config{})
	other := newTestBalancer(t, Config{ProcessID: "proc-2"})
	m1 := kmsg.NewJoinGroupResponseMember()
	m1.MemberID = "m1"
	m1.ProtocolMetadata = b.JoinGroupMetadata(nil, map[string][]int32{"a": {0, 1}, "b": {0, 1}, "c": {0}}, 4)
	m2 := kmsg.NewJoinGroupResponseMember()
	m2.MemberID = "m2"
	m2.ProtocolMetadata = other.JoinGroupMetadata(nil, nil, -1)

	mb, topics, err := b.MemberBalancer([]kmsg.JoinGroupResponseMember{m2, m1})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]struct{}{"a": {}, "b": {}, "c": {}}; !reflect.DeepEqual(topics, want) {
		t.Fatalf("topics = %v, want %v", topics, want)
	}
	if _, err := mb.(kgo.GroupMemberBalancerOrError).BalanceOrError(map[string]int32{"a": 2, "b": 3, "c": 1}); err == nil {
		t.Fatal("balanced topics that are not co-partitioned")
	}
	if mb.Balance(map[string]int32{"a": 2}) != nil {
		t.Fatal("Balance returned a plan despite an error")
	}
	into := mb.Balance(map[string]int32{"a": 2, "b": 2, "c": 1})
	got := make(map[string][]processor.TaskID)
	for _, sa := range into.IntoSyncAssignment() {
		a, err := DecodeAssignment(sa.MemberAssignment)
		if err != nil {
			t.Fatal(err)
		}
		got[sa.MemberID] = a.ActiveTasks
	}
	// m1 keeps two of its three tasks, one of each sub-topology (spread);
	// 0_1 is revoked now and goes to m2 in the next rebalance, so m2 gets
	// nothing yet.
	if want := map[string][]processor.TaskID{"m1": {tid(0, 0), tid(1, 0)}, "m2": nil}; !reflect.DeepEqual(got, want) {
		t.Fatalf("assigned %v, want %v", got, want)
	}
}

// An assignment that asks for a probing rebalance arms a timer that calls
// RequestRebalance; a newer assignment without the flag cancels it, and
// Close stops a pending one.
func TestBalancerProbingRebalance(t *testing.T) {
	requests := make(chan struct{}, 10)
	b := newTestBalancer(t, Config{
		Assignor:         settings.Assignor{ProbingRebalanceInterval: 20 * time.Millisecond},
		RequestRebalance: func() { requests <- struct{}{} },
	})
	defer b.Close()
	assign := func(probe bool) {
		t.Helper()
		enc, err := Assignment{ProbeRebalance: probe}.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.ParseSyncAssignment(enc); err != nil {
			t.Fatal(err)
		}
	}

	assign(true)
	select {
	case <-requests:
	case <-time.After(5 * time.Second):
		t.Fatal("no probing rebalance requested")
	}
	select {
	case <-requests:
		t.Fatal("the timer fired twice")
	case <-time.After(100 * time.Millisecond):
	}

	assign(true)
	assign(false) // cancels
	select {
	case <-requests:
		t.Fatal("a cancelled probing rebalance was requested")
	case <-time.After(100 * time.Millisecond):
	}

	// A fresh assignment restarts the interval: two quick ones request once.
	assign(true)
	assign(true)
	<-requests
	select {
	case <-requests:
		t.Fatal("a replaced timer fired")
	case <-time.After(100 * time.Millisecond):
	}

	assign(true)
	b.Close()
	assign(true) // after Close: no timer
	select {
	case <-requests:
		t.Fatal("a probing rebalance was requested after Close")
	case <-time.After(100 * time.Millisecond):
	}
}

// The leader asks Config.EndOffsets for the changelog topics, computes the
// lags from the members' offset sums, and plans standbys and warm-ups; if
// EndOffsets fails, the lags are unknown and the group probes.
func TestBalancerEndOffsets(t *testing.T) {
	subs := []Subtopology{{ID: 0, SourceTopics: []string{"a"}, ChangelogTopics: []string{"a-log"}}}
	var asked [][]string
	fail := false
	leader := newTestBalancer(t, Config{
		Subtopologies: subs,
		Assignor:      settings.Assignor{NumStandbyReplicas: 1, AcceptableRecoveryLag: 100},
		EndOffsets: func(ctx context.Context, topics []string) (map[string]map[int32]int64, error) {
			if _, ok := ctx.Deadline(); !ok {
				t.Error("EndOffsets without a deadline")
			}
			asked = append(asked, topics)
			if fail {
				return nil, errors.New("broker down")
			}
			return map[string]map[int32]int64{"a-log": {0: 500, 1: 500}}, nil
		},
		OwnedTasks: func() []processor.TaskID { return []processor.TaskID{tid(0, 0), tid(0, 1)} },
		TaskOffsetSums: func() map[processor.TaskID]int64 {
			return map[processor.TaskID]int64{tid(0, 0): OffsetSumRunning, tid(0, 1): OffsetSumRunning}
		},
	})
	other := newTestBalancer(t, Config{
		Subtopologies:  subs,
		ProcessID:      "proc-2",
		StandbyTasks:   func() []processor.TaskID { return []processor.TaskID{tid(0, 1), tid(0, -1)} },
		TaskOffsetSums: func() map[processor.TaskID]int64 { return map[processor.TaskID]int64{tid(0, 1): 450, tid(0, 0): -7} },
	})
	m1 := kmsg.NewJoinGroupResponseMember()
	m1.MemberID = "m1"
	m1.ProtocolMetadata = leader.JoinGroupMetadata(nil, map[string][]int32{"a": {0, 1}}, 3)
	m2 := kmsg.NewJoinGroupResponseMember()
	m2.MemberID = "m2"
	m2.ProtocolMetadata = other.JoinGroupMetadata(nil, nil, 3)
	md, err := DecodeMemberMetadata(m2.ProtocolMetadata)
	if err != nil {
		t.Fatal(err)
	}
	// Invalid tasks and sums are left out of the join metadata.
	if want := []processor.TaskID{tid(0, 1)}; !reflect.DeepEqual(md.StandbyTasks, want) {
		t.Fatalf("StandbyTasks = %v, want %v", md.StandbyTasks, want)
	}
	if want := map[processor.TaskID]int64{tid(0, 1): 450}; !reflect.DeepEqual(md.TaskOffsetSums, want) {
		t.Fatalf("TaskOffsetSums = %v, want %v", md.TaskOffsetSums, want)
	}

	balance := func() map[string]Assignment {
		t.Helper()
		mb, _, err := leader.MemberBalancer([]kmsg.JoinGroupResponseMember{m1, m2})
		if err != nil {
			t.Fatal(err)
		}
		into, err := mb.(kgo.GroupMemberBalancerOrError).BalanceOrError(map[string]int32{"a": 2})
		if err != nil {
			t.Fatal(err)
		}
		out := make(map[string]Assignment)
		for _, sa := range into.IntoSyncAssignment() {
			a, err := DecodeAssignment(sa.MemberAssignment)
			if err != nil {
				t.Fatal(err)
			}
			out[sa.MemberID] = a
		}
		return out
	}
	// m2's standby of 0_1 lags by 50, within the acceptable lag of 100:
	// 0_1 moves to m2 (revoked from m1 first), and m1 keeps its state as
	// the standby.
	got := balance()
	if !reflect.DeepEqual(asked, [][]string{{"a-log"}}) {
		t.Fatalf("EndOffsets asked for %v", asked)
	}
	if a := got["m1"]; !reflect.DeepEqual(a.ActiveTasks, []processor.TaskID{tid(0, 0)}) || !reflect.DeepEqual(a.StandbyTasks, []processor.TaskID{tid(0, 1)}) || a.ProbeRebalance {
		t.Fatalf("m1 got %+v", a)
	}
	if a := got["m2"]; len(a.ActiveTasks) != 0 || !reflect.DeepEqual(a.StandbyTasks, []processor.TaskID{tid(0, 0)}) || a.ProbeRebalance {
		t.Fatalf("m2 got %+v", a)
	}

	// Unknown lags: m2's state counts as caught up too, and m1 is asked
	// to probe.
	fail = true
	got = balance()
	if !got["m1"].ProbeRebalance || got["m2"].ProbeRebalance {
		t.Fatalf("with unknown lags: %+v", got)
	}
}
