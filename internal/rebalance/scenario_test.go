package rebalance

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/eddystream/eddy/internal/settings"
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
// direct hand-over of an owned partition, balance but for held tasks,
// replicas never with the active or twice on a process, the number of
// standby and warm-up replicas, determinism).
//
// The simulated instances keep state: a process's offset sums (its disk)
// survive its members. A member reports OffsetSumRunning for the stateful
// tasks whose partitions it owns, and its process's sums for the rest. A
// task that leaves a member, or a member that leaves, leaves its state on
// the process at the changelog's end; a new replica starts at offset sum 0
// and advances only by catchup or sums.
//
// Commands:
//
//	subtopology ID TOPIC... [changelog=TOPIC,...]  add a sub-topology, or replace it
//	partitions TOPIC=N...         set partition counts (as the leader sees them)
//	config standbys=N lag=N warmups=N  the Balancers' replica settings (unset: eddy's
//	                              defaults, 0 standbys, lag 10000, 2 warm-ups)
//	join PROCESS MEMBER...        members join, as workers of PROCESS, owning nothing
//	leave MEMBER...               members leave
//	rack MEMBER [RACK]            set or clear a member's rack
//	own MEMBER gen=G TASK|TOPIC:P...  set what a member owns now, at generation G
//	claim MEMBER TASK...          the member's engine reports these tasks as owned
//	ends TOPIC=N|TOPIC:P=N...     set changelog end offsets (all partitions, or one)
//	ends fail|ok                  make the leader's EndOffsets fail, or work again
//	sums PROCESS TASK=N|running... set offset sums on PROCESS's disk
//	sums PROCESS none             PROCESS loses its disk
//	catchup PROCESS [TASK...]     PROCESS's replicas (or TASKs) catch up to the end
//	rebalance [counts]            one rebalance; prints assignments, replicas, deferrals,
//	                              held tasks, the probing member, revocations
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
	s := newSim(t)
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

	standbys, warmups int   // Config settings
	lag               int64 // Config.AcceptableRecoveryLag
	ends              map[string]map[int32]int64
	endsFail          bool
	sums              map[string]map[processor.TaskID]int64 // by process
}

type simMember struct {
	id, process string
	rack        string
	balancer    *Balancer
	gen         int32              // generation of the member's last assignment
	owned       map[string][]int32 // partitions it consumes now
	standbys    []processor.TaskID // standby and warm-up replicas it runs
	claims      []processor.TaskID // reported by its "engine", if set
	hasClaims   bool
}

