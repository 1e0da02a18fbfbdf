package rebalance

import (
	"cmp"
	"slices"

	"github.com/eddystream/eddy/internal/settings"
	"github.com/eddystream/eddy/processor"
)

// Member is one group member as the assignor sees it: its group member id
// and the metadata it joined with.
type Member struct {
	// ID is the member's group member id.
	ID string
	// Metadata is what the member sent when it joined.
	Metadata MemberMetadata
}

// Plan is the assignor's decision for one rebalance.
type Plan struct {
	// Assignments holds, by member id, what each member gets in this
	// rebalance. Every input member has an entry, possibly empty.
	Assignments map[string]Assignment
	// Deferred lists, sorted by task, the tasks that move to a new owner:
	// in this rebalance they are only taken from the members that own them
	// now, and nobody gets them. Those members then revoke the task's
	// partitions and rejoin (kgo does this by itself for a cooperative
	// balancer), and the rebalance that follows assigns the task afresh.
	Deferred []Transfer
	// Held lists, sorted by task, the stateful tasks that the balanced
	// plan puts on a process without caught-up state: they stay active on
	// a process whose state is caught up until a later (probing)
	// rebalance finds the target caught up. While tasks are held, task
	// counts are not balanced.
	Held []Hold
	// Warmups lists, sorted by task, the warm-up replicas: standby tasks,
	// beyond AssignOptions.NumStandbyReplicas, given to the target of a
	// held task so that its state catches up there. There are at most
	// AssignOptions.MaxWarmupReplicas. They are also in the members'
	// Assignment.StandbyTasks.
	Warmups []Replica
	// ProbeRebalance reports that the group should rebalance again after
	// a while (the probing rebalance interval), because tasks are held or
	// the lags of stateful tasks were unknown. The Assignment of the
	// member with the lowest id carries the flag.
	ProbeRebalance bool
}

// Transfer is a task on its way from its current owners to a new one.
type Transfer struct {
	// Task is the task that moves.
	Task processor.TaskID
	// From lists, sorted, the members that consume some of the task's
	// partitions now and lose them in this rebalance.
	From []string
	// To is the member the task was planned for. The next rebalance plans
	// afresh and usually, not necessarily, gives the task to this member.
	To string
}

// Hold is a stateful task kept active on a caught-up process instead of
// the member the balanced plan chose.
type Hold struct {
	// Task is the held task.
	Task processor.TaskID
	// On is the member planned to run the task: its previous owner if that
	// one is caught up, otherwise a member of the most caught-up process.
	// Like any planned task, it may be deferred (see Plan.Deferred).
	// The held task may be one the balanced plan moved between two
	// members of On's process, held in place of the task it chose for To
	// (see Assign's rule 6).
	On string
	// To is the member the balanced plan chose, whose process has no
	// caught-up state for the task.
	To string
}

// Replica is a standby (or warm-up) replica of a task on a member.
type Replica struct {
	// Task is the replicated task.
	Task processor.TaskID
	// Member is the member that keeps the task's state.
	Member string
}

// OffsetSumRunning is the offset sum a member reports for a task (in
// MemberMetadata.TaskOffsetSums) when it runs the task as an active task
// and is caught up: the assignor takes its lag as 0, whatever the end
// offsets. Kafka Streams: Task.LATEST_OFFSET.
const OffsetSumRunning int64 = -2

// AssignOptions holds the inputs of Assign besides the group: the end
// offsets of the changelogs and the replica settings. Assign takes them
// literally; the Balancer fills in the defaults of its Config. The zero
// value plans no standby or warm-up replicas and takes the lags of
// stateful tasks as unknown.
type AssignOptions struct {
	// EndOffsets holds the end offsets of the changelog partitions, by
	// topic and partition. A stateful task's end offset sum is the sum
	// over its changelog partitions (Layout.TaskOffsetSum); the lag of a
	// process for the task is that sum minus the process's offset sum. A
	// stateful task with a changelog partition missing here has an unknown
	// lag.
	EndOffsets map[string]map[int32]int64
	// Assignor holds the replica settings, as the Balancer's Config does:
	// NumStandbyReplicas is how many standby replicas each stateful task
	// gets, each on another process than the task's active one and than
	// each other, fewer if there are not enough processes;
	// AcceptableRecoveryLag is the lag up to which a process's state for a
	// task counts as caught up, so the task may become active there
	// without a warm-up; MaxWarmupReplicas is how many warm-up replicas
	// the whole group may have at once (with 0, held tasks wait for
	// standby replicas to catch up). Negative values count as 0. Assign
	// does not read ProbingRebalanceInterval.
	settings.Assignor
}

