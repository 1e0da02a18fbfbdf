package topology_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddystream/eddy/eddytest"
	"github.com/eddystream/eddy/internal/task"
	"github.com/eddystream/eddy/processor"
	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/state"
	"github.com/eddystream/eddy/topology"
	"github.com/eddystream/eddy/window"
)

// sessionOutput reads a session-windowed aggregation's output as
// "key@start/end=value@timestamp", with "null" for a tombstone.
func sessionOutput(t *testing.T, d *eddytest.Driver, topic string) []string {
	t.Helper()
	recs, err := eddytest.NewOutputTopic(d, topic, window.SessionWindowedSerde(serde.String()), serde.Int64()).ReadRecords()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		v := fmt.Sprint(r.Value)
		if r.NullValue {
			v = "null"
		}
		out = append(out, fmt.Sprintf("%s@%d/%d=%s@%d", r.Key.Key, r.Key.Window.StartMs(), r.Key.Window.EndMs(), v, r.Timestamp.UnixMilli()))
	}
	return out
}

type sessionAgg func(topology.SessionWindowedStream[string, int64]) topology.Table[window.Windowed[string], int64]

func sessionCount(ss topology.SessionWindowedStream[string, int64]) topology.Table[window.Windowed[string], int64] {
	return ss.Count(topology.StoreName("sessions"))
}

func sessionSum(ss topology.SessionWindowedStream[string, int64]) topology.Table[window.Windowed[string], int64] {
	return ss.Reduce(func(a, v int64) int64 { return a + v }, topology.StoreName("sessions"))
}

