package rebalance

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/eddystream/eddy/internal/settings"
	"github.com/eddystream/eddy/processor"
)

func TestAssignNoMembers(t *testing.T) {
	l, err := NewLayout([]Subtopology{{ID: 0, SourceTopics: []string{"a"}}})
	if err != nil {
		t.Fatal(err)
	}
	plan, err := Assign(l, map[string]int32{"a": 3}, nil, AssignOptions{})
	if err != nil || len(plan.Assignments) != 0 || len(plan.Deferred) != 0 {
		t.Fatalf("plan %+v, err %v", plan, err)
	}
}

func TestAssignDuplicateMemberKeepsFirst(t *testing.T) {
	l, err := NewLayout([]Subtopology{{ID: 0, SourceTopics: []string{"a"}}})
	if err != nil {
		t.Fatal(err)
	}
	members := []Member{
		{ID: "m1", Metadata: MemberMetadata{ProcessID: "p1", Generation: 2, ActiveTasks: []processor.TaskID{tid(0, 1)}}},
		{ID: "m1", Metadata: MemberMetadata{ProcessID: "p9", Generation: 2, ActiveTasks: []processor.TaskID{tid(0, 0)}}},
	}
	plan, err := Assign(l, map[string]int32{"a": 2}, members, AssignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Assignments) != 1 || !slices.Equal(plan.Assignments["m1"].ActiveTasks, []processor.TaskID{tid(0, 0), tid(0, 1)}) {
		t.Fatalf("plan %+v", plan)
	}
}