// Assign decides which member runs which task, and which members keep
// standby replicas of which stateful tasks. It is pure: the same input
// gives the same Plan, whatever the order of members.
//
// The tasks are those of layout given the partition counts of the source
// topics (see Layout.Tasks, whose *CopartitionError Assign returns). Members
// are taken in member id order; a member id listed twice counts once, with
// its first metadata. Each member belongs to the process (instance) named by
// its metadata's ProcessID; a member without one is a process of its own.
// A process's rack is the first non-empty Rack of its members in id order,
// and its offset sum for a task the best its members report:
// OffsetSumRunning, else the highest sum (other negative sums are
// ignored).
//
// # Lag
//
// A process's lag for a stateful task is the task's end offset sum minus
// the process's offset sum: 0 if it runs the task (OffsetSumRunning),
// never below 0, and the end offset sum plus one if it reports no sum (it
// has no state). A process is caught up for a task if it has state and its
// lag is at most opts.AcceptableRecoveryLag, or if the task's changelogs
// are empty. If a task's lag is unknown (end offsets missing), the
// processes that claim it (see rule 3) or report any offset sum for it
// count as caught up, the higher sum the more, and the plan asks for a
// probing rebalance. A stateless task has no lag: every process is caught
// up for it.
//
// # Active tasks
//
// The rules, in order of precedence:
//
//  1. Every task goes to exactly one member, all its partitions together.
//  2. Balance: the task counts of processes differ by at most one, and so do
//     the task counts of the members of one process; except for held tasks
//     (rule 6).
//  3. Stickiness: a task stays with the member that owned it (its
//     metadata's ActiveTasks) if that member is still in the group and has
//     room within its balanced share, and otherwise stays in the member's
//     process while the process has room. The processes and members that
//     run one task more than others are those it lets keep the most tasks.
//     When two members claim a task, the claim with the higher generation
//     wins, then the member with the lower id. A member over its share
//     gives up first the tasks that another process with room is caught
//     up for, then those it has some state for.
//  4. Caught up, then spread: tasks that must move, or are new, go first
//     to processes with room that are caught up for them, then to those
//     with some state, then to any; among those, to the processes (then
//     members) that have the fewest tasks of the same sub-topology.
//  5. Cooperative: a task whose partitions another member owns now (its
//     metadata's OwnedPartitions) is not given to its new member in this
//     rebalance; see Plan.Deferred.
//  6. Warm-up: a stateful task that rules 2 to 4 put on a process that is
//     not caught up for it, while another process is, is held (Plan.Held):
//     it stays with its previous owner if that one is caught up, and
//     otherwise goes to the caught-up process with the lowest lag (then
//     the lowest process id), to its member with the fewest tasks. If no
//     process is caught up, the task goes where rules 2 to 4 put it: its
//     state must be restored from the changelog anyway. But if that
//     caught-up process moves another task between two of its members, a
//     task it is caught up for and the target's process is not, that task
//     is held instead, on its owner, and the first task takes its place:
//     nothing moves within the process. Otherwise, while warm-ups lag,
//     the process's members could trade tasks, held tasks and warm-ups in
//     every probing rebalance.
//
// # Standby and warm-up replicas
//
// Each stateful task gets min(opts.NumStandbyReplicas, processes-1)
// standby replicas, each on a different process than the task's planned
// active member and than each other. The processes are chosen, in order of
// preference: on a rack that neither the active's process nor an already
// chosen one is on (when racks are given); with the fewest tasks (active
// and standby) per member, as Kafka Streams gives a standby to its least
// loaded client, so that replicas spread over new instances too; with the
// lowest lag, so that among equally loaded processes a replica stays where
// its state is; with the lowest process id.
// Within a process, the member with the fewest standby replicas, then the
// fewest tasks, then the lowest id gets it.
//
// Then each held task whose target process got no standby replica gets a
// warm-up replica on its target member (Plan.Warmups), in task order,
// while the group has fewer than opts.MaxWarmupReplicas. Warm-ups are
// delivered as standby tasks. A member never gets a task both active and
// standby, and a process never gets two replicas of one task nor a replica
// of a task it runs. Replicas need no two-phase move.
//
// Plan.ProbeRebalance is set when tasks are held or lags were unknown: the
// next (probing) rebalance moves the held tasks whose targets caught up.
func Assign(layout *Layout, partitionCounts map[string]int32, members []Member, opts AssignOptions) (Plan, error) {
	tasks, err := layout.Tasks(partitionCounts)
	if err != nil {
		return Plan{}, err
	}
	ms, procs := groupMembers(members)
	if len(ms) == 0 {
		return Plan{Assignments: map[string]Assignment{}}, nil
	}
	lg := newLags(layout, tasks, opts)
	owner := claim(tasks, ms)
	setQuotas(len(tasks), procs, lg)
	keepClaims(procs, lg)
	placeFree(tasks, procs, lg)
	held := hold(tasks, ms, procs, owner, lg)
	replicas := placeStandbys(tasks, ms, procs, lg, max(0, opts.NumStandbyReplicas))
	warmups := placeWarmups(held, ms, replicas, max(0, opts.MaxWarmupReplicas))
	plan := cooperate(layout, ms)
	plan.Held = held
	plan.Warmups = warmups
	plan.ProbeRebalance = len(held) > 0 || lg.unknown > 0
	if plan.ProbeRebalance {
		a := plan.Assignments[ms[0].ID]
		a.ProbeRebalance = true
		plan.Assignments[ms[0].ID] = a
	}
	return plan, nil
}