// newSessionDriver runs in -> session aggregation -> ToStream -> out.
func newSessionDriver(t *testing.T, w window.SessionWindows, emitFinal bool, agg sessionAgg) *eddytest.Driver {
	t.Helper()
	b := topology.NewBuilder()
	ss := topology.SessionWindowedBy(topology.Source(b, "in", serde.String(), serde.Int64()).GroupByKey(), w)
	if emitFinal {
		ss = ss.EmitOnWindowClose()
	}
	agg(ss).ToStream().To("out")
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := eddytest.New(top)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// TestSessionWindowedAggregations: cases from Kafka Streams'
// KStreamSessionWindowAggregateProcessorTest and the rules of
// KStreamSessionWindowAggregate, re-derived. Every update is forwarded
// with the session's end as its timestamp; a merge first forwards a
// tombstone for each session it removes; a record whose merged session
// ends before stream time minus gap minus grace is dropped as late.
func TestSessionWindowedAggregations(t *testing.T) {
	gap10s := must(window.SessionWindowsOfInactivityGapWithNoGrace(10 * time.Second))
	sec := time.Second
	for _, tc := range []struct {
		name      string
		windows   window.SessionWindows
		emitFinal bool
		agg       sessionAgg
		in        []timed
		want      []string
		late      int64
	}{
		{
			// shouldHandleMultipleSessionsAndMerging, without a cache.
			name: "several keys and merging", windows: gap10s, agg: sessionCount,
			in: []timed{
				{key: "a", ts: 0}, {key: "b", ts: 0}, {key: "c", ts: 0}, {key: "d", ts: 0}, {key: "d", ts: 5000},
				{key: "a", ts: 10_001}, {key: "b", ts: 10_001}, {key: "a", ts: 15_001}, {key: "c", ts: 15_001},
			},
			want: []string{
				"a@0/0=1@0", "b@0/0=1@0", "c@0/0=1@0", "d@0/0=1@0",
				"d@0/0=null@0", "d@0/5000=2@5000",
				// 10001 is more than the gap after a's session [0,0].
				"a@10001/10001=1@10001", "b@10001/10001=1@10001",
				"a@10001/10001=null@10001", "a@10001/15001=2@15001",
				"c@15001/15001=1@15001",
			},
		},
		{
			// The same with emit-on-window-close (KS's ON_WINDOW_CLOSE
			// case, emit interval passed before each record): a session
			// closes once it ends before stream time minus the gap.
			name: "several keys, emit on window close", windows: gap10s, emitFinal: true, agg: sessionCount,
			in: []timed{
				{key: "a", ts: 0, wall: sec}, {key: "b", ts: 0, wall: sec}, {key: "c", ts: 0, wall: sec}, {key: "d", ts: 0, wall: sec}, {key: "d", ts: 5000, wall: sec},
				{key: "a", ts: 10_001, wall: sec}, {key: "b", ts: 10_001, wall: sec}, {key: "a", ts: 15_001, wall: sec}, {key: "c", ts: 15_001, wall: sec},
			},
			want: []string{"a@0/0=1@0", "b@0/0=1@0", "c@0/0=1@0", "d@0/5000=2@5000"},
		},
		{
			// shouldImmediatelyForwardRemovedSessionsWhenMerging.
			name: "a merge forwards the removed session as a tombstone", windows: gap10s, agg: sessionCount,
			in:   []timed{{key: "a", ts: 0}, {key: "a", ts: 5}},
			want: []string{"a@0/0=1@0", "a@0/0=null@0", "a@0/5=2@5"},
		},
		{
			// A record inside a session, not extending it, still replaces
			// it: Kafka Streams removes the session and puts the merged
			// one, which has the same bounds.
			name: "a record inside a session replaces it", windows: gap10s, agg: sessionCount,
			in:   []timed{{key: "a", ts: 0}, {key: "a", ts: 9}, {key: "a", ts: 4}},
			want: []string{"a@0/0=1@0", "a@0/0=null@0", "a@0/9=2@9", "a@0/9=null@9", "a@0/9=3@9"},
		},
		{
			// shouldUpdateSessionIfTheSameTime: no merge, no tombstone.
			name: "a record at a one-record session's time updates it", windows: gap10s, agg: sessionCount,
			in:   []timed{{key: "a", ts: 7}, {key: "a", ts: 7}},
			want: []string{"a@7/7=1@7", "a@7/7=2@7"},
		},
		{
			// A record out of order bridges two sessions: both are
			// removed, in the store's order (by end), and reduced into
			// one, the earlier first.
			name: "out-of-order record merges two sessions", agg: sessionSum,
			windows: must(window.SessionWindowsOfInactivityGapAndGrace(10*time.Second, 30*time.Second)),
			in:      []timed{{key: "A", v: 1, ts: 0}, {key: "A", v: 2, ts: 30_000}, {key: "A", v: 4, ts: 15_000}, {key: "A", v: 8, ts: 22_000}},
			want: []string{
				"A@0/0=1@0", "A@30000/30000=2@30000",
				// 15000 is more than the gap from both.
				"A@15000/15000=4@15000",
				"A@15000/15000=null@15000", "A@30000/30000=null@30000", "A@15000/30000=14@30000",
			},
		},
		{
			// shouldLogAndMeterWhenSkippingLateRecordWithZeroGrace.
			name: "late with no grace", windows: must(window.SessionWindowsOfInactivityGapWithNoGrace(10 * time.Millisecond)), agg: sessionCount,
			in: []timed{{key: "dummy", ts: 0}, {key: "OnTime1", ts: 0}, {key: "dummy", ts: 11}, {key: "Late1", ts: 0}},
			// Stream time 11, gap 10: a session ending at 0 < 1 is closed.
			want: []string{"dummy@0/0=1@0", "OnTime1@0/0=1@0", "dummy@11/11=1@11"},
			late: 1,
		},
		{
			// shouldLogAndMeterWhenSkippingLateRecordWithNonzeroGrace: a
			// session ending exactly at stream time minus gap and grace
			// still accepts records.
			name: "late with grace", windows: must(window.SessionWindowsOfInactivityGapAndGrace(10*time.Millisecond, time.Millisecond)), agg: sessionCount,
			in:   []timed{{key: "dummy", ts: 0}, {key: "OnTime1", ts: 0}, {key: "dummy", ts: 11}, {key: "OnTime2", ts: 0}, {key: "dummy", ts: 12}, {key: "Late1", ts: 0}},
			want: []string{"dummy@0/0=1@0", "OnTime1@0/0=1@0", "dummy@11/11=1@11", "OnTime2@0/0=1@0", "dummy@11/11=null@11", "dummy@11/12=2@12"},
			late: 1,
		},
		{
			// Lateness is judged on the merged session: a record too old
			// for a session of its own joins a session still open. A
			// closed session is out of the store's retention (gap plus
			// grace), so a record cannot merge it back in.
			name: "lateness of the merged session", windows: must(window.SessionWindowsOfInactivityGapWithNoGrace(10 * time.Millisecond)), agg: sessionCount,
			in: []timed{{key: "B", ts: 12}, {key: "A", ts: 25}, {key: "B", ts: 30}, {key: "A", ts: 16}, {key: "C", ts: 0}, {key: "A", ts: 5}, {key: "B", ts: 15}, {key: "B", ts: 21}},
			want: []string{
				"B@12/12=1@12", "A@25/25=1@25",
				// Stream time 30 closes sessions ending before 20.
				"B@30/30=1@30",
				"A@25/25=null@25", "A@16/25=2@25",
				// C@0, A@5 and B@15 are late (B's [12,12] is closed and
				// gone); B@21 joins [30,30].
				"B@30/30=null@30", "B@21/30=2@30",
			},
			late: 3,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newSessionDriver(t, tc.windows, tc.emitFinal, tc.agg)
			pipeTimed(t, d, tc.in)
			if got := sessionOutput(t, d, "out"); !slices.Equal(got, tc.want) {
				t.Errorf("output:\n got %q\nwant %q", got, tc.want)
			}
			if got := d.DroppedRecords("late"); got != tc.late {
				t.Errorf("late records dropped: %d, want %d", got, tc.late)
			}
		})
	}
}

