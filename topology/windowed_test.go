package topology_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eddystream/eddy/eddytest"
	"github.com/eddystream/eddy/internal/task"
	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/state"
	"github.com/eddystream/eddy/topology"
	"github.com/eddystream/eddy/window"
)

// timed is one input record: key, value and timestamp (Unix ms); wall
// advances the test driver's wall clock before it is piped.
type timed struct {
	key  string
	v    int64
	ts   int64
	wall time.Duration
}

// windowedOutput reads a windowed aggregation's output as
// "key@start/end=value@timestamp".
func windowedOutput(t *testing.T, d *eddytest.Driver, topic string, size time.Duration) []string {
	t.Helper()
	keys, err := window.TimeWindowedSerde(serde.String(), size)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := eddytest.NewOutputTopic(d, topic, keys, serde.Int64()).ReadRecords()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		out = append(out, fmt.Sprintf("%s@%d/%d=%d@%d", r.Key.Key, r.Key.Window.StartMs(), r.Key.Window.EndMs(), r.Value, r.Timestamp.UnixMilli()))
	}
	return out
}

func pipeTimed(t *testing.T, d *eddytest.Driver, in []timed) {
	t.Helper()
	input := eddytest.NewInputTopic(d, "in", serde.String(), serde.Int64())
	for _, r := range in {
		if r.wall > 0 {
			if err := d.AdvanceWallClock(r.wall); err != nil {
				t.Fatal(err)
			}
		}
		if err := input.PipeAt(r.key, r.v, time.UnixMilli(r.ts)); err != nil {
			t.Fatal(err)
		}
	}
}

// must returns v, or panics with err: for window definitions that are
// valid by construction.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestTimeWindowedAggregations: cases from Kafka Streams' documented
// behaviour of KStreamWindowAggregate. Each update is forwarded with the
// largest timestamp of the window's records; a record whose windows have
// all closed (end + grace at or before the stream time) is dropped and
// counted once per closed window.
func TestTimeWindowedAggregations(t *testing.T) {
	tumbling := must(window.TimeWindowsOfSizeWithNoGrace(10 * time.Second))
	hopping := must(must(window.TimeWindowsOfSizeAndGrace(10*time.Second, 5*time.Second)).AdvanceBy(5 * time.Second))
	for _, tc := range []struct {
		name    string
		windows window.TimeWindows
		agg     func(ws topology.TimeWindowedStream[string, int64]) topology.Table[window.Windowed[string], int64]
		in      []timed
		want    []string
		late    int64
	}{
		{
			name: "tumbling count", windows: tumbling,
			agg: func(ws topology.TimeWindowedStream[string, int64]) topology.Table[window.Windowed[string], int64] {
				return ws.Count(topology.StoreName("counts"))
			},
			in: []timed{{key: "A", ts: 0}, {key: "A", ts: 5000}, {key: "B", ts: 7000}, {key: "A", ts: 10_000}, {key: "A", ts: 3000}, {key: "B", ts: 19_999}, {key: "A", ts: 2000}, {key: "A", ts: 20_000}},
			want: []string{
				"A@0/10000=1@0", "A@0/10000=2@5000", "B@0/10000=1@7000", "A@10000/20000=1@10000",
				// A@3000 and A@2000 fall in [0,10000), closed at stream time 10000.
				"B@10000/20000=1@19999", "A@20000/30000=1@20000",
			},
			late: 2,
		},
		{
			name: "hopping reduce with grace", windows: hopping,
			agg: func(ws topology.TimeWindowedStream[string, int64]) topology.Table[window.Windowed[string], int64] {
				return ws.Reduce(func(a, v int64) int64 { return a + v }, topology.StoreName("sums"))
			},
			in: []timed{{key: "A", v: 1, ts: 7000}, {key: "A", v: 2, ts: 16_000}, {key: "A", v: 4, ts: 9000}, {key: "A", v: 8, ts: 4000}},
			want: []string{
				"A@0/10000=1@7000", "A@5000/15000=1@7000",
				"A@10000/20000=2@16000", "A@15000/25000=2@16000",
				// Stream time 16000, grace 5 s: [0,10000) closed at 15000;
				// [5000,15000) is open until 20000 and keeps its later
				// timestamp.
				"A@5000/15000=5@9000",
				// 4000 falls in [0,10000) only (no window starts before 0).
			},
			late: 2,
		},
		{
			name: "aggregate with a null value passed on", windows: tumbling,
			agg: func(ws topology.TimeWindowedStream[string, int64]) topology.Table[window.Windowed[string], int64] {
				return topology.WindowedAggregate(ws, func() int64 { return 100 }, func(_ string, v, a int64) int64 { return a + v }, serde.Int64(), topology.StoreName("aggs"))
			},
			in:   []timed{{key: "A", v: 1, ts: 1000}, {key: "A", v: 2, ts: 500}, {key: "B", v: 3, ts: 11_000}},
			want: []string{"A@0/10000=101@1000", "A@0/10000=103@1000", "B@10000/20000=103@11000"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := topology.NewBuilder()
			s := topology.Source(b, "in", serde.String(), serde.Int64())
			tc.agg(topology.WindowedBy(s.GroupByKey(), tc.windows)).ToStream().To("out")
			top, err := b.Build()
			if err != nil {
				t.Fatal(err)
			}
			d, err := eddytest.New(top)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			pipeTimed(t, d, tc.in)
			if got := windowedOutput(t, d, "out", tc.windows.Size()); !slices.Equal(got, tc.want) {
				t.Errorf("output:\n got %q\nwant %q", got, tc.want)
			}
			if got := d.DroppedRecords("late"); got != tc.late {
				t.Errorf("late records dropped: %d, want %d", got, tc.late)
			}
		})
	}
}