// member is the assignor's working state for one group member.
type member struct {
	Member
	proc     *process
	claims   []processor.TaskID // tasks it owned whose claim it won, sorted
	tasks    []processor.TaskID // tasks planned on it
	standbys []processor.TaskID // standby and warm-up replicas planned on it
	quota    int
	subs     map[int]int // planned tasks per sub-topology
}

// process is the assignor's working state for one instance.
type process struct {
	key      string
	members  []*member // sorted by id
	rack     string    // the first non-empty rack of its members
	claims   int
	quota    int
	planned  int                        // tasks planned on its members
	free     []processor.TaskID         // tasks placed on the process but on no member yet
	subs     map[int]int                // planned tasks per sub-topology
	sums     map[processor.TaskID]int64 // best offset sum its members report
	claimed  map[processor.TaskID]bool  // tasks its members list as active, won or not
	standbys int                        // replicas planned on its members
}

// groupMembers dedupes members by id (first wins), sorts them by id and
// groups them into processes sorted by key.
func groupMembers(in []Member) ([]*member, []*process) {
	seen := make(map[string]bool, len(in))
	var ms []*member
	for _, m := range in {
		if seen[m.ID] {
			continue
		}
		seen[m.ID] = true
		ms = append(ms, &member{Member: m, subs: make(map[int]int)})
	}
	slices.SortFunc(ms, func(a, b *member) int { return cmp.Compare(a.ID, b.ID) })
	byKey := make(map[string]*process)
	var procs []*process
	for _, m := range ms {
		key := m.Metadata.ProcessID
		if key == "" {
			// NUL cannot start a process id eddy writes (a UUID), so
			// the key of a member without one is unique to it.
			key = "\x00" + m.ID
		}
		p := byKey[key]
		if p == nil {
			p = &process{key: key, subs: make(map[int]int), sums: make(map[processor.TaskID]int64), claimed: make(map[processor.TaskID]bool)}
			byKey[key] = p
			procs = append(procs, p)
		}
		p.members = append(p.members, m)
		m.proc = p
		if p.rack == "" {
			p.rack = m.Metadata.Rack
		}
		for _, t := range m.Metadata.ActiveTasks {
			p.claimed[t] = true
		}
		for t, sum := range m.Metadata.TaskOffsetSums {
			if sum < 0 && sum != OffsetSumRunning {
				continue
			}
			if cur, ok := p.sums[t]; !ok || cur != OffsetSumRunning && (sum == OffsetSumRunning || sum > cur) {
				p.sums[t] = sum
			}
		}
	}
	slices.SortFunc(procs, func(a, b *process) int { return cmp.Compare(a.key, b.key) })
	return ms, procs
}

