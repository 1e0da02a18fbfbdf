package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestScaleOutAndInExactlyOnce grows an exactly-once application from one
// instance to three and shrinks it back to one, with input arriving
// throughout: the tasks must spread over the new instances, come back to
// the last one as the others stop gracefully, and the outputs must hold
// every input exactly once with every aggregate exact.
func TestScaleOutAndInExactlyOnce(t *testing.T) {
	began := time.Now()
	r := newAggRun(t, 6, 20_000, 1_000, "-guarantee", "exactly-once", "-session-timeout", "6s",
		// A task moves to a new instance at once if the instance's lag on it
		// is acceptable (the default 10,000 records is more than a task's
		// changelog here); the probing interval only bounds the wait if a
		// warm-up is needed after all.
		"-probing-interval", "2s")
	first := r.start("instance-0")
	waitUntil(t, 60*time.Second, "one instance runs all 6 tasks",
		func() bool { return first.runningTasks() == 6 }, func() string { return describeRunning(first) })
	stopLoad := r.startLoad(200, 100*time.Millisecond) // about 2,000 inputs/s

	scaleOut := time.Now()
	second, third := r.start("instance-1"), r.start("instance-2")
	all := []*proc{first, second, third}
	waitUntil(t, 90*time.Second, "the tasks spread two per instance", func() bool {
		for _, p := range all {
			if p.runningTasks() != 2 {
				return false
			}
		}
		return true
	}, func() string { return describeRunning(all...) })
	t.Logf("scaled out 1 → 3 in %v", time.Since(scaleOut).Round(time.Millisecond))
	waitProgress(t, all...)

	scaleIn := time.Now()
	third.stop()
	waitUntil(t, 60*time.Second, "the two instances left run three tasks each", func() bool {
		return first.runningTasks() == 3 && second.runningTasks() == 3
	}, func() string { return describeRunning(first, second) })
	t.Logf("scaled in 3 → 2 in %v", time.Since(scaleIn).Round(time.Millisecond))
	waitProgress(t, first, second)

	scaleIn = time.Now()
	second.stop()
	waitUntil(t, 60*time.Second, "the last instance runs all 6 tasks",
		func() bool { return first.runningTasks() == 6 }, func() string { return describeRunning(first) })
	t.Logf("scaled in 2 → 1 in %v", time.Since(scaleIn).Round(time.Millisecond))
	waitProgress(t, first)

	loaded := stopLoad()
	r.waitConsumed(90 * time.Second)
	first.stop()
	r.verify(true)
	t.Logf("%d inputs (%d during the scaling), %d restored changelog records, in %v", r.ds.Records(), loaded,
		first.restored()+second.restored()+third.restored(), time.Since(began).Round(time.Millisecond))
}

// waitProgress waits until each instance has processed at least 2,000
// more records than when it is called: the steady load then runs through
// every instance of the current membership for a while.
func waitProgress(t *testing.T, ps ...*proc) {
	t.Helper()
	from := make([]float64, len(ps))
	for i, p := range ps {
		from[i] = p.processed()
	}
	waitUntil(t, 60*time.Second, "every instance processes input", func() bool {
		for i, p := range ps {
			if p.processed() < from[i]+2000 {
				return false
			}
		}
		return true
	}, func() string {
		var parts []string
		for i, p := range ps {
			parts = append(parts, fmt.Sprintf("%s processed %.0f since", p.name, p.processed()-from[i]))
		}
		return strings.Join(parts, ", ")
	})
}