// TestWindowedAggregationDropsNullKeysOnly: a windowed aggregation drops
// records with a null key (counted) and aggregates a null value as the
// zero value, as Kafka Streams' KStreamWindowAggregate does.
func TestWindowedAggregationDropsNullKeysOnly(t *testing.T) {
	b := topology.NewBuilder()
	s := topology.Source(b, "in", serde.String(), serde.Int64())
	topology.WindowedBy(s.GroupByKey(), must(window.TimeWindowsOfSizeWithNoGrace(time.Minute))).Count().ToStream().To("out")
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := eddytest.New(top)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.PipeRaw("in", nil, []byte{0, 0, 0, 0, 0, 0, 0, 1}, time.UnixMilli(1)); err != nil {
		t.Fatal(err)
	}
	if err := d.PipeRaw("in", []byte("k"), nil, time.UnixMilli(2)); err != nil {
		t.Fatal(err)
	}
	if got := windowedOutput(t, d, "out", time.Minute); !slices.Equal(got, []string{"k@0/60000=1@2"}) {
		t.Fatalf("output %q", got)
	}
	if d.DroppedRecords("null_key") != 1 || d.DroppedRecords("null_value") != 0 {
		t.Fatalf("dropped null keys %d, null values %d; want 1 and 0", d.DroppedRecords("null_key"), d.DroppedRecords("null_value"))
	}
}

// TestEmitOnWindowClose: each window's result comes out once, after the
// window closed, with the aggregate's timestamp; closed windows are looked
// for at most once a second of wall-clock time, as Kafka Streams does.
func TestEmitOnWindowClose(t *testing.T) {
	size := 10 * time.Second
	b := topology.NewBuilder()
	s := topology.Source(b, "in", serde.String(), serde.Int64())
	ws := topology.WindowedBy(s.GroupByKey(), must(window.TimeWindowsOfSizeWithNoGrace(size))).EmitOnWindowClose()
	ws.Count(topology.StoreName("final")).ToStream().To("out")
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := eddytest.New(top)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	sec := 2 * time.Second
	step := func(in []timed, want []string) {
		t.Helper()
		pipeTimed(t, d, in)
		if got := windowedOutput(t, d, "out", size); !slices.Equal(got, want) {
			t.Fatalf("after %v:\n got %q\nwant %q", in, got, want)
		}
	}
	step([]timed{{key: "A", ts: 0, wall: sec}, {key: "A", ts: 5000, wall: sec}, {key: "B", ts: 7000, wall: sec}}, nil)
	// Stream time 10000 closes [0,10000).
	step([]timed{{key: "A", ts: 10_000, wall: sec}}, []string{"A@0/10000=2@5000", "B@0/10000=1@7000"})
	step([]timed{{key: "A", ts: 12_000, wall: sec}}, nil)
	step([]timed{{key: "A", ts: 25_000, wall: sec}}, []string{"A@10000/20000=2@12000"})
	// Within the same second of wall-clock time, nothing is emitted ...
	step([]timed{{key: "A", ts: 30_000}, {key: "A", ts: 31_000}}, nil)
	// ... until a second has passed,
	step([]timed{{key: "A", ts: 40_001, wall: sec}}, []string{"A@20000/30000=1@25000", "A@30000/40000=2@31000"})
	// or unless stream time jumps so far that windows not yet emitted
	// would expire: Kafka Streams would lose [40000,50000) here.
	step([]timed{{key: "A", ts: 45_000}, {key: "A", ts: 70_000}}, []string{"A@40000/50000=2@45000"})
}

