package rebalance

import (
	"bytes"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/eddystream/eddy/processor"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of the scenarios in testdata/")

// TestScenarios runs the scripts in testdata/. A script is a list of
// commands, one a line; a command followed by a line "----" has its output
// compared with the lines that follow, up to a blank line. Lines starting
// with # are comments. Run with -rewrite to regenerate the expectations.
//
// The scripts drive a simulated group through the real kgo-facing path:
// each member's Balancer encodes its join metadata, the leader's Balancer
// decodes them and balances, and each member parses its assignment. Every
// round checks the invariants (whole tasks, each task on one member, no
// direct hand-over of an owned partition, balance, determinism).
//
// Commands:
//
//	subtopology ID TOPIC...       add a sub-topology, or replace its source topics
//	partitions TOPIC=N...         set partition counts (as the leader sees them)
//	join PROCESS MEMBER...        members join, as workers of PROCESS, owning nothing
//	leave MEMBER...               members leave
//	own MEMBER gen=G TASK|TOPIC:P...  set what a member owns now, at generation G
//	claim MEMBER TASK...          the member's engine reports these tasks as owned
//	rebalance [counts]            one rebalance; prints assignments, deferrals, revocations
//	settle [counts]               rebalance until no member loses partitions
func TestScenarios(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no scenarios in testdata/")
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			runScript(t, file)
		})
	}
}