// claim resolves the members' claims on the tasks: of several members
// claiming a task, the highest generation wins, then the lowest member id.
// It returns the winners by task.
func claim(tasks []processor.TaskID, ms []*member) map[processor.TaskID]*member {
	owner := make(map[processor.TaskID]*member, len(tasks))
	for _, t := range tasks {
		owner[t] = nil
	}
	for _, m := range ms { // in id order, so a tie keeps the lower id
		for _, t := range m.Metadata.ActiveTasks {
			cur, exists := owner[t]
			if exists && (cur == nil || m.Metadata.Generation > cur.Metadata.Generation) {
				owner[t] = m
			}
		}
	}
	for _, t := range tasks {
		if m := owner[t]; m != nil {
			m.claims = append(m.claims, t)
			m.proc.claims++
		}
	}
	return owner
}

// setQuotas sets how many tasks each process and member runs. The n tasks
// split evenly over the processes, and n%len(procs) processes run one more;
// a process's tasks split evenly over its members, and the members that
// claim the most run one more.
//
// The processes that run one more are those for which it saves the most
// moves: the most claims that would otherwise be shed. Choosing by that
// saving, rather than by the count of claims, matters for the two-phase
// moves: after the revoking rebalance, a process that hands tasks from one
// of its members to another claims fewer tasks than it will run, and a
// choice by claims could take its extra task away and shed another of its
// tasks in the assigning rebalance. By saving, the processes of the
// revoking rebalance still shed nothing, so the assigning rebalance moves
// nothing more.
//
// On equal savings, the process whose claims are the coldest elsewhere
// runs one more: the one that could hand over fewer of its tasks to a
// process with state for them. This keeps a process that holds tasks for
// warm-ups (which inflate its claims) shedding the warmed-up tasks, rather
// than another process shedding tasks nobody has state for, so warm-ups
// stay put from one rebalance to the next. Then the most claims win.
func setQuotas(n int, procs []*process, lg *lags) {
	base := n / len(procs)
	saving := make(map[*process]int, len(procs))
	cold := make(map[*process]int, len(procs))
	for _, p := range procs {
		saving[p] = shedCount(p, base) - shedCount(p, base+1)
		for _, m := range p.members {
			for _, t := range m.claims {
				c := classNone
				for _, q := range procs {
					if q != p && q.claims < base {
						c = min(c, lg.of(q, t).class)
					}
				}
				cold[p] += c
			}
		}
	}
	order := slices.Clone(procs)
	slices.SortStableFunc(order, func(a, b *process) int {
		if c := cmp.Compare(saving[b], saving[a]); c != 0 {
			return c
		}
		if c := cmp.Compare(cold[b], cold[a]); c != 0 {
			return c
		}
		return cmp.Compare(b.claims, a.claims)
	})
	for i, p := range order {
		p.quota = share(n, len(procs), i)
		for j, m := range claimOrder(p) {
			m.quota = share(p.quota, len(p.members), j)
		}
	}
}

// share returns the i-th of k shares of n split as evenly as possible: the
// first n%k shares are one larger.
func share(n, k, i int) int {
	if i < n%k {
		return n/k + 1
	}
	return n / k
}

