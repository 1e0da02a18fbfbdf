package topology_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eddystream/eddy/eddytest"
	"github.com/eddystream/eddy/processor"
	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/topology"
	"github.com/eddystream/eddy/window"
)

// joinInput is one record of a join test: side "L" or "R", key, value
// ("" with null set for a null value), timestamp in ms.
type joinInput struct {
	side  string
	key   string
	v     string
	null  bool
	nullK bool
	ts    int64
}

// joinKind is a join function under test.
type joinKind func(topology.Stream[string, string], topology.Stream[string, string], func(string, string, string) string, window.JoinWindows, ...topology.Option) topology.Stream[string, string]

// bracket is the joiner of the tests: "[left, right]", with the zero
// value (eddy's stand-in for Kafka Streams' null) shown as null.
func bracket(_ string, l, r string) string {
	if l == "" {
		l = "null"
	}
	if r == "" {
		r = "null"
	}
	return "[" + l + ", " + r + "]"
}

// runJoin builds left JOIN right into "out", pipes in, advancing the
// wall clock by a second before each record (so that Kafka Streams'
// once-a-second look for closed windows never holds a result back), and
// returns the output as "value@ts" (key "k" omitted; other keys shown).
func runJoin(t *testing.T, join joinKind, w window.JoinWindows, in []joinInput) ([]string, *eddytest.Driver) {
	t.Helper()
	b := topology.NewBuilder()
	l := topology.Source(b, "left", serde.String(), serde.String())
	r := topology.Source(b, "right", serde.String(), serde.String())
	join(l, r, bracket, w, topology.StoreName("j")).WithSerdes(nil, serde.String()).To("out")
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := eddytest.New(top)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	topics := map[string]*eddytest.InputTopic[string, string]{
		"L": eddytest.NewInputTopic(d, "left", serde.String(), serde.String()),
		"R": eddytest.NewInputTopic(d, "right", serde.String(), serde.String()),
	}
	for _, rec := range in {
		if err := d.AdvanceWallClock(time.Second); err != nil {
			t.Fatal(err)
		}
		k := rec.key
		if k == "" && !rec.nullK {
			k = "k"
		}
		if err := topics[rec.side].PipeRecord(processor.Record[string, string]{Key: k, NullKey: rec.nullK, Value: rec.v, NullValue: rec.null, Timestamp: time.UnixMilli(rec.ts)}); err != nil {
			t.Fatal(err)
		}
	}
	recs, err := eddytest.NewOutputTopic(d, "out", serde.String(), serde.String()).ReadRecords()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, rec := range recs {
		s := fmt.Sprintf("%s@%d", rec.Value, rec.Timestamp.UnixMilli())
		switch {
		case rec.NullKey:
			s = "<null>:" + s
		case rec.Key != "k":
			s = rec.Key + ":" + s
		}
		out = append(out, s)
	}
	return out, d
}

// docsTableInput is the input of the stream-stream join semantics table
// in Kafka Streams' developer guide (dsl-api.html, "Semantics of
// stream-stream joins"), timestamps in seconds.
var docsTableInput = []joinInput{
	{side: "L", null: true, ts: 1}, {side: "R", null: true, ts: 2},
	{side: "L", v: "A", ts: 3}, {side: "R", v: "a", ts: 4},
	{side: "L", v: "B", ts: 5}, {side: "R", v: "b", ts: 6},
	{side: "L", null: true, ts: 7}, {side: "R", null: true, ts: 8},
	{side: "L", v: "C", ts: 9}, {side: "R", v: "c", ts: 10},
	{side: "R", null: true, ts: 11}, {side: "L", null: true, ts: 12},
	{side: "R", null: true, ts: 13}, {side: "R", v: "d", ts: 14},
	{side: "L", v: "D", ts: 15},
	{side: "L", v: "E", ts: 40}, {side: "L", v: "F", ts: 60},
	{side: "R", v: "f", ts: 80}, {side: "L", v: "G", ts: 100},
}

// docsTableInner is the table's (INNER) JOIN column; the LEFT and OUTER
// columns add to it.
var docsTableInner = []string{
	"[A, a]@4", "[B, a]@5", "[A, b]@6", "[B, b]@6", "[C, a]@9", "[C, b]@9",
	"[A, c]@10", "[B, c]@10", "[C, c]@10", "[A, d]@14", "[B, d]@14", "[C, d]@14",
	"[D, a]@15", "[D, b]@15", "[D, c]@15", "[D, d]@15",
}

func seconds(in []joinInput) []joinInput {
	out := slices.Clone(in)
	for i := range out {
		out[i].ts *= 1000
	}
	return out
}

