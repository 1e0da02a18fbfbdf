package topology_test

import (
	"fmt"
	"maps"
	"math/rand/v2"
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

// stringInput is one input record with a string value.
type stringInput struct {
	key string
	v   string
	ts  int64
}

// runSlidingConcat runs the sliding-windowed aggregation of Kafka
// Streams' KStreamSlidingWindowAggregateTest (MockInitializer.STRING_INIT,
// MockAggregator.TOSTRING_ADDER: "0", then "+v" per record) over in, one
// second of wall-clock time apart, and returns its output as
// "key@start/end=value@timestamp".
func runSlidingConcat(t *testing.T, w window.SlidingWindows, emitFinal bool, in []stringInput) (*eddytest.Driver, []string) {
	t.Helper()
	b := topology.NewBuilder()
	sw := topology.SlidingWindowedBy(topology.Source(b, "in", serde.String(), serde.String()).GroupByKey(), w)
	if emitFinal {
		sw = sw.EmitOnWindowClose()
	}
	topology.SlidingAggregate(sw, func() string { return "0" }, func(_ string, v, a string) string { return a + "+" + v }, serde.String(), topology.StoreName("sliding")).
		ToStream().To("out")
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := eddytest.New(top)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	input := eddytest.NewInputTopic(d, "in", serde.String(), serde.String())
	for _, r := range in {
		if err := d.AdvanceWallClock(time.Second); err != nil {
			t.Fatal(err)
		}
		if err := input.PipeAt(r.key, r.v, time.UnixMilli(r.ts)); err != nil {
			t.Fatal(err)
		}
	}
	keys := must(window.TimeWindowedSerde(serde.String(), w.TimeDifference()))
	recs, err := eddytest.NewOutputTopic(d, "out", keys, serde.String()).ReadRecords()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		out = append(out, fmt.Sprintf("%s@%d/%d=%s@%d", r.Key.Key, r.Key.Window.StartMs(), r.Key.Window.EndMs(), r.Value, r.Timestamp.UnixMilli()))
	}
	return d, out
}

// byStart groups "key@start/end=value@ts" outputs by window start, as
// sets of "value@ts": how KStreamSlidingWindowAggregateTest compares.
func byStart(out []string) map[int64][]string {
	sets := map[int64]map[string]bool{}
	for _, o := range out {
		var key, rest string
		var start, end int64
		if _, err := fmt.Sscanf(o, "%1s@%d/%d=%s", &key, &start, &end, &rest); err != nil {
			panic(fmt.Sprintf("%q: %v", o, err))
		}
		if sets[start] == nil {
			sets[start] = map[string]bool{}
		}
		sets[start][rest] = true
	}
	m := map[int64][]string{}
	for s, set := range sets {
		m[s] = slices.Sorted(maps.Keys(set))
	}
	return m
}