// TestSessionAggregateMerger: SessionAggregate starts each record from
// init(), merges the aggregates of the sessions it joins into it with the
// merger, then folds the record in, as KStreamSessionWindowAggregate does;
// so init counts once per merge.
func TestSessionAggregateMerger(t *testing.T) {
	d := newSessionDriver(t, must(window.SessionWindowsOfInactivityGapWithNoGrace(10*time.Millisecond)), false, func(ss topology.SessionWindowedStream[string, int64]) topology.Table[window.Windowed[string], int64] {
		return topology.SessionAggregate(ss, func() int64 { return 100 },
			func(_ string, v, a int64) int64 { return a + v },
			func(_ string, a, b int64) int64 { return a*1000 + b }, serde.Int64(), topology.StoreName("sessions"))
	})
	pipeTimed(t, d, []timed{{key: "A", v: 1, ts: 0}, {key: "A", v: 2, ts: 30}, {key: "A", v: 3, ts: 20}})
	want := []string{
		"A@0/0=101@0", "A@30/30=102@30",
		// 100 merged with [30,30]'s 102, then 3 folded in ([0,0] is more
		// than the gap away).
		"A@30/30=null@30", "A@20/30=100105@30",
	}
	if got := sessionOutput(t, d, "out"); !slices.Equal(got, want) {
		t.Errorf("output:\n got %q\nwant %q", got, want)
	}
}

// TestSessionAggregationDropsNullKeysOnly: as KStreamSessionWindowAggregate,
// a record with a null key is dropped (counted) and a null value is
// aggregated as the zero value.
func TestSessionAggregationDropsNullKeysOnly(t *testing.T) {
	d := newSessionDriver(t, must(window.SessionWindowsOfInactivityGapWithNoGrace(time.Minute)), false, sessionCount)
	if err := d.PipeRaw("in", nil, []byte{0, 0, 0, 0, 0, 0, 0, 1}, time.UnixMilli(1)); err != nil {
		t.Fatal(err)
	}
	if err := d.PipeRaw("in", []byte("k"), nil, time.UnixMilli(2)); err != nil {
		t.Fatal(err)
	}
	if got := sessionOutput(t, d, "out"); !slices.Equal(got, []string{"k@2/2=1@2"}) {
		t.Fatalf("output %q", got)
	}
	if d.DroppedRecords("null_key") != 1 || d.DroppedRecords("null_value") != 0 {
		t.Fatalf("dropped null keys %d, null values %d; want 1 and 0", d.DroppedRecords("null_key"), d.DroppedRecords("null_value"))
	}
}