// The window store of a windowed aggregation keeps windows for their size
// plus grace (or WithRetention's), and its changelog is compacted and
// deleted a day after that, as in Kafka Streams.
func TestWindowedStoreChangelog(t *testing.T) {
	w := must(window.TimeWindowsOfSizeAndGrace(time.Minute, 30*time.Second))
	for _, tc := range []struct {
		opts      []topology.Option
		retention time.Duration
	}{
		{nil, 90*time.Second + 24*time.Hour},
		{[]topology.Option{topology.WithRetention(time.Hour)}, time.Hour + 24*time.Hour},
	} {
		b := topology.NewBuilder()
		s := topology.Source(b, "in", serde.String(), serde.Int64())
		topology.WindowedBy(s.GroupByKey(), w).Count(append(tc.opts, topology.StoreName("w"))...).ToStream().To("out")
		top, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		specs := task.SpecsOf(top, "app")
		ss := specs[0].Stores[0]
		if ss.Kind != state.KindWindow || ss.Changelog.Retention != tc.retention || ss.ChangelogTopic != "app-w-changelog" {
			t.Errorf("store spec: kind %v, changelog %q retention %v; want a window store logged with retention %v", ss.Kind, ss.ChangelogTopic, ss.Changelog.Retention, tc.retention)
		}
		configs, err := ss.Changelog.TopicConfigs(ss.Kind)
		if err != nil || configs["cleanup.policy"] != "compact,delete" {
			t.Errorf("changelog configs %v (%v), want compact,delete", configs, err)
		}
	}
	b := topology.NewBuilder()
	s := topology.Source(b, "in", serde.String(), serde.Int64())
	topology.WindowedBy(s.GroupByKey(), w).Count(topology.WithRetention(time.Minute)).ToStream().To("out")
	if _, err := b.Build(); err == nil {
		t.Error("a retention shorter than size plus grace was accepted")
	}
}

// Describe shows a windowed aggregation's windows and emit strategy, and
// its store's kind and changelog.
func TestDescribeWindows(t *testing.T) {
	b := topology.NewBuilder()
	s := topology.Source(b, "in", serde.String(), serde.Int64())
	w := must(window.TimeWindowsOfSizeAndGrace(time.Minute, 30*time.Second))
	topology.WindowedBy(s.GroupByKey(), w).EmitOnWindowClose().Count(topology.StoreName("w"), topology.Named("per-minute"), topology.InMemory()).ToStream().To("out")
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	desc := top.Describe()
	for _, want := range []string{
		"Processor: per-minute (stores: [w]; windows: TimeWindows{size=1m0s, advance=1m0s, grace=30s}, emit on window close)",
		"w: window store, memory, changelog <application-id>-w-changelog (compact,delete, retention.ms 86490001)",
	} {
		if !strings.Contains(desc, want) {
			t.Errorf("Describe lacks %q:\n%s", want, desc)
		}
	}
}

// Closed windows come out by start, then key, as Kafka Streams'
// time-ordered emit-final store returns them, whatever segments and keys
// they are in.
func TestEmitOnWindowCloseOrder(t *testing.T) {
	size := 10 * time.Second
	b := topology.NewBuilder()
	s := topology.Source(b, "in", serde.String(), serde.Int64())
	topology.WindowedBy(s.GroupByKey(), must(window.TimeWindowsOfSizeWithNoGrace(size))).EmitOnWindowClose().
		Count(topology.StoreName("final")).ToStream().To("out")
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := eddytest.New(top)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	// Keys and starts in different orders: C before A at start 20000.
	pipeTimed(t, d, []timed{{key: "B", ts: 15_000, wall: time.Second}, {key: "C", ts: 21_000}, {key: "A", ts: 25_000}, {key: "A", ts: 40_000, wall: 2 * time.Second}})
	want := []string{"B@10000/20000=1@15000", "A@20000/30000=1@25000", "C@20000/30000=1@21000"}
	if got := windowedOutput(t, d, "out", size); !slices.Equal(got, want) {
		t.Fatalf("emitted\n got %q\nwant %q", got, want)
	}
}