func newSim(t *testing.T) *sim {
	return &sim{
		t:       t,
		members: make(map[string]*simMember),
		counts:  make(map[string]int32),
		ends:    make(map[string]map[int32]int64),
		sums:    make(map[string]map[processor.TaskID]int64),
		lag:     10_000,
		warmups: 2,
	}
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
		// A known id replaces the sub-topology.
		sub := Subtopology{ID: id}
		for _, a := range args[1:] {
			if cl, ok := strings.CutPrefix(a, "changelog="); ok {
				sub.ChangelogTopics = strings.Split(cl, ",")
				continue
			}
			sub.SourceTopics = append(sub.SourceTopics, a)
		}
		s.subs = slices.DeleteFunc(s.subs, func(sub Subtopology) bool { return sub.ID == id })
		s.subs = append(s.subs, sub)
		l, err := NewLayout(s.subs)
		if err != nil {
			t.Fatalf("%s: %v", pos, err)
		}
		s.layout = l
		s.rebuild(pos)
	case "config":
		for _, a := range args {
			k, v, _ := strings.Cut(a, "=")
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("%s: %v", pos, err)
			}
			switch k {
			case "standbys":
				s.standbys = n
			case "lag":
				s.lag = int64(n)
			case "warmups":
				s.warmups = n
			default:
				t.Fatalf("%s: unknown setting %q", pos, k)
			}
		}
		s.rebuild(pos)
	case "rack":
		m := s.member(pos, args[0])
		m.rack = ""
		if len(args) > 1 {
			m.rack = args[1]
		}
		m.balancer = s.newBalancer(pos, m)
	case "ends":
		switch args[0] {
		case "fail", "ok":
			s.endsFail = args[0] == "fail"
			return nil
		}
		for _, a := range args {
			tp, n, _ := strings.Cut(a, "=")
			v, err := strconv.ParseInt(n, 10, 64)
			if err != nil {
				t.Fatalf("%s: %v", pos, err)
			}
			topic, p, one := strings.Cut(tp, ":")
			if s.ends[topic] == nil {
				s.ends[topic] = make(map[int32]int64)
			}
			if one {
				pn, err := strconv.Atoi(p)
				if err != nil {
					t.Fatalf("%s: %v", pos, err)
				}
				s.ends[topic][int32(pn)] = v
				continue
			}
			for p := range s.changelogPartitions(pos, topic) {
				s.ends[topic][p] = v
			}
		}
	case "sums":
		proc := args[0]
		if len(args) == 2 && args[1] == "none" {
			delete(s.sums, proc)
			return nil
		}
		for _, a := range args[1:] {
			task, n, _ := strings.Cut(a, "=")
			v := OffsetSumRunning
			if n != "running" {
				var err error
				if v, err = strconv.ParseInt(n, 10, 64); err != nil {
					t.Fatalf("%s: %v", pos, err)
				}
			}
			s.setSum(proc, s.task(pos, task), v)
		}
	case "catchup":
		proc := args[0]
		var tasks []processor.TaskID
		for _, a := range args[1:] {
			tasks = append(tasks, s.task(pos, a))
		}
		if len(tasks) == 0 {
			for _, m := range s.members {
				if m.process == proc {
					tasks = append(tasks, m.standbys...)
				}
			}
		}
		for _, task := range tasks {
			if end, ok := s.endSum(task); ok {
				s.setSum(proc, task, end)
			}
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
			m := s.member(pos, id)
			s.stopRunning(m, nil)
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
		var last []string
		for round := 1; round <= 10; round++ {
			out := s.rebalance(pos, counts)
			if !slices.ContainsFunc(out, func(l string) bool { return strings.HasPrefix(l, "revoke") || strings.HasPrefix(l, "error") }) {
				return append([]string{fmt.Sprintf("settled after %d rebalance(s)", round)}, out...)
			}
			last = append(last, fmt.Sprintf("round %d:", round))
			last = append(last, out...)
		}
		t.Fatalf("%s: the group did not settle in 10 rebalances:\n%s", pos, strings.Join(last, "\n"))
	default:
		t.Fatalf("%s: unknown command %q", pos, cmd)
	}
	return nil
}