// TestSlidingWindowedAggregationsAsKafkaStreams: the inputs and expected
// outputs of KStreamSlidingWindowAggregateTest, compared as it does (per
// window start, the set of values and timestamps forwarded), with each
// update and with emit-on-window-close.
func TestSlidingWindowedAggregationsAsKafkaStreams(t *testing.T) {
	for _, tc := range []struct {
		name      string
		windows   window.SlidingWindows
		in        []stringInput
		want      map[int64][]string
		wantFinal map[int64][]string
		late      int64
	}{
		{
			name:    "testAggregateSmallInput",
			windows: must(window.SlidingWindowsOfTimeDifferenceAndGrace(10*time.Millisecond, 5*time.Millisecond)),
			in:      []stringInput{{"A", "1", 10}, {"A", "2", 10}, {"A", "3", 14}, {"A", "4", 15}, {"A", "5", 20}, {"A", "6", 22}, {"A", "7", 30}},
			want: map[int64][]string{
				0: {"0+1+2@10", "0+1@10"}, 4: {"0+1+2+3@14"}, 5: {"0+1+2+3+4@15"}, 10: {"0+1+2+3+4+5@20"},
				11: {"0+3+4+5@20", "0+3+4@15", "0+3@14"}, 12: {"0+3+4+5+6@22"},
				15: {"0+4+5+6@22", "0+4+5@20", "0+4@15"}, 16: {"0+5+6@22", "0+5@20"}, 20: {"0+5+6+7@30"},
				21: {"0+6+7@30", "0+6@22"}, 23: {"0+7@30"},
			},
			wantFinal: map[int64][]string{
				0: {"0+1+2@10"}, 4: {"0+1+2+3@14"}, 5: {"0+1+2+3+4@15"}, 10: {"0+1+2+3+4+5@20"},
				11: {"0+3+4+5@20"}, 12: {"0+3+4+5+6@22"},
			},
		},
		{
			name:    "testEarlyRecordsSmallInput",
			windows: must(window.SlidingWindowsOfTimeDifferenceAndGrace(50*time.Millisecond, 0)),
			in:      []stringInput{{"A", "1", 0}, {"A", "2", 5}, {"A", "3", 6}, {"A", "4", 3}, {"A", "5", 13}, {"A", "6", 10}, {"A", "7", 70}},
			want: map[int64][]string{
				0:  {"0+1+2+3+4+5+6@13", "0+1+2+3+4+5@13", "0+1+2+3+4@6", "0+1+2+3@6", "0+1+2@5", "0+1@0"},
				1:  {"0+2+3+4+5+6@13", "0+2+3+4+5@13", "0+2+3+4@6", "0+2+3@6", "0+2@5"},
				4:  {"0+2+3+5+6@13", "0+2+3+5@13", "0+2+3@6"},
				6:  {"0+3+5+6@13", "0+3+5@13", "0+3@6"},
				7:  {"0+5+6@13", "0+5@13"},
				11: {"0+5@13"},
				20: {"0+7@70"},
			},
			wantFinal: map[int64][]string{
				0: {"0+1+2+3+4+5+6@13"}, 1: {"0+2+3+4+5+6@13"}, 4: {"0+2+3+5+6@13"},
				6: {"0+3+5+6@13"}, 7: {"0+5+6@13"}, 11: {"0+5@13"},
			},
		},
		{
			name:    "testNoGracePeriodSmallInput",
			windows: must(window.SlidingWindowsOfTimeDifferenceWithNoGrace(50 * time.Millisecond)),
			in:      []stringInput{{"A", "1", 100}, {"A", "2", 105}, {"A", "3", 106}, {"A", "4", 103}, {"A", "5", 113}, {"A", "6", 110}},
			want: map[int64][]string{
				50: {"0+1@100"}, 55: {"0+1+2@105"}, 56: {"0+1+2+3+4@106", "0+1+2+3@106"},
				63:  {"0+1+2+3+4+5+6@113", "0+1+2+3+4+5@113"},
				101: {"0+2+3+4+5+6@113", "0+2+3+4+5@113", "0+2+3+4@106", "0+2+3@106", "0+2@105"},
				104: {"0+2+3+5+6@113", "0+2+3+5@113", "0+2+3@106"},
				106: {"0+3+5+6@113", "0+3+5@113", "0+3@106"},
				107: {"0+5+6@113", "0+5@113"},
				111: {"0+5@113"},
			},
			wantFinal: map[int64][]string{50: {"0+1@100"}, 55: {"0+1+2@105"}, 56: {"0+1+2+3+4@106"}},
			// With no grace, 103 cannot update [55,105] nor create its
			// left window [53,103], and 110 its left window [60,110]:
			// each is a late drop (a dropped-records count in Kafka
			// Streams too, which this test of theirs does not check).
			late: 3,
		},
		{
			// shouldLogAndMeterWhenSkippingExpiredWindowByGrace: a left
			// window that has closed is dropped, once per record; so is a
			// record whose own window [t, t+diff] has closed.
			name:    "late windows",
			windows: must(window.SlidingWindowsOfTimeDifferenceAndGrace(10*time.Millisecond, 90*time.Millisecond)),
			in: []stringInput{
				{"k", "100", 200}, {"k", "0", 100}, {"k", "1", 101}, {"k", "2", 102}, {"k", "3", 103},
				{"k", "4", 104}, {"k", "5", 105}, {"k", "6", 15}, {"k", "101", 300}, {"k", "102", 400},
			},
			want:      map[int64][]string{190: {"0+100@200"}, 290: {"0+101@300"}, 390: {"0+102@400"}},
			wantFinal: map[int64][]string{190: {"0+100@200"}, 290: {"0+101@300"}},
			late:      7,
		},
	} {
		for _, emitFinal := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/emitFinal=%v", tc.name, emitFinal), func(t *testing.T) {
				d, out := runSlidingConcat(t, tc.windows, emitFinal, tc.in)
				want := tc.want
				if emitFinal {
					want = tc.wantFinal
				}
				if got := byStart(out); !maps.EqualFunc(got, want, slices.Equal) {
					t.Errorf("output by window start:\n got %v\nwant %v\n(output %q)", got, want, out)
				}
				if got := d.DroppedRecords("late"); got != tc.late {
					t.Errorf("late records dropped: %d, want %d", got, tc.late)
				}
			})
		}
	}
}