func runScript(t *testing.T, file string) {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	var out []string // the rewritten file
	s := &sim{t: t, members: make(map[string]*simMember), counts: make(map[string]int32)}
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		out = append(out, line)
		if trimmed := strings.TrimSpace(line); trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		pos := fmt.Sprintf("%s:%d", file, i+1)
		got := s.run(pos, strings.Fields(line))
		if i+1 < len(lines) && lines[i+1] == "----" {
			i++
			var want []string
			for i+1 < len(lines) && lines[i+1] != "" {
				i++
				want = append(want, lines[i])
			}
			out = append(out, "----")
			out = append(out, got...)
			if !*rewrite && !slices.Equal(got, want) {
				t.Errorf("%s: %s\ngot:\n%s\nwant:\n%s", pos, line, strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			continue
		}
		if len(got) > 0 {
			if *rewrite {
				out = append(out, "----")
				out = append(out, got...)
				out = append(out, "")
				continue
			}
			t.Errorf("%s: %s: unexpected output (add a ---- block):\n%s", pos, line, strings.Join(got, "\n"))
		}
	}
	if *rewrite {
		if err := os.WriteFile(file, []byte(strings.Join(out, "\n")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// sim is a simulated consumer group.
type sim struct {
	t       *testing.T
	subs    []Subtopology
	counts  map[string]int32
	layout  *Layout
	members map[string]*simMember
	gen     int32
}

type simMember struct {
	id, process string
	balancer    *Balancer
	gen         int32              // generation of the member's last assignment
	owned       map[string][]int32 // partitions it consumes now
	claims      []processor.TaskID // reported by its "engine", if set
	hasClaims   bool
}

func (s *sim) run(pos string, args []string) []string {
	t := s.t
	t.Helper()
	cmd, args := args[0], args[1:]
	switch cmd {
	case "subtopology":
		id, err := strconv.Atoi(args[0])
		if err != nil {
			t.Fatalf("%s: %v", pos, err)
		}
		// A known id replaces the sub-topology's source topics.
		s.subs = slices.DeleteFunc(s.subs, func(sub Subtopology) bool { return sub.ID == id })
		s.subs = append(s.subs, Subtopology{ID: id, SourceTopics: args[1:]})
		l, err := NewLayout(s.subs)
		if err != nil {
			t.Fatalf("%s: %v", pos, err)
		}
		s.layout = l
		for _, m := range s.members {
			m.balancer = s.newBalancer(pos, m)
		}
	case "partitions":
		for _, a := range args {
			topic, n, _ := strings.Cut(a, "=")
			c, err := strconv.Atoi(n)
			if err != nil {
				t.Fatalf("%s: %v", pos, err)
			}
			s.counts[topic] = int32(c)
		}
	case "join":
		for _, id := range args[1:] {
			m := &simMember{id: id, process: args[0], gen: -1}
			m.balancer = s.newBalancer(pos, m)
			s.members[id] = m
		}
	case "leave":
		for _, id := range args {
			if s.members[id] == nil {
				t.Fatalf("%s: no member %q", pos, id)
			}
			delete(s.members, id)
		}
	case "own":
		m := s.member(pos, args[0])
		g, err := strconv.Atoi(strings.TrimPrefix(args[1], "gen="))
		if err != nil {
			t.Fatalf("%s: %v", pos, err)
		}
		m.gen = int32(g)
		m.owned = make(map[string][]int32)
		for _, a := range args[2:] {
			if topic, p, ok := strings.Cut(a, ":"); ok {
				n, err := strconv.Atoi(p)
				if err != nil {
					t.Fatalf("%s: %v", pos, err)
				}
				m.owned[topic] = append(m.owned[topic], int32(n))
				continue
			}
			for topic, ps := range s.layout.Partitions([]processor.TaskID{s.task(pos, a)}) {
				m.owned[topic] = append(m.owned[topic], ps...)
			}
		}
	case "claim":
		m := s.member(pos, args[0])
		m.hasClaims = true
		m.claims = nil
		for _, a := range args[1:] {
			m.claims = append(m.claims, s.task(pos, a))
		}
		m.balancer = s.newBalancer(pos, m)
	case "rebalance":
		return s.rebalance(pos, slices.Contains(args, "counts"))
	case "settle":
		counts := slices.Contains(args, "counts")
		for round := 1; round <= 10; round++ {
			out := s.rebalance(pos, counts)
			if !slices.ContainsFunc(out, func(l string) bool { return strings.HasPrefix(l, "revoke") || strings.HasPrefix(l, "error") }) {
				return append([]string{fmt.Sprintf("settled after %d rebalance(s)", round)}, out...)
			}
		}
		t.Fatalf("%s: the group did not settle in 10 rebalances", pos)
	default:
		t.Fatalf("%s: unknown command %q", pos, cmd)
	}
	return nil
}

func (s *sim) newBalancer(pos string, m *simMember) *Balancer {
	cfg := Config{Subtopologies: s.subs, ProcessID: m.process}
	if m.hasClaims {
		claims := slices.Clone(m.claims)
		cfg.OwnedTasks = func() []processor.TaskID { return claims }
	}
	b, err := NewBalancer(cfg)
	if err != nil {
		s.t.Fatalf("%s: %v", pos, err)
	}
	return b
}

func (s *sim) member(pos, id string) *simMember {
	m := s.members[id]
	if m == nil {
		s.t.Fatalf("%s: no member %q", pos, id)
	}
	return m
}

func (s *sim) task(pos, a string) processor.TaskID {
	id, err := processor.ParseTaskID(a)
	if err != nil {
		s.t.Fatalf("%s: %v", pos, err)
	}
	return id
}

// rebalance runs one rebalance through the Balancers, checks the
// invariants, applies the result and describes it.
func (s *sim) rebalance(pos string, counts bool) []string {
	t := s.t
	t.Helper()
	ids := slices.Sorted(maps.Keys(s.members))
	if len(ids) == 0 {
		t.Fatalf("%s: no members", pos)
	}
	join := make([]kmsg.JoinGroupResponseMember, 0, len(ids))
	var members []Member
	for _, id := range ids {
		m := s.members[id]
		jm := kmsg.NewJoinGroupResponseMember()
		jm.MemberID = id
		jm.ProtocolMetadata = m.balancer.JoinGroupMetadata(nil, clonePartitions(m.owned), m.gen)
		join = append(join, jm)
		md, err := DecodeMemberMetadata(jm.ProtocolMetadata)
		if err != nil {
			t.Fatalf("%s: %v", pos, err)
		}
		members = append(members, Member{ID: id, Metadata: md})
	}

	// The leader is the first member; the plan must not depend on the
	// order of members, so balance them in reverse order too.
	leader := s.members[ids[0]].balancer
	sync, err := balanceVia(leader, join, s.counts)
	if err != nil {
		return []string{"error: " + err.Error()}
	}
	reversed := slices.Clone(join)
	slices.Reverse(reversed)
	if again, err := balanceVia(leader, reversed, s.counts); err != nil || !equalSync(sync, again) {
		t.Errorf("%s: the plan depends on the order of members (err %v)", pos, err)
	}
	plan, err := Assign(s.layout, s.counts, members)
	if err != nil {
		t.Fatalf("%s: %v", pos, err)
	}

	s.gen++
	before := make(map[string]map[string][]int32, len(ids))
	assigned := make(map[string]Assignment, len(ids))
	for _, sa := range sync {
		m := s.members[sa.MemberID]
		parts, err := m.balancer.ParseSyncAssignment(sa.MemberAssignment)
		if err != nil {
			t.Fatalf("%s: member %s: %v", pos, sa.MemberID, err)
		}
		a, ok := m.balancer.LastAssignment()
		if !ok {
			t.Fatalf("%s: member %s: no LastAssignment after ParseSyncAssignment", pos, sa.MemberID)
		}
		if !equalPartitions(parts, a.Partitions) {
			t.Errorf("%s: member %s: ParseSyncAssignment returned %v, the assignment holds %v", pos, sa.MemberID, parts, a.Partitions)
		}
		assigned[sa.MemberID] = a
		before[sa.MemberID] = m.owned
	}
	if len(assigned) != len(ids) {
		t.Fatalf("%s: %d members, %d assignments", pos, len(ids), len(assigned))
	}
	for _, id := range ids {
		if !equalAssignment(assigned[id], plan.Assignments[id]) {
			t.Errorf("%s: member %s: the Balancer assigned %v, Assign planned %v", pos, id, assigned[id], plan.Assignments[id])
		}
	}
	s.check(pos, members, plan, assigned)

	// Apply: members own what they were given; a member that lost any
	// partition revokes it (and kgo would make it rejoin).
	lost := make(map[string][]processor.TaskID)
	for _, id := range ids {
		m := s.members[id]
		now := assigned[id].Partitions
		for topic, ps := range m.owned {
			for _, p := range ps {
				if !slices.Contains(now[topic], p) {
					if task, ok := s.layout.TaskOf(topic, p); ok {
						lost[id] = append(lost[id], task)
					}
				}
			}
		}
		m.owned = clonePartitions(now)
		m.gen = s.gen
		// The engine now runs what it was assigned.
		if m.hasClaims {
			m.claims = slices.Clone(assigned[id].ActiveTasks)
			m.balancer = s.newBalancer(pos, m)
		}
	}
	return s.describe(ids, assigned, plan, lost, counts)
}

// check asserts the invariants of one rebalance.
func (s *sim) check(pos string, members []Member, plan Plan, assigned map[string]Assignment) {
	t := s.t
	t.Helper()
	tasks, err := s.layout.Tasks(s.counts)
	if err != nil {
		t.Fatalf("%s: %v", pos, err)
	}
	// Every task is given to exactly one member, or deferred once.
	where := make(map[processor.TaskID][]string)
	target := make(map[string]int)
	for id, a := range assigned {
		for _, task := range a.ActiveTasks {
			where[task] = append(where[task], id)
		}
		target[id] += len(a.ActiveTasks)
		// Whole tasks: the partitions are exactly those of the tasks.
		if !equalPartitions(a.Partitions, s.layout.Partitions(a.ActiveTasks)) {
			t.Errorf("%s: member %s: partitions %v are not those of tasks %v", pos, id, a.Partitions, a.ActiveTasks)
		}
	}
	for _, d := range plan.Deferred {
		where[d.Task] = append(where[d.Task], "deferred")
		target[d.To]++
	}
	for _, task := range tasks {
		if n := len(where[task]); n != 1 {
			t.Errorf("%s: task %s is placed %d times: %v", pos, task, n, where[task])
		}
	}
	// No partition goes straight from one owner to another: a member gets
	// a partition another member owns only if it owns it itself at a
	// generation at least as high.
	for _, x := range members {
		for topic, ps := range assigned[x.ID].Partitions {
			for _, p := range ps {
				for _, y := range members {
					if y.ID == x.ID || !slices.Contains(y.Metadata.OwnedPartitions[topic], p) {
						continue
					}
					if !slices.Contains(x.Metadata.OwnedPartitions[topic], p) || x.Metadata.Generation < y.Metadata.Generation {
						t.Errorf("%s: %s:%d goes from %s straight to %s", pos, topic, p, y.ID, x.ID)
					}
				}
			}
		}
	}
	// Balance of the planned tasks: within one across processes, and
	// within one across the members of a process.
	byProc := make(map[string]int)
	procMembers := make(map[string][]int)
	for _, m := range members {
		byProc[m.Metadata.ProcessID] += target[m.ID]
		procMembers[m.Metadata.ProcessID] = append(procMembers[m.Metadata.ProcessID], target[m.ID])
	}
	if spread(slices.Collect(maps.Values(byProc))) > 1 {
		t.Errorf("%s: task counts per process are not balanced: %v", pos, byProc)
	}
	for p, cs := range procMembers {
		if spread(cs) > 1 {
			t.Errorf("%s: task counts of the members of process %s are not balanced: %v", pos, p, cs)
		}
	}
}

func (s *sim) describe(ids []string, assigned map[string]Assignment, plan Plan, lost map[string][]processor.TaskID, counts bool) []string {
	var out []string
	for _, id := range ids {
		a := assigned[id]
		line := fmt.Sprintf("%s (%s):", id, s.members[id].process)
		if counts {
			perSub := make(map[int]int)
			for _, task := range a.ActiveTasks {
				perSub[task.Subtopology]++
			}
			line += fmt.Sprintf(" %d tasks", len(a.ActiveTasks))
			for _, sub := range slices.Sorted(maps.Keys(perSub)) {
				line += fmt.Sprintf(" %d:%d", sub, perSub[sub])
			}
		} else {
			line += " " + formatTasks(a.ActiveTasks)
		}
		out = append(out, line)
	}
	if counts {
		if len(plan.Deferred) > 0 {
			out = append(out, fmt.Sprintf("deferred: %d tasks", len(plan.Deferred)))
		}
	} else {
		for _, d := range plan.Deferred {
			out = append(out, fmt.Sprintf("deferred: %s %s -> %s", d.Task, strings.Join(d.From, ","), d.To))
		}
	}
	for _, id := range ids {
		if ts := sortTasks(lost[id]); len(ts) > 0 {
			if counts {
				out = append(out, fmt.Sprintf("revoke: %s loses %d tasks", id, len(ts)))
			} else {
				out = append(out, fmt.Sprintf("revoke: %s loses %s", id, formatTasks(ts)))
			}
		}
	}
	return out
}

func balanceVia(leader *Balancer, join []kmsg.JoinGroupResponseMember, counts map[string]int32) ([]kmsg.SyncGroupRequestGroupAssignment, error) {
	mb, _, err := leader.MemberBalancer(join)
	if err != nil {
		return nil, err
	}
	into, err := mb.(kgo.GroupMemberBalancerOrError).BalanceOrError(counts)
	if err != nil {
		return nil, err
	}
	return into.IntoSyncAssignment(), nil
}

func equalSync(a, b []kmsg.SyncGroupRequestGroupAssignment) bool {
	return slices.EqualFunc(a, b, func(x, y kmsg.SyncGroupRequestGroupAssignment) bool {
		return x.MemberID == y.MemberID && bytes.Equal(x.MemberAssignment, y.MemberAssignment)
	})
}

func equalAssignment(a, b Assignment) bool {
	return a.Version == b.Version && slices.Equal(a.ActiveTasks, b.ActiveTasks) &&
		slices.Equal(a.StandbyTasks, b.StandbyTasks) && equalPartitions(a.Partitions, b.Partitions)
}

func equalPartitions(a, b map[string][]int32) bool {
	nonEmpty := func(m map[string][]int32) map[string][]int32 {
		out := make(map[string][]int32)
		for k, v := range m {
			if len(v) > 0 {
				out[k] = v
			}
		}
		return out
	}
	return maps.EqualFunc(nonEmpty(a), nonEmpty(b), slices.Equal[[]int32])
}

func clonePartitions(m map[string][]int32) map[string][]int32 {
	out := make(map[string][]int32, len(m))
	for k, v := range m {
		out[k] = slices.Clone(v)
	}
	return out
}

func spread(cs []int) int {
	if len(cs) == 0 {
		return 0
	}
	return slices.Max(cs) - slices.Min(cs)
}

func formatTasks(ts []processor.TaskID) string {
	if len(ts) == 0 {
		return "-"
	}
	return strings.Join(tasksString(ts), " ")
}
