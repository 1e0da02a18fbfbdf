package rebalance

import (
	"cmp"
	"slices"

	"github.com/eddystream/eddy/processor"
)

// plannedOn returns the member each task is planned on.
func plannedOn(ms []*member) map[processor.TaskID]*member {
	on := make(map[processor.TaskID]*member)
	for _, m := range ms {
		for _, t := range m.tasks {
			on[t] = m
		}
	}
	return on
}

// hold keeps each stateful task that the balanced plan put on a process
// that is not caught up for it on a process that is, if there is one: its
// previous owner if caught up, else the member with the fewest tasks of the
// warmest process. It returns the held tasks, sorted.
func hold(tasks []processor.TaskID, ms []*member, procs []*process, owner map[processor.TaskID]*member, lg *lags) []Hold {
	on := plannedOn(ms)
	var held []Hold
	for _, t := range tasks {
		x := on[t]
		if !lg.layout.Stateful(t) || lg.caughtUp(x.proc, t) {
			continue
		}
		h := owner[t]
		if h == nil || !lg.caughtUp(h.proc, t) {
			var best *process
			for _, p := range procs { // in key order: a tie keeps the lowest key
				if lg.caughtUp(p, t) && (best == nil || compareWarmth(lg.of(p, t), lg.of(best, t)) < 0) {
					best = p
				}
			}
			if best == nil {
				continue // nobody has the state: restore where balance says
			}
			if o, m := swapHold(best, x.proc, owner, lg); m != nil {
				// m runs t instead of o, and o stays with its owner,
				// held for x in t's place: nothing moves within best.
				x.tasks = slices.DeleteFunc(x.tasks, func(u processor.TaskID) bool { return u == t })
				m.tasks = sortTasks(append(slices.DeleteFunc(m.tasks, func(u processor.TaskID) bool { return u == o }), t))
				owner[o].tasks = sortTasks(append(owner[o].tasks, o))
				on[t], on[o] = m, owner[o]
				held = append(held, Hold{Task: o, On: owner[o].ID, To: x.ID})
				continue
			}
			h = leastBusy(best)
		}
		x.tasks = slices.DeleteFunc(x.tasks, func(o processor.TaskID) bool { return o == t })
		h.tasks = sortTasks(append(h.tasks, t))
		held = append(held, Hold{Task: t, On: h.ID, To: x.ID})
	}
	slices.SortFunc(held, func(a, b Hold) int { return compareTasks(a.Task, b.Task) })
	return held
}

// swapHold returns a task o, and the member m of process p that the plan
// moves o to from o's owner, another member of p, if p is caught up for o
// and q is not; otherwise a nil member.
//
// hold uses it for a task t that must be held on p for a member of q but
// that no caught-up member owns, so t moves to p anyway. Running t on m in
// place of o, and holding o on its owner for q in place of t, leaves m's
// and the target's counts as they were and moves nothing within p: o stays
// put, and t goes where o would have gone.
//
// Without the swap, a group whose warm-ups do not catch up need not
// settle. A held task adds to its owner's claims, so in the next rebalance
// that member claims more than its share and gives up a task to another
// member of its process; that task moves in two rebalances and is claimed
// by nobody in between, so it is free again, held again (on the least busy
// member), and the members of the process trade tasks, held tasks and
// warm-ups in every rebalance.
func swapHold(p, q *process, owner map[processor.TaskID]*member, lg *lags) (processor.TaskID, *member) {
	for _, m := range p.members {
		for _, o := range m.tasks {
			if w := owner[o]; w != nil && w != m && w.proc == p && lg.layout.Stateful(o) && lg.caughtUp(p, o) && !lg.caughtUp(q, o) {
				return o, m
			}
		}
	}
	return processor.TaskID{}, nil
}

// leastBusy returns the member of p with the fewest planned tasks, the
// lowest id on a tie.
func leastBusy(p *process) *member {
	best := p.members[0]
	for _, m := range p.members[1:] {
		if len(m.tasks) < len(best.tasks) {
			best = m
		}
	}
	return best
}

// placeStandbys plans min(n, len(procs)-1) standby replicas of each
// stateful task, each on a process other than the task's active one and
// than each other's, as Assign describes. It returns, by task, the
// processes that got a replica.
func placeStandbys(tasks []processor.TaskID, ms []*member, procs []*process, lg *lags, n int) map[processor.TaskID]map[*process]bool {
	replicas := make(map[processor.TaskID]map[*process]bool)
	need := min(n, len(procs)-1)
	if need <= 0 {
		return replicas
	}
	on := plannedOn(ms)
	active := make(map[*process]int, len(procs))
	for _, m := range ms {
		active[m.proc] += len(m.tasks)
	}
	// lighter reports whether a carries fewer tasks per member than b.
	lighter := func(a, b *process) int {
		return cmp.Compare((active[a]+a.standbys)*len(b.members), (active[b]+b.standbys)*len(a.members))
	}
	for _, t := range tasks {
		if !lg.layout.Stateful(t) {
			continue
		}
		home := on[t].proc
		racks := make(map[string]bool)
		if home.rack != "" {
			racks[home.rack] = true
		}
		chosen := make(map[*process]bool, need)
		for range need {
			var best *process
			for _, p := range procs {
				if p == home || chosen[p] {
					continue
				}
				if best == nil || betterStandby(p, best, t, racks, lg, lighter) {
					best = p
				}
			}
			chosen[best] = true
			if best.rack != "" {
				racks[best.rack] = true
			}
			best.standbys++
			m := best.members[0]
			for _, o := range best.members[1:] {
				if c := cmp.Compare(len(o.standbys), len(m.standbys)); c < 0 || c == 0 && len(o.tasks) < len(m.tasks) {
					m = o
				}
			}
			m.standbys = append(m.standbys, t)
		}
		replicas[t] = chosen
	}
	return replicas
}

// betterStandby reports whether process p is a better home for a standby
// replica of t than best: on a rack not in racks, then lighter (fewer
// active and standby tasks per member, as Kafka Streams gives a standby to
// the least loaded client), then warmer, so that among equally loaded
// processes a replica stays where its state is. Processes are visited in
// key order, so a full tie keeps the first.
func betterStandby(p, best *process, t processor.TaskID, racks map[string]bool, lg *lags, lighter func(a, b *process) int) bool {
	newRack := func(q *process) bool { return q.rack != "" && !racks[q.rack] }
	if a, b := newRack(p), newRack(best); a != b {
		return a
	}
	if c := lighter(p, best); c != 0 {
		return c < 0
	}
	return compareWarmth(lg.of(p, t), lg.of(best, t)) < 0
}

// placeWarmups gives the target member of each held task whose process
// got no standby replica of it a warm-up replica, in task order, up to
// budget. It returns the warm-ups, sorted by task, and sorts every
// member's replicas.
func placeWarmups(held []Hold, ms []*member, replicas map[processor.TaskID]map[*process]bool, budget int) []Replica {
	byID := make(map[string]*member, len(ms))
	for _, m := range ms {
		byID[m.ID] = m
	}
	var warmups []Replica
	for _, h := range held {
		if len(warmups) >= budget {
			break
		}
		to := byID[h.To]
		if replicas[h.Task][to.proc] {
			continue // a standby replica warms it up already
		}
		to.standbys = append(to.standbys, h.Task)
		warmups = append(warmups, Replica{Task: h.Task, Member: to.ID})
	}
	for _, m := range ms {
		m.standbys = sortTasks(m.standbys)
	}
	return warmups
}
