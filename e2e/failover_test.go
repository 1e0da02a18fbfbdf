package e2e

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// failoverResult is what one kill -9 failover measured.
type failoverResult struct {
	// outage is, per moved task, the time from the kill to the first
	// output record its new owner wrote.
	outage map[string]time.Duration
	// restored is the changelog records the new owners restored for the
	// moved tasks.
	restored int64
}

// TestKillNineFailover kills one of three instances with SIGKILL while
// input arrives, with one standby replica per task and without, and
// measures how long each of the dead instance's tasks produced nothing.
// With a standby the survivors must promote it and restore only its lag;
// without, they restore the task's changelog. Nothing may be lost either
// way (at-least-once). The times are logged, not asserted: the machine is
// noisy.
func TestKillNineFailover(t *testing.T) {
	results := map[int]failoverResult{}
	for _, standbys := range []int{1, 0} {
		t.Run(fmt.Sprintf("standbys-%d", standbys), func(t *testing.T) {
			results[standbys] = runFailover(t, standbys)
		})
	}
	with, okW := results[1]
	without, okWo := results[0]
	if !okW || !okWo {
		return // a subtest failed and said why
	}
	t.Logf("failover with a standby: outage %v, %d records restored; without: outage %v, %d records restored",
		formatOutages(with.outage), with.restored, formatOutages(without.outage), without.restored)
	// A standby replays the changelog as it is written, so its promotion
	// restores only the few records it had not replayed yet; without one
	// the new owner restores the changelog in full (20,000 keys over 6
	// partitions here).
	if with.restored*4 > without.restored {
		t.Errorf("with a standby the survivors restored %d records for the moved tasks, without %d: want far fewer with one",
			with.restored, without.restored)
	}
}

var (
	restoredTaskRE = regexp.MustCompile(`msg="task restored and running".*? task=(\S+) restored_records=(\d+)`)
	promotedTaskRE = regexp.MustCompile(`msg="promoting standby task".*? task=(\S+) lag_records=(\d+)`)
)