func secondsOut(in []string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		var v string
		var ts int64
		for j := len(s) - 1; j >= 0; j-- {
			if s[j] == '@' {
				v = s[:j]
				fmt.Sscan(s[j+1:], &ts)
				break
			}
		}
		out[i] = fmt.Sprintf("%s@%d", v, ts*1000)
	}
	return out
}

// TestStreamJoinDocsTable reproduces Kafka Streams' documented join
// semantics table: a join window of 15 s (time difference) with a grace
// period of 5 s, all records with one key, in timestamp order.
//
// The table emits [E, null] at 60, [F, null] at 80 and [null, f] at 100:
// it closes a window at exactly its end plus the grace period. Kafka
// Streams' code (KStreamKStreamJoin.isOuterJoinWindowOpen) keeps it open
// at that instant and closes it just after, as eddy does; so the table is
// run as printed with a grace of 5 s less a millisecond, and once more
// with 5 s to pin the instant.
func TestStreamJoinDocsTable(t *testing.T) {
	asPrinted := must(window.JoinWindowsOfTimeDifferenceAndGrace(15*time.Second, 5*time.Second-time.Millisecond))
	exact := must(window.JoinWindowsOfTimeDifferenceAndGrace(15*time.Second, 5*time.Second))
	for _, tc := range []struct {
		name string
		join joinKind
		w    window.JoinWindows
		want []string
	}{
		{"inner", topology.Join[string, string, string, string], asPrinted, docsTableInner},
		{"left", topology.LeftJoin[string, string, string, string], asPrinted, append(slices.Clone(docsTableInner), "[E, null]@40", "[F, null]@60")},
		{"outer", topology.OuterJoin[string, string, string, string], asPrinted, append(slices.Clone(docsTableInner), "[E, null]@40", "[F, null]@60", "[null, f]@80")},
		// At grace 5 s, E closes after 60, F after 80, f after 100: each
		// comes out one input later; f waits for a later record.
		{"inner, grace 5s", topology.Join[string, string, string, string], exact, docsTableInner},
		{"left, grace 5s", topology.LeftJoin[string, string, string, string], exact, append(slices.Clone(docsTableInner), "[E, null]@40", "[F, null]@60")},
		{"outer, grace 5s", topology.OuterJoin[string, string, string, string], exact, append(slices.Clone(docsTableInner), "[E, null]@40", "[F, null]@60")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, d := runJoin(t, tc.join, tc.w, seconds(docsTableInput))
			if want := secondsOut(tc.want); !slices.Equal(got, want) {
				t.Errorf("output:\n got %q\nwant %q", got, want)
			}
			// The table's null values are dropped, not joined.
			if got := d.DroppedRecords("null_value"); got != 7 {
				t.Errorf("null values dropped: %d, want 7", got)
			}
		})
	}
}

// TestStreamJoinTimeAndNulls: grace, late and out-of-order records, and
// null keys, as Kafka Streams' KStreamKStreamJoin treats them (except
// where the package doc says eddy differs: a record within the grace
// period is never emitted unmatched early).
func TestStreamJoinTimeAndNulls(t *testing.T) {
	w := must(window.JoinWindowsOfTimeDifferenceAndGrace(10*time.Millisecond, 20*time.Millisecond))
	left := topology.LeftJoin[string, string, string, string]
	for _, tc := range []struct {
		name       string
		join       joinKind
		in         []joinInput
		want       []string
		late, nulK int64
	}{
		{
			name: "out of order within grace waits and joins",
			join: left,
			// A@0's window ends at 10; stream time 25 is past it but not
			// past 10+20: a@5 still joins A, and A is never emitted
			// unmatched (Kafka Streams would emit [A, null] at once).
			in:   []joinInput{{side: "L", key: "x", v: "X", ts: 25}, {side: "L", v: "A", ts: 0}, {side: "R", v: "a", ts: 5}, {side: "L", key: "x", v: "Y", ts: 100}},
			want: []string{"[A, a]@5", "x:[X, null]@25"},
		},
		{
			name: "late records are dropped",
			join: left,
			// At stream time 31, A@0's window (0+10+20) has closed: A is
			// dropped, neither joined nor emitted. a@1 (window 1+10+20)
			// is not late, and B@21 takes it.
			in:   []joinInput{{side: "L", key: "x", v: "X", ts: 31}, {side: "L", v: "A", ts: 0}, {side: "R", v: "a", ts: 1}, {side: "L", v: "B", ts: 11}},
			want: []string{"[B, a]@11"},
			late: 1,
		},
		{
			name: "the result takes the larger timestamp, each partner once",
			join: topology.Join[string, string, string, string],
			in:   []joinInput{{side: "R", v: "a", ts: 8}, {side: "R", v: "b", ts: 8}, {side: "L", v: "A", ts: 3}, {side: "L", v: "B", ts: 18}, {side: "L", v: "C", ts: 19}},
			want: []string{"[A, a]@8", "[A, b]@8", "[B, a]@18", "[B, b]@18"},
		},
		{
			name: "null keys: a left join emits its left side at once",
			join: left,
			in:   []joinInput{{side: "L", nullK: true, v: "A", ts: 1}, {side: "R", nullK: true, v: "a", ts: 2}},
			want: []string{"<null>:[A, null]@1"},
			nulK: 1,
		},
		{
			name: "null keys: an inner join drops them",
			join: topology.Join[string, string, string, string],
			in:   []joinInput{{side: "L", nullK: true, v: "A", ts: 1}, {side: "R", nullK: true, v: "a", ts: 2}},
			nulK: 2,
		},
		{
			name: "outer join emits both sides once their windows close",
			join: topology.OuterJoin[string, string, string, string],
			in:   []joinInput{{side: "R", v: "a", ts: 0}, {side: "L", v: "A", ts: 20}, {side: "L", key: "x", v: "X", ts: 50}, {side: "L", key: "x", v: "Y", ts: 60}},
			// a closes after 0+10+20=30 and A after 50: at 50 only a is
			// emitted, at 60 A (in timestamp order).
			want: []string{"[null, a]@0", "[A, null]@20"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, d := runJoin(t, tc.join, w, tc.in)
			if !slices.Equal(got, tc.want) {
				t.Errorf("output:\n got %q\nwant %q", got, tc.want)
			}
			if got := d.DroppedRecords("late"); got != tc.late {
				t.Errorf("late records dropped: %d, want %d", got, tc.late)
			}
			if got := d.DroppedRecords("null_key"); got != tc.nulK {
				t.Errorf("null keys dropped: %d, want %d", got, tc.nulK)
			}
		})
	}
}