// claimOrder returns the members of p by claim count, most first, then by
// id: the order in which they get the larger shares of p's tasks.
func claimOrder(p *process) []*member {
	order := slices.Clone(p.members)
	slices.SortStableFunc(order, func(a, b *member) int { return cmp.Compare(len(b.claims), len(a.claims)) })
	return order
}

// shedCount returns how many of its claims the members of p would give up
// if p ran q tasks.
func shedCount(p *process, q int) int {
	shed := 0
	for i, m := range claimOrder(p) {
		shed += max(0, len(m.claims)-share(q, len(p.members), i))
	}
	return shed
}

// keepClaims plans on each member its claims, up to its quota. A member
// over quota gives up first the tasks for which another process with room
// is the warmest (caught up, then with some state), then those of the
// sub-topology its process has most of, which spreads sub-topologies
// across processes. What a member gives up stays in its process while the
// process has room (the task's state is on the process's disk), least
// represented sub-topology first.
func keepClaims(procs []*process, lg *lags) {
	var roomy []*process // processes that claim fewer tasks than they run
	for _, p := range procs {
		if p.claims < p.quota {
			roomy = append(roomy, p)
		}
	}
	for _, p := range procs {
		for _, m := range p.members {
			for _, t := range m.claims {
				p.subs[t.Subtopology]++
			}
		}
		var given []processor.TaskID
		for _, m := range p.members {
			m.tasks = slices.Clone(m.claims)
			var elsewhere map[processor.TaskID]int
			if len(m.tasks) > m.quota {
				elsewhere = make(map[processor.TaskID]int, len(m.tasks))
				for _, t := range m.tasks {
					elsewhere[t] = classNone
					for _, q := range roomy {
						if q != p {
							elsewhere[t] = min(elsewhere[t], lg.of(q, t).class)
						}
					}
				}
			}
			for len(m.tasks) > m.quota {
				at := shedIndex(m.tasks, p.subs, elsewhere)
				p.subs[m.tasks[at].Subtopology]--
				given = append(given, m.tasks[at])
				m.tasks = slices.Delete(m.tasks, at, at+1)
			}
			for _, t := range m.tasks {
				m.subs[t.Subtopology]++
			}
			p.planned += len(m.tasks)
		}
		for ; p.planned < p.quota && len(given) > 0; p.planned++ {
			at := 0
			for i, t := range given {
				if c, bc := p.subs[t.Subtopology], p.subs[given[at].Subtopology]; c < bc || c == bc && t.Less(given[at]) {
					at = i
				}
			}
			p.subs[given[at].Subtopology]++
			p.free = append(p.free, given[at])
			given = slices.Delete(given, at, at+1)
		}
	}
}

// placeFree plans the tasks that no process keeps. First those that a
// process with room is caught up for, each on such a process; then those
// that a process with room has some state for, each on such a process;
// then the rest. Among the candidates, a task goes to the warmest, then to
// the one that has the fewest tasks of its sub-topology. Then it plans each
// process's free tasks on the member with room that has the fewest tasks
// of the task's sub-topology.
func placeFree(tasks []processor.TaskID, procs []*process, lg *lags) {
	kept := make(map[processor.TaskID]bool, len(tasks))
	for _, p := range procs {
		for _, t := range p.free {
			kept[t] = true
		}
		for _, m := range p.members {
			for _, t := range m.tasks {
				kept[t] = true
			}
		}
	}
	for class := classCaughtUp; class <= classNone; class++ {
		for _, t := range tasks {
			if kept[t] {
				continue
			}
			var best *process
			var bestClass int
			for _, p := range procs {
				if p.planned >= p.quota {
					continue
				}
				c := lg.of(p, t).class
				if c > class {
					continue
				}
				if best == nil || c < bestClass ||
					c == bestClass && spreadLess(p.subs[t.Subtopology], p.quota-p.planned, best.subs[t.Subtopology], best.quota-best.planned) {
					best, bestClass = p, c
				}
			}
			if best == nil {
				continue
			}
			kept[t] = true
			best.planned++
			best.subs[t.Subtopology]++
			best.free = append(best.free, t)
		}
	}
	for _, p := range procs {
		for _, t := range p.free {
			var best *member
			for _, m := range p.members {
				if len(m.tasks) >= m.quota {
					continue
				}
				if best == nil || spreadLess(m.subs[t.Subtopology], m.quota-len(m.tasks), best.subs[t.Subtopology], best.quota-len(best.tasks)) {
					best = m
				}
			}
			best.tasks = append(best.tasks, t)
			best.subs[t.Subtopology]++
		}
		for _, m := range p.members {
			m.tasks = sortTasks(m.tasks)
		}
	}
}

