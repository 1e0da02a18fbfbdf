package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// TestRollingRestartStaticMembership restarts each of three static members
// (-instance-id a, b, c) in turn, within the session timeout, while input
// keeps arriving. Static membership must make the restarts invisible to
// the group: no rebalance (every worker's group generation stays the same,
// and the members that were not restarted receive no new assignment), the
// restarted instance gets its own tasks back and is ready again, output
// keeps flowing, and the outputs hold every input exactly once.
func TestRollingRestartStaticMembership(t *testing.T) {
	began := time.Now()
	r := newAggRun(t, 6, 6_000, 1_000, "-guarantee", "exactly-once",
		// Long enough to cover a restart: the group waits that long for a
		// static member that stopped before moving its tasks.
		"-session-timeout", "20s")
	ids := []string{"a", "b", "c"}
	ps := make([]*proc, len(ids))
	for i, id := range ids {
		ps[i] = r.start(id, "-instance-id", id)
	}
	// Settled: two tasks each, one generation for all, for a few scrapes in
	// a row (a join right after the first balance bumps the generation).
	var gen float64
	stable := 0
	waitUntil(t, 90*time.Second, "three static members settle with two tasks each", func() bool {
		g, ok := settledGeneration(ps)
		if !ok || g != gen {
			gen, stable = g, 0
			return false
		}
		stable++
		return stable >= 10
	}, func() string { return describeMembers(ps) })
	baseline := make([]float64, len(ps))
	for i, p := range ps {
		baseline[i], _ = p.mustScrape().sum("eddy_rebalances_total")
	}
	t.Logf("settled at generation %.0f; rebalances per instance %v", gen, baseline)

	stopLoad := r.startLoad(200, 100*time.Millisecond)
	adm := kadm.NewClient(r.cl)
	waitProgress(t, ps...)
	for i, id := range ids {
		before := sumOffsets(endOffsets(t, adm, r.pass))
		stopped := time.Now()
		ps[i].stop()
		p := r.start(id+"#2", "-instance-id", id, "-state-dir", r.stateDir(id))
		ps[i] = p
		waitUntil(t, 60*time.Second, fmt.Sprintf("restarted %s is ready and runs two tasks", id), func() bool {
			return p.status("/readyz") == 200 && p.runningTasks() == 2
		}, func() string {
			return fmt.Sprintf("/readyz %d; %s", p.status("/readyz"), describeMembers(ps))
		})
		back := time.Since(stopped)
		after := sumOffsets(endOffsets(t, adm, r.pass))
		t.Logf("%s restarted and ready in %v; output grew by %d records meanwhile", id, back.Round(time.Millisecond), after-before)
		if after <= before {
			t.Errorf("the output did not grow while %s restarted (%d records before, %d after)", id, before, after)
		}
		// No rebalance: the restarted instance rejoined the generation it
		// left, with one assignment (its first), and the others received
		// none.
		for j, q := range ps {
			ms := q.mustScrape()
			g, _ := ms.sum("eddy_group_generation")
			n, _ := ms.sum("eddy_rebalances_total")
			want := baseline[j]
			if j == i {
				want = 1
			}
			if g != gen || n != want {
				t.Errorf("after restarting %s: %s is at generation %.0f with %.0f assignments; want generation %.0f and %.0f assignments",
					id, q.name, g, n, gen, want)
			}
			if j == i {
				baseline[j] = 1
			}
		}
		waitProgress(t, ps...)
	}
	loaded := stopLoad()
	r.waitConsumed(90 * time.Second)
	for _, p := range ps {
		p.stop()
	}
	r.verify(true)
	t.Logf("%d inputs (%d during the restarts) in %v", r.ds.Records(), loaded, time.Since(began).Round(time.Millisecond))
}

// settledGeneration returns the group generation of the members if each
// runs two tasks and all report the same generation.
func settledGeneration(ps []*proc) (float64, bool) {
	var gen float64
	for i, p := range ps {
		ms, err := p.scrape()
		if err != nil {
			return 0, false
		}
		running, _ := ms.sum("eddy_tasks", "state", "running")
		g, ok := ms.sum("eddy_group_generation")
		if !ok || running != 2 || (i > 0 && g != gen) {
			return 0, false
		}
		gen = g
	}
	return gen, true
}

// describeMembers says, per instance, its running tasks, generation and
// assignments received.
func describeMembers(ps []*proc) string {
	return describeEach(ps, func(p *proc, ms metricSet) string {
		running, _ := ms.sum("eddy_tasks", "state", "running")
		g, _ := ms.sum("eddy_group_generation")
		n, _ := ms.sum("eddy_rebalances_total")
		return fmt.Sprintf("%s runs %.0f at generation %.0f after %.0f assignments", p.name, running, g, n)
	})
}