// TestSlidingWindowedCountOrder: the exact updates and their order, as
// Kafka Streams' reverse-iterator path forwards them: the windows a record
// updates, newest first, then the previous record's right window, the
// record's left window and its right window.
func TestSlidingWindowedCountOrder(t *testing.T) {
	w := must(window.SlidingWindowsOfTimeDifferenceAndGrace(10*time.Second, 100*time.Second))
	b := topology.NewBuilder()
	topology.SlidingWindowedBy(topology.Source(b, "in", serde.String(), serde.Int64()).GroupByKey(), w).
		Count(topology.StoreName("counts")).ToStream().To("out")
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := eddytest.New(top)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	pipeTimed(t, d, []timed{{key: "A", ts: 10_000}, {key: "A", ts: 15_000}, {key: "A", ts: 12_000}})
	want := []string{
		"A@0/10000=1@10000",
		// 15000: 10000's right window, then 15000's left window.
		"A@10001/20001=1@15000", "A@5000/15000=2@15000",
		// 12000, out of order: the two windows that hold it, newest
		// first, then its left window and its right window (which holds
		// 15000 only).
		"A@10001/20001=2@15000", "A@5000/15000=3@15000", "A@2000/12000=2@12000", "A@12001/22001=1@15000",
	}
	if got := windowedOutput(t, d, "out", w.TimeDifference()); !slices.Equal(got, want) {
		t.Errorf("output:\n got %q\nwant %q", got, want)
	}
}

// TestSlidingWindowedAggregationDropsNulls: as
// KStreamSlidingWindowAggregate, records with a null key or a null value
// are dropped and counted.
func TestSlidingWindowedAggregationDropsNulls(t *testing.T) {
	w := must(window.SlidingWindowsOfTimeDifferenceWithNoGrace(time.Minute))
	b := topology.NewBuilder()
	topology.SlidingWindowedBy(topology.Source(b, "in", serde.String(), serde.Int64()).GroupByKey(), w).Count().ToStream().To("out")
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := eddytest.New(top)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.PipeRaw("in", nil, []byte{0, 0, 0, 0, 0, 0, 0, 1}, time.UnixMilli(70_000)); err != nil {
		t.Fatal(err)
	}
	if err := d.PipeRaw("in", []byte("k"), nil, time.UnixMilli(70_000)); err != nil {
		t.Fatal(err)
	}
	if err := d.PipeRaw("in", []byte("k"), []byte{0, 0, 0, 0, 0, 0, 0, 1}, time.UnixMilli(70_000)); err != nil {
		t.Fatal(err)
	}
	if got := windowedOutput(t, d, "out", time.Minute); !slices.Equal(got, []string{"k@10000/70000=1@70000"}) {
		t.Fatalf("output %q", got)
	}
	if d.DroppedRecords("null_key") != 1 || d.DroppedRecords("null_value") != 1 {
		t.Fatalf("dropped null keys %d, null values %d; want 1 and 1", d.DroppedRecords("null_key"), d.DroppedRecords("null_value"))
	}
}