// shedIndex returns the index of the task to give up: the one with the
// lowest class in elsewhere (the warmest home on another process), then
// whose sub-topology has the highest count in subs, the highest task on a
// tie.
func shedIndex(tasks []processor.TaskID, subs map[int]int, elsewhere map[processor.TaskID]int) int {
	at := 0
	for i, t := range tasks {
		best := tasks[at]
		if e, be := elsewhere[t], elsewhere[best]; e != be {
			if e < be {
				at = i
			}
			continue
		}
		if c, bc := subs[t.Subtopology], subs[best.Subtopology]; c > bc || c == bc && best.Less(t) {
			at = i
		}
	}
	return at
}

// spreadLess reports whether a candidate with sameSub tasks of a task's
// sub-topology and room for room more tasks is a better home for the task
// than the best so far: fewer of the sub-topology first, then more room.
// Candidates are visited in key order, so a full tie keeps the first.
func spreadLess(sameSub, room, bestSameSub, bestRoom int) bool {
	if sameSub != bestSameSub {
		return sameSub < bestSameSub
	}
	return room > bestRoom
}

// topicPartition names one partition of a topic.
type topicPartition struct {
	topic     string
	partition int32
}

// cooperate turns the planned tasks into the plan, deferring every task
// whose partitions another member owns now.
//
// A member owns a partition if its OwnedPartitions has it. The planned
// member X may take task t in this rebalance only if, for every partition of
// t that another member Y owns, X owns it too with a generation at least
// Y's: then X keeps what it already consumes and Y merely gives up a stale
// or duplicate claim. Otherwise t would run on two members at once, so
// nobody gets t now. Every Y loses t's partitions in this rebalance, and a
// cooperative kgo member that loses partitions revokes them and rejoins,
// which starts the rebalance in which t is free to assign.
func cooperate(layout *Layout, ms []*member) Plan {
	owners := make(map[topicPartition][]*member)
	owns := make(map[*member]map[topicPartition]bool, len(ms))
	for _, m := range ms {
		set := make(map[topicPartition]bool)
		for topic, ps := range m.Metadata.OwnedPartitions {
			for _, p := range ps {
				tp := topicPartition{topic, p}
				if !set[tp] {
					set[tp] = true
					owners[tp] = append(owners[tp], m)
				}
			}
		}
		owns[m] = set
	}

	plan := Plan{Assignments: make(map[string]Assignment, len(ms))}
	for _, x := range ms {
		var active []processor.TaskID
		for _, t := range x.tasks {
			var from []string
			free := true
			for _, topic := range layout.sourceTopics(t.Subtopology) {
				tp := topicPartition{topic, t.Partition}
				for _, y := range owners[tp] {
					if y == x {
						continue
					}
					from = append(from, y.ID)
					if !owns[x][tp] || x.Metadata.Generation < y.Metadata.Generation {
						free = false
					}
				}
			}
			if free {
				active = append(active, t)
				continue
			}
			slices.Sort(from)
			plan.Deferred = append(plan.Deferred, Transfer{Task: t, From: slices.Compact(from), To: x.ID})
		}
		a := Assignment{Version: AssignmentVersion, ActiveTasks: active, StandbyTasks: x.standbys}
		if len(active) > 0 {
			a.Partitions = layout.Partitions(active)
		}
		plan.Assignments[x.ID] = a
	}
	slices.SortFunc(plan.Deferred, func(a, b Transfer) int { return compareTasks(a.Task, b.Task) })
	return plan
}