// Members without a process id are each a process of their own.
func TestAssignMembersWithoutProcessID(t *testing.T) {
	l, err := NewLayout([]Subtopology{{ID: 0, SourceTopics: []string{"a"}}})
	if err != nil {
		t.Fatal(err)
	}
	members := []Member{
		{ID: "x", Metadata: MemberMetadata{ProcessID: "p1"}},
		{ID: "y", Metadata: MemberMetadata{ProcessID: "p1"}},
		{ID: "z"},
		{ID: "w"},
	}
	plan, err := Assign(l, map[string]int32{"a": 6}, members, AssignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := make(map[string]int)
	for id, a := range plan.Assignments {
		got[id] = len(a.ActiveTasks)
	}
	// Three processes (p1, z, w) get 2 tasks each; p1 splits its 2.
	if want := map[string]int{"x": 1, "y": 1, "z": 2, "w": 2}; !reflect.DeepEqual(got, want) {
		t.Fatalf("task counts %v, want %v", got, want)
	}
}

// More processes than tasks: some get none, and none gets two.
func TestAssignMoreProcessesThanTasks(t *testing.T) {
	l, err := NewLayout([]Subtopology{{ID: 0, SourceTopics: []string{"a"}}})
	if err != nil {
		t.Fatal(err)
	}
	var members []Member
	for i := range 5 {
		members = append(members, Member{ID: fmt.Sprint("m", i), Metadata: MemberMetadata{ProcessID: fmt.Sprint("p", i)}})
	}
	plan, err := Assign(l, map[string]int32{"a": 3}, members, AssignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, a := range plan.Assignments {
		if len(a.ActiveTasks) > 1 {
			t.Fatalf("a member got %d tasks: %+v", len(a.ActiveTasks), plan)
		}
		total += len(a.ActiveTasks)
	}
	if total != 3 {
		t.Fatalf("%d tasks assigned, want 3", total)
	}
}

// TestAssignRandomGroups drives random groups through the simulator of
// scenario_test.go, which checks every invariant in every rebalance, and
// checks that a group settles: from any ownership, even with stale and
// conflicting claims, within a few rebalances; after one member joins or
// leaves a settled group, within two (the revoking one and the assigning
// one).
func TestAssignRandomGroups(t *testing.T) {
	for seed := range uint64(200) {
		t.Run(strconv.FormatUint(seed, 10), func(t *testing.T) { randomGroup(t, seed) })
	}
}

// FuzzAssign is TestAssignRandomGroups over any seed.
func FuzzAssign(f *testing.F) {
	f.Add(uint64(0))
	f.Add(uint64(1 << 40))
	f.Fuzz(randomGroup)
}

func randomGroup(t *testing.T, seed uint64) { randomGroupOf(t, seed, false) }

// TestAssignRandomStatefulGroups is TestAssignRandomGroups with stateful
// sub-topologies, standby replicas, lagging state and instances catching
// up at random. The invariants hold in every rebalance. Once members stop
// joining and leaving and lags stop changing, the group settles on a fixed
// point even with warm-ups that never catch up (see fixedPoint).
func TestAssignRandomStatefulGroups(t *testing.T) {
	for seed := range uint64(200) {
		t.Run(strconv.FormatUint(seed, 10), func(t *testing.T) { randomGroupOf(t, seed, true) })
	}
}

func randomGroupOf(t *testing.T, seed uint64, stateful bool) {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	s := newSim(t)
	do := func(cmd string) []string { return s.run(fmt.Sprintf("seed %d: %s", seed, cmd), strings.Fields(cmd)) }

	topic := 0
	var changelogs []string
	for sub := range 1 + rng.IntN(3) {
		n := 1 + rng.IntN(12)
		cmd := fmt.Sprintf("subtopology %d", sub)
		for range 1 + rng.IntN(2) {
			name := fmt.Sprint("t", topic)
			topic++
			cmd += " " + name
			s.counts[name] = int32(n)
		}
		if stateful && rng.IntN(3) > 0 {
			cl := fmt.Sprint("log", sub)
			changelogs = append(changelogs, cl)
			cmd += " changelog=" + cl
		}
		do(cmd)
	}
	if stateful {
		do(fmt.Sprintf("config standbys=%d lag=%d warmups=%d", rng.IntN(3), 1+rng.IntN(100), 1+rng.IntN(3)))
	}
	grow := func() {
		for _, cl := range changelogs {
			do(fmt.Sprintf("ends %s=%d", cl, rng.IntN(1000)))
		}
	}
	grow()
	tasks, err := s.layout.Tasks(s.counts)
	if err != nil {
		t.Fatal(err)
	}

	next := 0
	join := func() {
		do(fmt.Sprintf("join p%d m%02d", rng.IntN(4), next))
		next++
	}
	for range 1 + rng.IntN(5) {
		join()
	}
	// Arbitrary starting ownership: random tasks at random generations,
	// so claims conflict and are stale.
	for _, id := range slices.Sorted(maps.Keys(s.members)) {
		cmd := fmt.Sprintf("own %s gen=%d", id, rng.IntN(4))
		for _, task := range tasks {
			if rng.IntN(3) == 0 {
				cmd += " " + task.String()
			}
		}
		do(cmd)
	}
	settle := func(limit int) {
		if stateful {
			// Held tasks and warm-ups need not settle without catching
			// up; check the invariants over a few rebalances.
			for range limit + 2 {
				do("rebalance")
			}
			return
		}
		out := do("settle")
		var n int
		if _, err := fmt.Sscanf(out[0], "settled after %d", &n); err != nil || n > limit {
			t.Fatalf("seed %d: %q, want settled within %d rebalances", seed, out[0], limit)
		}
	}
	settle(3)
	for range 8 {
		if stateful {
			grow()
			for p := range 4 {
				if rng.IntN(2) == 0 {
					do(fmt.Sprintf("catchup p%d", p))
				}
			}
		}
		if len(s.members) > 1 && rng.IntN(3) == 0 {
			ids := slices.Sorted(maps.Keys(s.members))
			do("leave " + ids[rng.IntN(len(ids))])
		} else {
			join()
		}
		settle(2)
	}
	if stateful {
		fixedPoint(t, seed, do)
	}
}

// fixedPoint checks that a group whose members and lags no longer change
// settles on one plan, held tasks and warm-ups included: within
// fixedPointWithin rebalances, a rebalance revokes nothing and gives the
// plan of the rebalance before, and the next rebalances give it again.
func fixedPoint(t *testing.T, seed uint64, do func(string) []string) {
	t.Helper()
	const fixedPointWithin, stays = 3, 5
	revokes := func(out []string) bool {
		return slices.ContainsFunc(out, func(l string) bool { return strings.HasPrefix(l, "revoke") })
	}
	last := do("rebalance")
	for round := 2; ; round++ {
		out := do("rebalance")
		if slices.Equal(out, last) && !revokes(out) {
			break
		}
		if round == fixedPointWithin {
			t.Fatalf("seed %d: no fixed point within %d rebalances; the last two:\n%s\n--\n%s",
				seed, fixedPointWithin, strings.Join(last, "\n"), strings.Join(out, "\n"))
		}
		last = out
	}
	for range stays {
		if out := do("rebalance"); !slices.Equal(out, last) {
			t.Fatalf("seed %d: the plan left its fixed point:\n%s\n--\n%s", seed, strings.Join(last, "\n"), strings.Join(out, "\n"))
		}
	}
}

// The plan is the same whatever the order of the members.
func TestAssignDeterministic(t *testing.T) {
	l, err := NewLayout([]Subtopology{{ID: 0, SourceTopics: []string{"a", "b"}}, {ID: 1, SourceTopics: []string{"c"}}})
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int32{"a": 8, "b": 8, "c": 5}
	rng := rand.New(rand.NewPCG(1, 2))
	var members []Member
	for i := range 7 {
		md := MemberMetadata{ProcessID: fmt.Sprint("p", i%3), Generation: int32(rng.IntN(3))}
		for p := range int32(8) {
			if rng.IntN(4) == 0 {
				md.ActiveTasks = append(md.ActiveTasks, tid(0, p))
				md.OwnedPartitions = map[string][]int32{"a": {p}}
			}
		}
		members = append(members, Member{ID: fmt.Sprint("m", i), Metadata: md})
	}
	want, err := Assign(l, counts, members, AssignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		rng.Shuffle(len(members), func(i, j int) { members[i], members[j] = members[j], members[i] })
		got, err := Assign(l, counts, members, AssignOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("the plan changed with the order of members:\n%+v\n%+v", got, want)
		}
	}
}

// Zero replica settings are zeros, at Assign and through the Balancer: an
// AcceptableRecoveryLag of 0 counts a process one record behind as not
// caught up, and a MaxWarmupReplicas of 0 plans no warm-up for the task it
// holds.
func TestAssignZeroLagAndWarmups(t *testing.T) {
	l, err := NewLayout([]Subtopology{{ID: 0, SourceTopics: []string{"a"}, ChangelogTopics: []string{"a-log"}}})
	if err != nil {
		t.Fatal(err)
	}
	members := []Member{
		{ID: "m1", Metadata: MemberMetadata{ProcessID: "p1", Generation: 1,
			ActiveTasks:    []processor.TaskID{tid(0, 0), tid(0, 1)},
			TaskOffsetSums: map[processor.TaskID]int64{tid(0, 0): OffsetSumRunning, tid(0, 1): OffsetSumRunning}}},
		{ID: "m2", Metadata: MemberMetadata{ProcessID: "p2",
			TaskOffsetSums: map[processor.TaskID]int64{tid(0, 0): 99, tid(0, 1): 99}}},
	}
	ends := map[string]map[int32]int64{"a-log": {0: 100, 1: 100}}
	for _, tc := range []struct {
		name              string
		lag               int64
		warmups           int
		held, warm, moved int
	}{
		{"lag 1 is caught up", 1, 2, 0, 0, 1},
		{"lag 0 holds and warms", 0, 2, 1, 1, 0},
		{"lag 0, no warm-ups", 0, 0, 1, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan, err := Assign(l, map[string]int32{"a": 2}, members, AssignOptions{
				EndOffsets: ends, Assignor: settings.Assignor{AcceptableRecoveryLag: tc.lag, MaxWarmupReplicas: tc.warmups},
			})
			if err != nil {
				t.Fatal(err)
			}
			m2 := plan.Assignments["m2"]
			if len(plan.Held) != tc.held || len(plan.Warmups) != tc.warm || len(m2.ActiveTasks) != tc.moved || len(m2.StandbyTasks) != tc.warm {
				t.Fatalf("held %v, warm-ups %v, m2 %+v; want %d held, %d warm-ups, %d active on m2",
					plan.Held, plan.Warmups, m2, tc.held, tc.warm, tc.moved)
			}
		})
	}

	b, err := NewBalancer(Config{Subtopologies: l.Subtopologies(), ProcessID: "p1"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if opts := b.assignOptions(); opts.AcceptableRecoveryLag != 0 || opts.MaxWarmupReplicas != 0 || opts.NumStandbyReplicas != 0 {
		t.Fatalf("a Balancer configured with zeros assigns with %+v", opts)
	}
}