// TestSessionEmitOnWindowClose: each session comes out once, after it
// closed, stamped with its end; closed sessions are looked for at most
// once a second of wall-clock time, unless a write would expire one not
// yet emitted.
func TestSessionEmitOnWindowClose(t *testing.T) {
	d := newSessionDriver(t, must(window.SessionWindowsOfInactivityGapAndGrace(10*time.Second, 5*time.Second)), true, sessionSum)
	sec := 2 * time.Second
	step := func(in []timed, want []string) {
		t.Helper()
		pipeTimed(t, d, in)
		if got := sessionOutput(t, d, "out"); !slices.Equal(got, want) {
			t.Fatalf("after %v:\n got %q\nwant %q", in, got, want)
		}
	}
	step([]timed{{key: "A", v: 1, ts: 0, wall: sec}, {key: "A", v: 2, ts: 5000, wall: sec}, {key: "B", v: 4, ts: 7000, wall: sec}}, nil)
	// A's [0,5000] closes once stream time passes 5000+10000+5000.
	step([]timed{{key: "C", v: 8, ts: 20_000, wall: sec}}, nil)
	step([]timed{{key: "C", v: 16, ts: 20_001, wall: sec}}, []string{"A@0/5000=3@5000"})
	step([]timed{{key: "C", v: 32, ts: 22_001, wall: sec}}, []string{"B@7000/7000=4@7000"})
	// Within the same second of wall-clock time, nothing is emitted ...
	step([]timed{{key: "G", v: 1, ts: 10_000}, {key: "H", v: 1, ts: 30_000}}, nil)
	// ... until a second has passed;
	step([]timed{{key: "H", v: 1, ts: 30_001, wall: sec}}, []string{"G@10000/10000=1@10000"})
	// a late record is dropped, and still looks;
	step([]timed{{key: "J", v: 1, ts: 37_500}}, nil)
	step([]timed{{key: "A", v: 1, ts: 0, wall: sec}}, []string{"C@20000/22001=56@22001"})
	if got := d.DroppedRecords("late"); got != 1 {
		t.Errorf("late records dropped: %d, want 1", got)
	}
	// and a stream time that jumps within the second far enough to
	// expire closed sessions not yet emitted forces a look.
	step([]timed{{key: "K", v: 1, ts: 100_000}}, []string{"H@30000/30001=2@30001", "J@37500/37500=1@37500"})
}