// TestStreamJoinRepartitionsAndCopartitioning: a join reads a side whose
// key changed through a repartition topic named after the join; Build
// fails, naming the topics and counts, when a join's sub-topology reads
// repartition topics set to different partition counts.
func TestStreamJoinRepartitionsAndCopartitioning(t *testing.T) {
	w := must(window.JoinWindowsOfTimeDifferenceWithNoGrace(time.Second))
	b := topology.NewBuilder()
	l := topology.SelectKey(topology.Source(b, "left", serde.String(), serde.String()), func(_, v string) string { return v })
	r := topology.Source(b, "right", serde.String(), serde.String())
	topology.Join(l, r, bracket, w, topology.Named("j")).WithSerdes(nil, serde.String()).To("out")
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, it := range top.InternalTopics("app") {
		names = append(names, it.Name)
	}
	want := []string{"app-j-left-repartition", "app-j-this-join-changelog", "app-j-other-join-changelog"}
	if !slices.Equal(names, want) {
		t.Errorf("internal topics %q, want %q", names, want)
	}

	b = topology.NewBuilder()
	counts := topology.SelectKey(topology.Source(b, "a", serde.String(), serde.String()), func(_, v string) string { return v }).
		GroupByKey(topology.Named("g"), topology.WithPartitions(3)).Count(topology.StoreName("counts")).ToStream()
	views := topology.SelectKey(topology.Source(b, "b", serde.String(), serde.Int64()), func(_ string, v int64) string { return fmt.Sprint(v) })
	topology.Join(counts, views, func(_ string, c, v int64) int64 { return c + v }, w, topology.Named("j"), topology.WithPartitions(4)).WithSerdes(nil, serde.Int64()).To("out")
	_, err = b.Build()
	var ne *topology.NodeError
	if !errors.As(err, &ne) || !strings.Contains(err.Error(), "g-repartition has 3") || !strings.Contains(err.Error(), "j-right-repartition has 4") {
		t.Fatalf("Build: %v, want an error naming both repartition topics and their counts", err)
	}
}

// Describe names a stream-stream join's kind and windows on its sides.
func TestDescribeJoin(t *testing.T) {
	b := topology.NewBuilder()
	l := topology.Source(b, "l", serde.String(), serde.String())
	r := topology.Source(b, "r", serde.String(), serde.String())
	w, err := window.JoinWindowsOfTimeDifferenceAndGrace(time.Minute, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	topology.LeftJoin(l, r, func(_, a, b string) string { return a + b }, w, topology.Named("j")).WithSerdes(serde.String(), serde.String()).To("out")
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	if desc := top.Describe(); !strings.Contains(desc, "left join, left side, windows: JoinWindows{before=1m0s, after=1m0s, grace=1s}") {
		t.Fatalf("Describe lacks the join's kind and windows:\n%s", desc)
	}
}
