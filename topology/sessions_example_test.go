package topology_test

import (
	"fmt"
	"time"

	"github.com/eddystream/eddy/eddytest"
	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/topology"
	"github.com/eddystream/eddy/window"
)

// Clicks per user session, sessions closed by 5 minutes of inactivity,
// with 10 minutes of grace for clicks out of order: a click that bridges
// two sessions merges them, and the merged-away sessions come out as
// tombstones.
func ExampleSessionWindowedBy() {
	gap, _ := window.SessionWindowsOfInactivityGapAndGrace(5*time.Minute, 10*time.Minute)
	b := topology.NewBuilder()
	clicks := topology.Source(b, "clicks", serde.String(), serde.String())
	topology.SessionWindowedBy(clicks.GroupByKey(), gap).Count().ToStream().To("sessions")
	top, err := b.Build()
	if err != nil {
		panic(err)
	}
	d, err := eddytest.New(top)
	if err != nil {
		panic(err)
	}
	defer d.Close()
	in := eddytest.NewInputTopic(d, "clicks", serde.String(), serde.String())
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, at := range []time.Duration{0, 2 * time.Minute, 10 * time.Minute, 6 * time.Minute} {
		if err := in.PipeAt("ada", "/", t0.Add(at)); err != nil {
			panic(err)
		}
	}
	out, err := eddytest.NewOutputTopic(d, "sessions", window.SessionWindowedSerde(serde.String()), serde.Int64()).ReadRecords()
	if err != nil {
		panic(err)
	}
	for _, r := range out {
		w := r.Key.Window
		if r.NullValue {
			fmt.Printf("%s %s-%s removed\n", r.Key.Key, w.Start().Format("15:04"), w.End().Format("15:04"))
			continue
		}
		fmt.Printf("%s %s-%s: %d clicks\n", r.Key.Key, w.Start().Format("15:04"), w.End().Format("15:04"), r.Value)
	}
	// Output:
	// ada 12:00-12:00: 1 clicks
	// ada 12:00-12:00 removed
	// ada 12:00-12:02: 2 clicks
	// ada 12:10-12:10: 1 clicks
	// ada 12:00-12:02 removed
	// ada 12:10-12:10 removed
	// ada 12:00-12:10: 4 clicks
}

// The sum of each key's readings within any 10 seconds: a window ends at
// each reading, and starts just after each reading that another follows
// within 10 seconds, so every distinct set of readings at most 10 seconds
// apart gets its sum.
func ExampleSlidingWindowedBy() {
	diff, _ := window.SlidingWindowsOfTimeDifferenceAndGrace(10*time.Second, time.Minute)
	b := topology.NewBuilder()
	readings := topology.Source(b, "readings", serde.String(), serde.Int64())
	topology.SlidingWindowedBy(readings.GroupByKey(), diff).
		Reduce(func(a, v int64) int64 { return a + v }).ToStream().To("sums")
	top, err := b.Build()
	if err != nil {
		panic(err)
	}
	d, err := eddytest.New(top)
	if err != nil {
		panic(err)
	}
	defer d.Close()
	in := eddytest.NewInputTopic(d, "readings", serde.String(), serde.Int64())
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, r := range []struct {
		at time.Duration
		v  int64
	}{{20 * time.Second, 1}, {25 * time.Second, 2}, {40 * time.Second, 4}} {
		if err := in.PipeAt("probe", r.v, t0.Add(r.at)); err != nil {
			panic(err)
		}
	}
	keys, _ := window.TimeWindowedSerde(serde.String(), diff.TimeDifference())
	out, err := eddytest.NewOutputTopic(d, "sums", keys, serde.Int64()).ReadRecords()
	if err != nil {
		panic(err)
	}
	for _, r := range out {
		w := r.Key.Window
		fmt.Printf("[%s, %s]: %d\n", w.Start().Format("04:05.000"), w.End().Format("04:05.000"), r.Value)
	}
	// Output:
	// [00:10.000, 00:20.000]: 1
	// [00:20.001, 00:30.001]: 2
	// [00:15.000, 00:25.000]: 3
	// [00:30.000, 00:40.000]: 4
}
