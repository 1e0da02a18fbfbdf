package eddy_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddystream/eddy"
	"github.com/eddystream/eddy/internal/changelog"
	"github.com/eddystream/eddy/processor"
)

// gauge sums the samples of a metric family in reg whose labels include
// match.
func gauge(t *testing.T, reg *prometheus.Registry, name string, match map[string]string) (sum float64, samples int) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range match {
				if labels[k] != v {
					continue metric
				}
			}
			samples++
			switch {
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			}
		}
	}
	return sum, samples
}

// TestStandbyTakesOverWithoutRestore runs two instances with one standby
// replica each. When one stops, the other promotes its standbys: it
// restores nothing it had already replayed, and the counts go on exactly
// from the standby's state.
func TestStandbyTakesOverWithoutRestore(t *testing.T) {
	t.Run("fresh", func(t *testing.T) { testStandbyTakeover(t, false) })
	// B's state directory holds checkpoints far ahead of the changelog
	// (as after the topic was recreated): its standbys must notice, wipe
	// and replay in full, or the takeover finds them useless.
	t.Run("checkpoints ahead", func(t *testing.T) { testStandbyTakeover(t, true) })
}

func testStandbyTakeover(t *testing.T, aheadB bool) {
	addrs := cluster(t, kfake.SeedTopics(4, "lines", "counts"))
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	want := map[string]int64{}
	produce := func(from, to int) {
		t.Helper()
		var recs []*kgo.Record
		for i := from; i < to; i++ {
			line := fmt.Sprintf("w%d w%d", i%11, i%17)
			for _, w := range strings.Fields(line) {
				want[w]++
			}
			recs = append(recs, &kgo.Record{Topic: "lines", Key: []byte(fmt.Sprint(i)), Value: []byte(line)})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produce(0, 500)

	top := wordCount(t, "lines", "counts")
	regA, regB := prometheus.NewRegistry(), prometheus.NewRegistry()
	a := newApp(t, top, addrs, "standby", eddy.NumStandbyReplicas(1), eddy.MetricsRegistry(regA))
	dirB := t.TempDir()
	if aheadB {
		for sub := range 2 {
			for p := range int32(4) {
				task := processor.TaskID{Subtopology: sub, Partition: p}
				dir := filepath.Join(dirB, "standby", task.String())
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				cp := changelog.Checkpoint{{Topic: "standby-counts-changelog", Partition: p}: 1_000_000}
				if err := changelog.WriteCheckpoint(filepath.Join(dir, ".checkpoint"), cp); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	b := newApp(t, top, addrs, "standby", eddy.NumStandbyReplicas(1), eddy.MetricsRegistry(regB), eddy.StateDir(dirB))
	errA, errB := make(chan error, 1), make(chan error, 1)
	go func() { errA <- a.Run(ctx) }()
	go func() { errB <- b.Run(ctx) }()

	got := map[string]int64{}
	consumer, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics("counts"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	readCounts(t, ctx, consumer, got, want)

	// Wait until the two instances split the 8 tasks and B's standbys
	// (of the 4 stateful tasks, those A runs) have replayed everything.
	for {
		runningA, _ := gauge(t, regA, "eddy_tasks", map[string]string{"state": "running"})
		runningB, _ := gauge(t, regB, "eddy_tasks", map[string]string{"state": "running"})
		standbysB, _ := gauge(t, regB, "eddy_tasks", map[string]string{"state": "standby"})
		lagB, lagSeries := gauge(t, regB, "eddy_standby_lag_records", nil)
		if runningA+runningB == 8 && runningA > 0 && runningB > 0 && standbysB > 0 && lagSeries == int(standbysB) && lagB == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("no steady state: running %v+%v, B standbys %v, B standby lag %v over %d series", runningA, runningB, standbysB, lagB, lagSeries)
		}
		time.Sleep(50 * time.Millisecond)
	}
	restoredBefore, _ := gauge(t, regB, "eddy_restored_records_total", nil)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errA; err != nil {
		t.Fatal(err)
	}
	for {
		running, _ := gauge(t, regB, "eddy_tasks", map[string]string{"state": "running"})
		if running == 8 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("B runs %v tasks after A left, want 8", running)
		}
		time.Sleep(50 * time.Millisecond)
	}
	restoredAfter, _ := gauge(t, regB, "eddy_restored_records_total", nil)
	if restored := restoredAfter - restoredBefore; restored != 0 {
		t.Errorf("B restored %v records taking over from caught-up standbys, want 0", restored)
	}
	produce(500, 800)
	readCounts(t, ctx, consumer, got, want)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errB; err != nil {
		t.Fatal(err)
	}
}