func (s *sim) newBalancer(pos string, m *simMember) *Balancer {
	cfg := Config{
		Subtopologies:  s.subs,
		ProcessID:      m.process,
		Rack:           m.rack,
		Assignor:       settings.Assignor{NumStandbyReplicas: s.standbys, AcceptableRecoveryLag: s.lag, MaxWarmupReplicas: s.warmups},
		StandbyTasks:   func() []processor.TaskID { return slices.Clone(m.standbys) },
		TaskOffsetSums: func() map[processor.TaskID]int64 { return s.reportedSums(m) },
		EndOffsets:     s.endOffsets,
	}
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

// rebuild gives every member a Balancer of the current layout and config.
func (s *sim) rebuild(pos string) {
	for _, m := range s.members {
		m.balancer = s.newBalancer(pos, m)
	}
}

// changelogPartitions returns the partitions of a changelog topic: those
// of its sub-topology's tasks.
func (s *sim) changelogPartitions(pos, topic string) int32 {
	for _, sub := range s.subs {
		if slices.Contains(sub.ChangelogTopics, topic) {
			return s.counts[sub.SourceTopics[0]]
		}
	}
	s.t.Fatalf("%s: %q is not a changelog topic", pos, topic)
	return 0
}

// endOffsets is the leader's Config.EndOffsets.
func (s *sim) endOffsets(_ context.Context, topics []string) (map[string]map[int32]int64, error) {
	if s.endsFail {
		return nil, errors.New("simulated ListOffsets failure")
	}
	out := make(map[string]map[int32]int64)
	for _, topic := range topics {
		if ps, ok := s.ends[topic]; ok {
			out[topic] = maps.Clone(ps)
		}
	}
	return out, nil
}

// endSum returns a stateful task's end offset sum.
func (s *sim) endSum(t processor.TaskID) (int64, bool) {
	return s.layout.TaskOffsetSum(t, s.ends)
}

func (s *sim) setSum(proc string, t processor.TaskID, v int64) {
	if s.sums[proc] == nil {
		s.sums[proc] = make(map[processor.TaskID]int64)
	}
	s.sums[proc][t] = v
}

// reportedSums is a member's Config.TaskOffsetSums: its process's sums,
// and OffsetSumRunning for the stateful tasks it runs.
func (s *sim) reportedSums(m *simMember) map[processor.TaskID]int64 {
	out := maps.Clone(s.sums[m.process])
	if out == nil {
		out = make(map[processor.TaskID]int64)
	}
	for _, t := range s.layout.TasksOf(m.owned) {
		if s.layout.Stateful(t) {
			out[t] = OffsetSumRunning
		}
	}
	return out
}

// stopRunning records the state of the stateful tasks a member stops
// running (all of them if keep is nil) on its process's disk: caught up to
// the changelog's end.
func (s *sim) stopRunning(m *simMember, keep map[string][]int32) {
	kept := s.layout.TasksOf(keep)
	for _, t := range s.layout.TasksOf(m.owned) {
		if slices.Contains(kept, t) || !s.layout.Stateful(t) {
			continue
		}
		if end, ok := s.endSum(t); ok {
			s.setSum(m.process, t, end)
		}
	}
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
	opts := leader.assignOptions()
	plan, err := Assign(s.layout, s.counts, members, opts)
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
	s.check(pos, members, plan, assigned, opts)

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
		s.stopRunning(m, now)
		m.owned = clonePartitions(now)
		m.gen = s.gen
		m.standbys = slices.Clone(assigned[id].StandbyTasks)
		for _, t := range m.standbys {
			if _, ok := s.sums[m.process][t]; !ok {
				s.setSum(m.process, t, 0) // a new replica starts restoring
			}
		}
		// The engine now runs what it was assigned.
		if m.hasClaims {
			m.claims = slices.Clone(assigned[id].ActiveTasks)
			m.balancer = s.newBalancer(pos, m)
		}
	}
	return s.describe(ids, assigned, plan, lost, counts)
}