// The window store of a sliding-windowed aggregation has the time
// difference as its window size and keeps windows for twice the
// difference plus grace, as Kafka Streams' SlidingWindowStoreMaterializer;
// a time difference of 0, which Kafka Streams accepts and then fails on,
// and a shorter retention are refused.
func TestSlidingStoreChangelog(t *testing.T) {
	w := must(window.SlidingWindowsOfTimeDifferenceAndGrace(time.Minute, 30*time.Second))
	b := topology.NewBuilder()
	topology.SlidingWindowedBy(topology.Source(b, "in", serde.String(), serde.Int64()).GroupByKey(), w).
		Count(topology.StoreName("w")).ToStream().To("out")
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	ss := task.SpecsOf(top, "app")[0].Stores[0]
	if want := 150*time.Second + 24*time.Hour; ss.Kind != state.KindWindow || ss.Changelog.Retention != want {
		t.Errorf("store spec: kind %v, changelog retention %v; want a window store logged with retention %v", ss.Kind, ss.Changelog.Retention, want)
	}
	for name, sw := range map[string]window.SlidingWindows{
		"a retention shorter than 2*diff+grace": w,
		"a time difference of 0":                must(window.SlidingWindowsOfTimeDifferenceWithNoGrace(0)),
	} {
		b := topology.NewBuilder()
		topology.SlidingWindowedBy(topology.Source(b, "in", serde.String(), serde.Int64()).GroupByKey(), sw).
			Count(topology.WithRetention(2 * time.Minute)).ToStream().To("out")
		if _, err := b.Build(); err == nil {
			t.Errorf("%s was accepted", name)
		}
	}
}

