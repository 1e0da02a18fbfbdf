package rebalance

import (
	"cmp"
	"slices"

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

// Assign decides which member runs which task. It is pure: the same input
// gives the same Plan, whatever the order of members.
//
// The tasks are those of layout given the partition counts of the source
// topics (see Layout.Tasks, whose *CopartitionError Assign returns). Members
// are taken in member id order; a member id listed twice counts once, with
// its first metadata. Each member belongs to the process (instance) named by
// its metadata's ProcessID; a member without one is a process of its own.
//
// The rules, in order of precedence:
//
//  1. Every task goes to exactly one member, all its partitions together.
//  2. Balance: the task counts of processes differ by at most one, and so do
//     the task counts of the members of one process.
//  3. Stickiness: a task stays with the member that owned it (its
//     metadata's ActiveTasks) if that member is still in the group and has
//     room within its balanced share, and otherwise stays in the member's
//     process while the process has room. The processes and members that
//     run one task more than others are those it lets keep the most tasks.
//     When two members claim a task, the claim with the higher generation
//     wins, then the member with the lower id.
//  4. Spread: tasks that must move, or are new, go first to the processes
//     (then members) that have the fewest tasks of the same sub-topology.
//  5. Cooperative: a task whose partitions another member owns now (its
//     metadata's OwnedPartitions) is not given to its new member in this
//     rebalance; see Plan.Deferred.
func Assign(layout *Layout, partitionCounts map[string]int32, members []Member) (Plan, error) {
	tasks, err := layout.Tasks(partitionCounts)
	if err != nil {
		return Plan{}, err
	}
	ms, procs := groupMembers(members)
	if len(ms) == 0 {
		return Plan{Assignments: map[string]Assignment{}}, nil
	}
	claim(tasks, ms)
	setQuotas(len(tasks), procs)
	keepClaims(procs)
	placeFree(tasks, procs)
	return cooperate(layout, ms), nil
}

// member is the assignor's working state for one group member.
type member struct {
	Member
	proc   *process
	claims []processor.TaskID // tasks it owned whose claim it won, sorted
	tasks  []processor.TaskID // tasks planned on it
	quota  int
	subs   map[int]int // planned tasks per sub-topology
}

// process is the assignor's working state for one instance.
type process struct {
	key     string
	members []*member // sorted by id
	claims  int
	quota   int
	planned int                // tasks planned on its members
	free    []processor.TaskID // tasks placed on the process but on no member yet
	subs    map[int]int        // planned tasks per sub-topology
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
			p = &process{key: key, subs: make(map[int]int)}
			byKey[key] = p
			procs = append(procs, p)
		}
		p.members = append(p.members, m)
		m.proc = p
	}
	slices.SortFunc(procs, func(a, b *process) int { return cmp.Compare(a.key, b.key) })
	return ms, procs
}

// claim resolves the members' claims on the tasks: of several members
// claiming a task, the highest generation wins, then the lowest member id.
func claim(tasks []processor.TaskID, ms []*member) {
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
func setQuotas(n int, procs []*process) {
	base := n / len(procs)
	saving := make(map[*process]int, len(procs))
	for _, p := range procs {
		saving[p] = shedCount(p, base) - shedCount(p, base+1)
	}
	order := slices.Clone(procs)
	slices.SortStableFunc(order, func(a, b *process) int {
		if c := cmp.Compare(saving[b], saving[a]); c != 0 {
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
// over quota gives up first the tasks of the sub-topology its process has
// most of, which spreads sub-topologies across processes. What a member
// gives up stays in its process while the process has room (the task's
// state is on the process's disk), least represented sub-topology first.
func keepClaims(procs []*process) {
	for _, p := range procs {
		for _, m := range p.members {
			for _, t := range m.claims {
				p.subs[t.Subtopology]++
			}
		}
		var given []processor.TaskID
		for _, m := range p.members {
			m.tasks = slices.Clone(m.claims)
			for len(m.tasks) > m.quota {
				at := shedIndex(m.tasks, p.subs)
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

// placeFree plans the tasks that no process keeps: each goes to the process
// with room that has the fewest tasks of its sub-topology. Then it plans
// each process's free tasks on the member with room that has the fewest
// tasks of the task's sub-topology.
func placeFree(tasks []processor.TaskID, procs []*process) {
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
	for _, t := range tasks {
		if kept[t] {
			continue
		}
		var best *process
		for _, p := range procs {
			if p.planned >= p.quota {
				continue
			}
			if best == nil || spreadLess(p.subs[t.Subtopology], p.quota-p.planned, best.subs[t.Subtopology], best.quota-best.planned) {
				best = p
			}
		}
		best.planned++
		best.subs[t.Subtopology]++
		best.free = append(best.free, t)
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

// shedIndex returns the index of the task to give up: the one whose
// sub-topology has the highest count in subs, the highest task on a tie.
func shedIndex(tasks []processor.TaskID, subs map[int]int) int {
	at := 0
	for i, t := range tasks {
		best := tasks[at]
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
		a := Assignment{Version: AssignmentVersion, ActiveTasks: active}
		if len(active) > 0 {
			a.Partitions = layout.Partitions(active)
		}
		plan.Assignments[x.ID] = a
	}
	slices.SortFunc(plan.Deferred, func(a, b Transfer) int { return compareTasks(a.Task, b.Task) })
	return plan
}