// check asserts the invariants of one rebalance.
func (s *sim) check(pos string, members []Member, plan Plan, assigned map[string]Assignment, opts AssignOptions) {
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
	planned := make(map[processor.TaskID]string) // task => its planned active member
	for id, a := range assigned {
		for _, task := range a.ActiveTasks {
			planned[task] = id
		}
	}
	for _, d := range plan.Deferred {
		where[d.Task] = append(where[d.Task], "deferred")
		target[d.To]++
		planned[d.Task] = d.To
	}
	for _, task := range tasks {
		if n := len(where[task]); n != 1 {
			t.Errorf("%s: task %s is placed %d times: %v", pos, task, n, where[task])
		}
	}

	// Replicas: never with the active task's process, at most one per
	// process, only of stateful tasks; min(standbys, processes-1) standby
	// replicas per stateful task besides at most MaxWarmupReplicas
	// warm-ups in the group.
	proc := make(map[string]string, len(members))
	for _, m := range members {
		proc[m.ID] = m.Metadata.ProcessID
	}
	nprocs := len(slices.Compact(slices.Sorted(maps.Values(proc))))
	warm := make(map[Replica]bool)
	for _, w := range plan.Warmups {
		warm[w] = true
	}
	if len(plan.Warmups) > opts.MaxWarmupReplicas {
		t.Errorf("%s: %d warm-ups, at most %d allowed", pos, len(plan.Warmups), opts.MaxWarmupReplicas)
	}
	replicas := make(map[processor.TaskID]map[string]bool) // task => processes
	standbys := make(map[processor.TaskID]int)
	for id, a := range assigned {
		for _, task := range a.StandbyTasks {
			if slices.Contains(a.ActiveTasks, task) {
				t.Errorf("%s: member %s gets %s both active and standby", pos, id, task)
			}
			if !s.layout.Stateful(task) {
				t.Errorf("%s: member %s gets a replica of stateless task %s", pos, id, task)
			}
			if proc[planned[task]] == proc[id] {
				t.Errorf("%s: member %s gets a replica of %s, which its process runs (on %s)", pos, id, task, planned[task])
			}
			if replicas[task] == nil {
				replicas[task] = make(map[string]bool)
			}
			if replicas[task][proc[id]] {
				t.Errorf("%s: process %s gets two replicas of %s", pos, proc[id], task)
			}
			replicas[task][proc[id]] = true
			if !warm[Replica{Task: task, Member: id}] {
				standbys[task]++
			}
		}
	}
	for w := range warm {
		if !slices.Contains(assigned[w.Member].StandbyTasks, w.Task) {
			t.Errorf("%s: warm-up %v is not in the member's standby tasks", pos, w)
		}
	}
	for _, task := range tasks {
		want := 0
		if s.layout.Stateful(task) {
			want = min(opts.NumStandbyReplicas, nprocs-1)
		}
		if standbys[task] != want {
			t.Errorf("%s: task %s has %d standby replicas, want %d", pos, task, standbys[task], want)
		}
	}
	// The probing rebalance is asked of the lowest member id, only.
	ids := slices.Sorted(maps.Keys(assigned))
	for _, id := range ids {
		if want := plan.ProbeRebalance && id == ids[0]; assigned[id].ProbeRebalance != want {
			t.Errorf("%s: member %s: ProbeRebalance %v, want %v", pos, id, assigned[id].ProbeRebalance, want)
		}
	}
	if len(plan.Held) > 0 && !plan.ProbeRebalance {
		t.Errorf("%s: tasks are held, and no probing rebalance is planned", pos)
	}
	// A held task counts where the balanced plan put it.
	for _, h := range plan.Held {
		if proc[h.On] == proc[h.To] || planned[h.Task] != h.On {
			t.Errorf("%s: held %v: planned on %s", pos, h, planned[h.Task])
		}
		target[h.On]--
		target[h.To]++
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
		m := s.members[id]
		line := fmt.Sprintf("%s (%s", id, m.process)
		if m.rack != "" {
			line += " " + m.rack
		}
		line += "):"
		var standby, warmup []processor.TaskID
		for _, task := range a.StandbyTasks {
			if slices.Contains(plan.Warmups, Replica{Task: task, Member: id}) {
				warmup = append(warmup, task)
			} else {
				standby = append(standby, task)
			}
		}
		if counts {
			perSub := make(map[int]int)
			for _, task := range a.ActiveTasks {
				perSub[task.Subtopology]++
			}
			line += fmt.Sprintf(" %d tasks", len(a.ActiveTasks))
			for _, sub := range slices.Sorted(maps.Keys(perSub)) {
				line += fmt.Sprintf(" %d:%d", sub, perSub[sub])
			}
			if len(standby) > 0 {
				line += fmt.Sprintf(", %d standby", len(standby))
			}
			if len(warmup) > 0 {
				line += fmt.Sprintf(", %d warmup", len(warmup))
			}
		} else {
			line += " " + formatTasks(a.ActiveTasks)
			if len(standby) > 0 {
				line += " | standby " + formatTasks(standby)
			}
			if len(warmup) > 0 {
				line += " | warmup " + formatTasks(warmup)
			}
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
	if counts {
		if len(plan.Held) > 0 {
			out = append(out, fmt.Sprintf("held: %d tasks", len(plan.Held)))
		}
	} else {
		for _, h := range plan.Held {
			out = append(out, fmt.Sprintf("held: %s on %s, target %s", h.Task, h.On, h.To))
		}
	}
	if plan.ProbeRebalance {
		out = append(out, "probe: "+ids[0])
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