// TestSlidingWindowedRandomOrder: as Kafka Streams'
// testAggregateRandomInput, records of one key in a random order end in
// the same windows with the same aggregates, checked against windows
// computed from their definition: a window ends at each record (starting
// at 0 for records earlier than the difference) and starts just after
// each record that another follows within the difference; it holds the
// records in [start, start+diff] and carries the largest timestamp.
func TestSlidingWindowedRandomOrder(t *testing.T) {
	const diff = 10
	w := must(window.SlidingWindowsOfTimeDifferenceAndGrace(diff*time.Millisecond, 100*time.Millisecond))
	var in []stringInput
	for i, ts := range []int64{10, 15, 16, 18, 30, 40, 55, 56, 58, 58, 62, 63, 63, 63, 76, 77, 80, 2, 3, 5, 8} {
		in = append(in, stringInput{"A", string(rune('A' + i)), ts})
	}
	want := map[int64]string{}
	for _, r := range in {
		starts := []int64{max(0, r.ts-diff)}
		for _, o := range in {
			if o.ts > r.ts && o.ts <= r.ts+1+diff {
				starts = append(starts, r.ts+1)
			}
		}
		for _, s := range starts {
			var vs []string
			var maxTs int64
			for _, o := range in {
				if o.ts >= s && o.ts <= s+diff {
					vs, maxTs = append(vs, o.v), max(maxTs, o.ts)
				}
			}
			slices.Sort(vs)
			want[s] = fmt.Sprintf("%s@%d", strings.Join(vs, ""), maxTs)
		}
	}
	for seed := range uint64(20) {
		shuffled := slices.Clone(in)
		rand.New(rand.NewPCG(seed, seed)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		b := topology.NewBuilder()
		sw := topology.SlidingWindowedBy(topology.Source(b, "in", serde.String(), serde.String()).GroupByKey(), w)
		topology.SlidingAggregate(sw, func() string { return "" }, func(_ string, v, a string) string {
			s := strings.Split(a+v, "")
			slices.Sort(s)
			return strings.Join(s, "")
		}, serde.String()).ToStream().To("out")
		top, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		d, err := eddytest.New(top)
		if err != nil {
			t.Fatal(err)
		}
		input := eddytest.NewInputTopic(d, "in", serde.String(), serde.String())
		for _, r := range shuffled {
			if err := input.PipeAt(r.key, r.v, time.UnixMilli(r.ts)); err != nil {
				t.Fatal(err)
			}
		}
		recs, err := eddytest.NewOutputTopic(d, "out", must(window.TimeWindowedSerde(serde.String(), w.TimeDifference())), serde.String()).ReadRecords()
		if err != nil {
			t.Fatal(err)
		}
		d.Close()
		got := map[int64]string{}
		for _, r := range recs {
			got[r.Key.Window.StartMs()] = fmt.Sprintf("%s@%d", r.Value, r.Timestamp.UnixMilli())
		}
		if !maps.Equal(got, want) {
			t.Fatalf("seed %d: last value per window start:\n got %v\nwant %v", seed, got, want)
		}
	}
}

// TestSlidingEmitOnWindowClose: each window comes out once, after it
// closed, with its aggregate's timestamp; closed windows are looked for at
// most once a second of wall-clock time, unless the record's writes would
// expire one not yet emitted.
func TestSlidingEmitOnWindowClose(t *testing.T) {
	w := must(window.SlidingWindowsOfTimeDifferenceWithNoGrace(10 * time.Second))
	b := topology.NewBuilder()
	topology.SlidingWindowedBy(topology.Source(b, "in", serde.String(), serde.Int64()).GroupByKey(), w).EmitOnWindowClose().
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
	sec := 2 * time.Second
	step := func(in []timed, want []string) {
		t.Helper()
		pipeTimed(t, d, in)
		if got := windowedOutput(t, d, "out", w.TimeDifference()); !slices.Equal(got, want) {
			t.Fatalf("after %v:\n got %q\nwant %q", in, got, want)
		}
	}
	step([]timed{{key: "A", ts: 10_000, wall: sec}}, nil)
	// [0,10000] closes when stream time passes 10000.
	step([]timed{{key: "A", ts: 25_000, wall: sec}}, []string{"A@0/10000=1@10000"})
	// Within the same second of wall-clock time, nothing is emitted ...
	step([]timed{{key: "A", ts: 26_000}}, nil)
	// ... until a second has passed;
	step([]timed{{key: "A", ts: 26_001, wall: sec}}, []string{"A@15000/25000=1@25000", "A@16000/26000=2@26000"})
	// a stream time that jumps far within the second forces a look, for
	// the store would expire these windows unemitted.
	step([]timed{{key: "A", ts: 60_000}}, []string{"A@16001/26001=3@26001", "A@25001/35001=2@26001", "A@26001/36001=1@26001"})
}

// A stream keyed by time window joins a sliding-window table on the
// window's start, as through Kafka Streams' window value getter.
func TestJoinSlidingTable(t *testing.T) {
	w := must(window.SlidingWindowsOfTimeDifferenceAndGrace(10*time.Millisecond, time.Second))
	b := topology.NewBuilder()
	table := topology.SlidingWindowedBy(topology.Source(b, "in", serde.String(), serde.Int64()).GroupByKey(), w).
		Count(topology.StoreName("w"))
	keys := must(window.TimeWindowedSerde(serde.String(), w.TimeDifference()))
	lookups := topology.Source(b, "lookups", keys, serde.Int64())
	topology.JoinTable(lookups, table, func(_ window.Windowed[string], _, n int64) int64 { return n }).To("joined")
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := eddytest.New(top)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	pipeTimed(t, d, []timed{{key: "A", ts: 20}, {key: "A", ts: 25}})
	in := eddytest.NewInputTopic(d, "lookups", keys, serde.Int64())
	for _, start := range []int64{15, 21, 16} {
		if err := in.PipeAt(window.Windowed[string]{Key: "A", Window: must(window.NewTimeWindowOfSize(start, w.TimeDifference()))}, 0, time.UnixMilli(30)); err != nil {
			t.Fatal(err)
		}
	}
	// [15,25] holds both records, [21,31] the second; none starts at 16.
	if got := windowedOutput(t, d, "joined", w.TimeDifference()); !slices.Equal(got, []string{"A@15/25=2@30", "A@21/31=1@30"}) {
		t.Errorf("joined %q", got)
	}
}