// TestSessionEmitOnWindowCloseAcrossRestart: the sessions and the last
// close time emitted are kept with the store (and its changelog), so a
// task restarted on the same state, or on state restored from the
// changelog, merges into the stored sessions and does not emit a session
// twice, although its stream time starts over.
func TestSessionEmitOnWindowCloseAcrossRestart(t *testing.T) {
	b := topology.NewBuilder()
	ss := topology.SessionWindowedBy(topology.Source(b, "in", serde.String(), serde.Int64()).GroupByKey(),
		must(window.SessionWindowsOfInactivityGapWithNoGrace(10*time.Millisecond))).EmitOnWindowClose()
	ss.Count(topology.StoreName("s")).ToStream().To("out")
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	spec := task.SpecsOf(top, "app")[0]
	keys := window.SessionWindowedSerde(serde.String())
	// run processes recs one at a time, two seconds of wall-clock time
	// apart, so that every record looks for closed sessions.
	run := func(backend state.Backend, recs ...timed) (out []string, changelog []*kgo.Record) {
		t.Helper()
		now := time.UnixMilli(0)
		tk, err := task.New(task.Config{
			ID: processor.TaskID{}, ApplicationID: "app", Spec: spec,
			Backends:  map[string]state.Backend{"s": backend},
			WallClock: func() time.Time { return now },
			Output: func(r *kgo.Record) {
				if r.Topic != "out" {
					changelog = append(changelog, r)
					return
				}
				k, err := keys.Deserialize(r.Topic, r.Key)
				if err != nil {
					t.Fatal(err)
				}
				v, err := serde.Int64().Deserialize(r.Topic, r.Value)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, fmt.Sprintf("%s@%d/%d=%d@%d", k.Key, k.Window.StartMs(), k.Window.EndMs(), v, r.Timestamp.UnixMilli()))
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer tk.Close()
		if err := tk.Init(); err != nil {
			t.Fatal(err)
		}
		for i, r := range recs {
			now = now.Add(2 * time.Second)
			v, _ := serde.Int64().Serialize("in", r.v)
			tk.Add([]*kgo.Record{{Topic: "in", Offset: int64(i), Key: []byte(r.key), Value: v, Timestamp: time.UnixMilli(r.ts)}})
			if _, err := tk.Process(1); err != nil {
				t.Fatal(err)
			}
		}
		tk.FlushChangelog(now)
		if err := tk.CommitStores(func(string) (int64, bool) { return 0, false }); err != nil {
			t.Fatal(err)
		}
		return out, changelog
	}
	backend := state.NewMemoryBackend()
	out, changelog := run(backend, timed{key: "A", ts: 0}, timed{key: "A", ts: 5}, timed{key: "B", ts: 20}, timed{key: "B", ts: 22})
	if want := []string{"A@0/5=2@5"}; !slices.Equal(out, want) {
		t.Fatalf("first run: %q, want %q", out, want)
	}
	restored := state.NewMemoryBackend()
	var batch []state.Write
	for _, r := range changelog {
		batch = append(batch, state.Write{Key: r.Key, Value: r.Value, Delete: r.Value == nil})
	}
	if err := restored.Apply(batch); err != nil {
		t.Fatal(err)
	}
	// Stream time restarts at 23 (close time 13): A's [0,5] closed
	// before the restart and is not emitted again. B@25 joins B's
	// [20,22] from before the restart.
	want := []string{"C@23/23=1@23", "B@20/25=3@25"}
	for name, be := range map[string]state.Backend{"same state": backend, "restored from the changelog": restored} {
		if out, _ := run(be, timed{key: "C", ts: 23}, timed{key: "B", ts: 25}, timed{key: "D", ts: 40}); !slices.Equal(out, want) {
			t.Errorf("after a restart on %s: %q, want %q", name, out, want)
		}
	}
}

// The session store of a session-windowed aggregation keeps sessions for
// the gap plus grace (or WithRetention's) after their end, and its
// changelog is compacted and deleted a day after that, as in Kafka
// Streams; emit-on-window-close keeps them longer, to emit them.
func TestSessionStoreChangelog(t *testing.T) {
	w := must(window.SessionWindowsOfInactivityGapAndGrace(time.Minute, 30*time.Second))
	for _, tc := range []struct {
		opts      []topology.Option
		emitFinal bool
		retention time.Duration
	}{
		{nil, false, 90*time.Second + 24*time.Hour},
		{[]topology.Option{topology.WithRetention(time.Hour)}, false, time.Hour + 24*time.Hour},
		{nil, true, 180*time.Second + time.Millisecond + 24*time.Hour},
	} {
		b := topology.NewBuilder()
		ss := topology.SessionWindowedBy(topology.Source(b, "in", serde.String(), serde.Int64()).GroupByKey(), w)
		if tc.emitFinal {
			ss = ss.EmitOnWindowClose()
		}
		ss.Count(append(tc.opts, topology.StoreName("w"))...).ToStream().To("out")
		top, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		ss0 := task.SpecsOf(top, "app")[0].Stores[0]
		if ss0.Kind != state.KindSession || ss0.Changelog.Retention != tc.retention || ss0.ChangelogTopic != "app-w-changelog" {
			t.Errorf("store spec: kind %v, changelog %q retention %v; want a session store logged with retention %v", ss0.Kind, ss0.ChangelogTopic, ss0.Changelog.Retention, tc.retention)
		}
		configs, err := ss0.Changelog.TopicConfigs(ss0.Kind)
		if err != nil || configs["cleanup.policy"] != "compact,delete" {
			t.Errorf("changelog configs %v (%v), want compact,delete", configs, err)
		}
	}
	for name, build := range map[string]func(topology.GroupedStream[string, int64]){
		"a retention shorter than gap plus grace": func(g topology.GroupedStream[string, int64]) {
			topology.SessionWindowedBy(g, w).Count(topology.WithRetention(time.Minute)).ToStream().To("out")
		},
		"the zero SessionWindows": func(g topology.GroupedStream[string, int64]) {
			topology.SessionWindowedBy(g, window.SessionWindows{}).Count().ToStream().To("out")
		},
	} {
		b := topology.NewBuilder()
		build(topology.Source(b, "in", serde.String(), serde.Int64()).GroupByKey())
		if _, err := b.Build(); err == nil {
			t.Errorf("%s was accepted", name)
		}
	}
}

// TestSessionTableFilter: a session table's updates carry old values, as
// Kafka Streams' do: a removed session's old aggregate, none for a merged
// session. So Filter forwards a tombstone only for a removed session that
// matched.
func TestSessionTableFilter(t *testing.T) {
	b := topology.NewBuilder()
	table := topology.SessionWindowedBy(topology.Source(b, "in", serde.String(), serde.Int64()).GroupByKey(),
		must(window.SessionWindowsOfInactivityGapAndGrace(10*time.Millisecond, 100*time.Millisecond))).Count()
	table.Filter(func(_ window.Windowed[string], n int64) bool { return n >= 2 }).ToStream().To("out")
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := eddytest.New(top)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	pipeTimed(t, d, []timed{{key: "A", ts: 0}, {key: "A", ts: 5}, {key: "A", ts: 20}, {key: "A", ts: 3}})
	want := []string{"A@0/5=2@5", "A@0/5=null@5", "A@0/5=3@5"}
	if got := sessionOutput(t, d, "out"); !slices.Equal(got, want) {
		t.Errorf("output:\n got %q\nwant %q", got, want)
	}
}

// Describe shows the windows and emit strategy of session and sliding
// aggregations.
func TestDescribeSessionAndSlidingWindows(t *testing.T) {
	b := topology.NewBuilder()
	g := topology.Source(b, "in", serde.String(), serde.Int64()).GroupByKey()
	topology.SessionWindowedBy(g, must(window.SessionWindowsOfInactivityGapWithNoGrace(time.Minute))).EmitOnWindowClose().
		Count(topology.Named("sessions"), topology.StoreName("s")).ToStream().To("out1")
	topology.SlidingWindowedBy(g, must(window.SlidingWindowsOfTimeDifferenceWithNoGrace(time.Second))).
		Count(topology.Named("sliding"), topology.StoreName("w")).ToStream().To("out2")
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	desc := top.Describe()
	for _, want := range []string{
		"Processor: sessions (stores: [s]; windows: SessionWindows{inactivityGap=1m0s, grace=0s}, emit on window close)",
		"Processor: sliding (stores: [w]; windows: SlidingWindows{timeDifference=1s, grace=0s})",
	} {
		if !strings.Contains(desc, want) {
			t.Errorf("Describe lacks %q:\n%s", want, desc)
		}
	}
}

// A stream keyed by session joins a session table on the session's
// bounds, as through Kafka Streams' session value getter; Filter's getter
// derives from it.
func TestJoinSessionTable(t *testing.T) {
	b := topology.NewBuilder()
	table := topology.SessionWindowedBy(topology.Source(b, "in", serde.String(), serde.Int64()).GroupByKey(),
		must(window.SessionWindowsOfInactivityGapWithNoGrace(10*time.Millisecond))).Count(topology.StoreName("s"))
	keys := window.SessionWindowedSerde(serde.String())
	lookups := topology.Source(b, "lookups", keys, serde.Int64())
	topology.JoinTable(lookups, table, func(_ window.Windowed[string], _, n int64) int64 { return n }).To("joined")
	topology.JoinTable(lookups, table.Filter(func(_ window.Windowed[string], n int64) bool { return n >= 2 }),
		func(_ window.Windowed[string], _, n int64) int64 { return n }).To("filtered")
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := eddytest.New(top)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	pipeTimed(t, d, []timed{{key: "A", ts: 0}, {key: "A", ts: 5}})
	in := eddytest.NewInputTopic(d, "lookups", keys, serde.Int64())
	for _, w := range []window.Window{must(window.NewSessionWindow(0, 5)), must(window.NewSessionWindow(0, 0))} {
		if err := in.PipeAt(window.Windowed[string]{Key: "A", Window: w}, 0, time.UnixMilli(6)); err != nil {
			t.Fatal(err)
		}
	}
	if got := sessionOutput(t, d, "joined"); !slices.Equal(got, []string{"A@0/5=2@6"}) {
		t.Errorf("joined %q, want the [0,5] session's count only ([0,0] was merged away)", got)
	}
	if got := sessionOutput(t, d, "filtered"); !slices.Equal(got, []string{"A@0/5=2@6"}) {
		t.Errorf("filtered %q, want the [0,5] session's count", got)
	}
}