// runFailover runs three instances with standbys standby replicas per task,
// kills one with SIGKILL and measures the failover of its tasks.
func runFailover(t *testing.T, standbys int) failoverResult {
	began := time.Now()
	const keys = 20_000
	r := newAggRun(t, 6, 0, keys, "-session-timeout", "6s", "-standbys", strconv.Itoa(standbys))
	var ps []*proc
	for i := range 3 {
		ps = append(ps, r.start(fmt.Sprintf("instance-%d", i)))
	}
	// Every task has its standbys, wherever they are: the assignor keeps a
	// standby where its state is, so how they spread depends on the order
	// the instances joined in.
	waitUntil(t, 90*time.Second, "three instances run two tasks each, and every task has its standbys", func() bool {
		var allStandbys float64
		for _, p := range ps {
			ms, err := p.scrape()
			if err != nil {
				return false
			}
			running, _ := ms.sum("eddy_tasks", "state", "running")
			standby, _ := ms.sum("eddy_tasks", "state", "standby")
			if running != 2 {
				return false
			}
			allStandbys += standby
		}
		return allStandbys == float64(6*standbys)
	}, func() string { return describeTasks(ps) })

	// The state: every key a few times over, so that each task's changelog
	// holds some 20,000 records. Then a steady load through the kill.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := r.ds.ProduceMore(ctx, r.cl, 6*keys); err != nil {
		t.Fatal(err)
	}
	r.waitConsumed(90 * time.Second)
	stopLoad := r.startLoad(100, 100*time.Millisecond)
	waitProgress(t, ps...)
	if standbys > 0 {
		waitUntil(t, 60*time.Second, "the standbys catch up", func() bool {
			for _, p := range ps {
				ms, err := p.scrape()
				lag, _ := ms.sum("eddy_standby_lag_records")
				if err != nil || lag > 1000 {
					return false
				}
			}
			return true
		}, func() string { return describeTasks(ps) })
	}

	victim, survivors := ps[1], []*proc{ps[0], ps[2]}
	moved := victim.activeTasks()
	if len(moved) == 0 {
		t.Fatalf("%s holds no task by its log", victim.name)
	}
	marks := make([]int, len(survivors))
	for i, p := range survivors {
		marks[i] = p.logLen()
	}
	adm := kadm.NewClient(r.cl)
	victim.kill()
	killed := time.Now()
	// Produce requests the victim sent before it died may still land; a
	// failover takes at least the session timeout, so a baseline taken a
	// little later belongs to the victim in full.
	time.Sleep(300 * time.Millisecond)
	base := endOffsets(t, adm, r.pass)
	res := failoverResult{outage: map[string]time.Duration{}}
	waitUntil(t, 90*time.Second, "every moved task writes output again", func() bool {
		ends := endOffsets(t, adm, r.pass)
		for id := range moved {
			if _, done := res.outage[id]; done {
				continue
			}
			if ends[taskPartition(t, id)] > base[taskPartition(t, id)] {
				res.outage[id] = time.Since(killed)
			}
		}
		return len(res.outage) == len(moved)
	}, func() string {
		return fmt.Sprintf("moved %v, writing again %v", sortedKeys(moved), formatOutages(res.outage))
	})

	// Which survivor took each task, how, and what it restored.
	restoredBy, promoted := map[string]int64{}, map[string]bool{}
	waitUntil(t, 60*time.Second, "the survivors run the moved tasks", func() bool {
		for i, p := range survivors {
			logged := p.since(marks[i])
			for _, m := range restoredTaskRE.FindAllStringSubmatch(logged, -1) {
				if moved[m[1]] {
					n, _ := strconv.ParseInt(m[2], 10, 64)
					restoredBy[m[1]] = n
				}
			}
			for _, m := range promotedTaskRE.FindAllStringSubmatch(logged, -1) {
				promoted[m[1]] = true
			}
		}
		return len(restoredBy) == len(moved)
	}, func() string { return fmt.Sprintf("moved %v, running again %v", sortedKeys(moved), restoredBy) })
	for id, n := range restoredBy {
		res.restored += n
		if standbys > 0 && !promoted[id] {
			t.Errorf("task %s moved to a survivor without promoting its standby", id)
		}
	}
	t.Logf("killed %s holding %v; output resumed after %v; restored %v (%d records)%s", victim.name, sortedKeys(moved),
		formatOutages(res.outage), restoredBy, res.restored, promotions(promoted, standbys))

	loaded := stopLoad()
	r.waitConsumed(90 * time.Second)
	for _, p := range survivors {
		p.stop()
	}
	r.verify(false)
	checkCopartitioned(t, r)
	t.Logf("%d inputs (%d under steady load) in %v", r.ds.Records(), loaded, time.Since(began).Round(time.Millisecond))
	return res
}

// checkCopartitioned checks what the outage measurement relies on: each
// input record comes out on the output partition numbered as its input
// partition, the task's partition.
func checkCopartitioned(t *testing.T, r *aggRun) {
	t.Helper()
	in := map[string]int32{}
	for _, rec := range readAll(t, r.in) {
		in[string(rec.Key)] = rec.Partition
	}
	for _, rec := range readAll(t, r.pass) {
		if p, ok := in[string(rec.Key)]; !ok || p != rec.Partition {
			t.Fatalf("key %s is on input partition %d but came out on passthrough partition %d", rec.Key, p, rec.Partition)
		}
	}
}

// taskPartition returns the partition of task id ("<subtopology>_<partition>").
func taskPartition(t *testing.T, id string) int32 {
	_, p, ok := strings.Cut(id, "_")
	n, err := strconv.ParseInt(p, 10, 32)
	if !ok || err != nil {
		t.Fatalf("task id %q is not <subtopology>_<partition>", id)
	}
	return int32(n)
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func formatOutages(m map[string]time.Duration) string {
	var parts []string
	for _, id := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s %v", id, m[id].Round(time.Millisecond)))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func promotions(promoted map[string]bool, standbys int) string {
	if standbys == 0 {
		return ""
	}
	return fmt.Sprintf("; promoted standbys %v", sortedKeys(promoted))
}

// describeTasks says how many tasks each process holds in each state, and
// its standby lag.
func describeTasks(ps []*proc) string {
	return describeEach(ps, func(p *proc, ms metricSet) string {
		lag, _ := ms.sum("eddy_standby_lag_records")
		return fmt.Sprintf("%s: %v, standby lag %.0f", p.name, ms.byLabel("eddy_tasks", "state"), lag)
	})
}
