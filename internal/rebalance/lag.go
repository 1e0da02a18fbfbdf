package rebalance

import (
	"cmp"
	"math"

	"github.com/eddystream/eddy/processor"
)

// The classes of a process's state for a task, warmest first.
const (
	classCaughtUp = iota // may run the task without a warm-up
	classState           // has state, too far behind
	classNone            // has no state
)

// warmth is how ready a process is to run a task: its class, then a rank
// within the class, lower is readier. With known lags the rank is the lag;
// with unknown lags it orders by offset sum, the highest first.
type warmth struct {
	class int
	rank  int64
}

func compareWarmth(a, b warmth) int {
	if c := cmp.Compare(a.class, b.class); c != 0 {
		return c
	}
	return cmp.Compare(a.rank, b.rank)
}

// lags computes the warmth of processes for tasks.
type lags struct {
	layout     *Layout
	ends       map[processor.TaskID]int64 // end offset sums of the stateful tasks with known lags
	acceptable int64
	unknown    int // stateful tasks whose lag is unknown
}

func newLags(layout *Layout, tasks []processor.TaskID, opts AssignOptions) *lags {
	lg := &lags{layout: layout, ends: make(map[processor.TaskID]int64), acceptable: max(0, opts.AcceptableRecoveryLag)}
	for _, t := range tasks {
		if !layout.Stateful(t) {
			continue
		}
		if end, ok := layout.TaskOffsetSum(t, opts.EndOffsets); ok {
			lg.ends[t] = end
		} else {
			lg.unknown++
		}
	}
	return lg
}

// of returns the warmth of process p for task t.
func (lg *lags) of(p *process, t processor.TaskID) warmth {
	if !lg.layout.Stateful(t) {
		return warmth{class: classCaughtUp}
	}
	sum, has := p.sums[t]
	end, known := lg.ends[t]
	switch {
	case !known:
		// Sticky only: who ran the task or has any state is as good as
		// caught up, the most advanced first.
		switch {
		case sum == OffsetSumRunning && has, p.claimed[t]:
			return warmth{class: classCaughtUp, rank: math.MinInt64}
		case has:
			return warmth{class: classCaughtUp, rank: -sum}
		}
		return warmth{class: classNone}
	case !has:
		// No state: the whole changelog to restore, one more than a
		// process that has state at offset 0. A changelog within the
		// acceptable lag restores quickly anyway, so, as in Kafka
		// Streams, the process counts as caught up.
		if end <= lg.acceptable {
			return warmth{class: classCaughtUp, rank: end + 1}
		}
		return warmth{class: classNone, rank: end + 1}
	case sum == OffsetSumRunning:
		return warmth{class: classCaughtUp}
	}
	lag := max(0, end-sum)
	if lag <= lg.acceptable {
		return warmth{class: classCaughtUp, rank: lag}
	}
	return warmth{class: classState, rank: lag}
}

// caughtUp reports whether process p is caught up for task t.
func (lg *lags) caughtUp(p *process, t processor.TaskID) bool {
	return lg.of(p, t).class == classCaughtUp
}
