package topology_test

import (
	"slices"
	"testing"
	"time"

	"github.com/eddystream/eddy/eddytest"
	"github.com/eddystream/eddy/processor"
	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/topology"
)

// raw is an input record as bytes: a nil key or value is a Kafka null.
type raw struct{ key, value []byte }

// nullsAndEmpties are the four cases on each side, and both null.
var nullsAndEmpties = []raw{
	{nil, []byte("x")},         // null key: dropped
	{[]byte{}, []byte("x")},    // empty key: kept
	{[]byte("a"), nil},         // null value: dropped
	{[]byte("a"), []byte{}},    // empty value: kept
	{[]byte("a"), []byte("y")}, // kept
	{nil, nil},                 // both null: dropped once, as a null key
}

func pipeRaw(t *testing.T, d *eddytest.Driver, topic string, recs []raw) {
	t.Helper()
	for i, r := range recs {
		if err := d.PipeRaw(topic, r.key, r.value, time.UnixMilli(int64(i))); err != nil {
			t.Fatalf("pipe %d (key %#v, value %#v): %v", i, r.key, r.value, err)
		}
	}
}

func checkDropped(t *testing.T, d *eddytest.Driver, nullKeys, nullValues int64) {
	t.Helper()
	if got := d.DroppedRecords("null_key"); got != nullKeys {
		t.Errorf("dropped for a null key: %d, want %d", got, nullKeys)
	}
	if got := d.DroppedRecords("null_value"); got != nullValues {
		t.Errorf("dropped for a null value: %d, want %d", got, nullValues)
	}
}

// Stream aggregations drop records with a null key or value, and count
// them, as Kafka Streams' KStreamAggregate and KStreamReduce do; an empty
// key or value is an ordinary one.
func TestAggregationsDropNullKeysAndValues(t *testing.T) {
	for _, tc := range []struct {
		name string
		add  func(g topology.GroupedStream[string, string])
		want map[string]string // last update per key, as a string
	}{
		{"count", func(g topology.GroupedStream[string, string]) {
			topology.MapTableValues(g.Count(topology.StoreName("agg")), func(n int64) string { return string(rune('0' + n)) }, serde.String()).
				ToStream().To("out")
		}, map[string]string{"": "1", "a": "2"}},
		{"reduce", func(g topology.GroupedStream[string, string]) {
			g.Reduce(func(agg, v string) string { return agg + "+" + v }, topology.StoreName("agg")).ToStream().To("out")
		}, map[string]string{"": "x", "a": "+y"}},
		{"aggregate", func(g topology.GroupedStream[string, string]) {
			topology.Aggregate(g, func() string { return "[" }, func(_ string, v, agg string) string { return agg + v + "." }, serde.String(),
				topology.StoreName("agg")).ToStream().To("out")
		}, map[string]string{"": "[x.", "a": "[.y."}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := topology.NewBuilder()
			tc.add(topology.Source(b, "in", serde.String(), serde.String()).GroupByKey())
			top, err := b.Build()
			if err != nil {
				t.Fatal(err)
			}
			d, err := eddytest.New(top)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			pipeRaw(t, d, "in", nullsAndEmpties)

			recs, err := eddytest.NewOutputTopic(d, "out", serde.String(), serde.String()).ReadRecords()
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != 3 {
				t.Errorf("%d updates, want 3 (one per kept record): %v", len(recs), recs)
			}
			last := map[string]string{}
			for _, r := range recs {
				if r.KeyIsNull() {
					t.Errorf("an update has a null key: %v", r)
				}
				last[r.Key] = r.Value
			}
			if !equalMaps(last, tc.want) {
				t.Errorf("aggregates = %q, want %q", last, tc.want)
			}
			checkDropped(t, d, 2, 1)
		})
	}
}

// upper returns an upper-case copy of k as bytes: never nil, so that an
// empty key stays an empty key.
func upper(k string) []byte {
	out := []byte{}
	for _, c := range []byte(k) {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		out = append(out, c)
	}
	return out
}

// A key change may make a null key (a key selector returning nil); the
// grouping after it drops such records before the repartition topic, and
// records with a null value too, counted as the aggregation counts them.
func TestKeyChangeThenAggregationDropsNulls(t *testing.T) {
	sel := func(k, _ string) []byte {
		if k == "none" {
			return nil
		}
		return upper(k)
	}
	for _, tc := range []struct {
		name       string
		group      func(s topology.Stream[string, string]) topology.GroupedStream[[]byte, string]
		nullValues int64 // dropped
	}{
		{"selectkey", func(s topology.Stream[string, string]) topology.GroupedStream[[]byte, string] {
			return topology.SelectKey(s, sel).WithSerdes(serde.Bytes(), nil).GroupByKey(topology.Named("by-upper"))
		}, 1},
		{"groupby", func(s topology.Stream[string, string]) topology.GroupedStream[[]byte, string] {
			return topology.GroupBy(s, sel, serde.Bytes(), topology.Named("by-upper"))
		}, 1},
		// Map's function gets a null value as "" and returns a real value,
		// so only the null key is dropped.
		{"map", func(s topology.Stream[string, string]) topology.GroupedStream[[]byte, string] {
			return topology.Map(s, func(k, v string) ([]byte, string) { return sel(k, v), v }).
				WithSerdes(serde.Bytes(), serde.String()).GroupByKey(topology.Named("by-upper"))
		}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := topology.NewBuilder()
			tc.group(topology.Source(b, "in", serde.String(), serde.String())).
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
			pipeRaw(t, d, "in", []raw{
				{[]byte("a"), []byte("1")},
				{[]byte("none"), []byte("2")}, // the selector makes a null key
				{[]byte{}, []byte("3")},       // an empty key stays empty
				{[]byte("a"), nil},            // a null value
				{[]byte("a"), []byte{}},       // an empty value
			})
			recs, err := eddytest.NewOutputTopic(d, "out", serde.Bytes(), serde.Int64()).ReadRecords()
			if err != nil {
				t.Fatal(err)
			}
			last := map[string]int64{}
			for _, r := range recs {
				if r.KeyIsNull() {
					t.Errorf("an update has a null key: %v", r)
				}
				last[string(r.Key)] = r.Value
			}
			if want := map[string]int64{"A": 3 - tc.nullValues, "": 1}; !equalMaps(last, want) {
				t.Errorf("counts = %v, want %v", last, want)
			}
			checkDropped(t, d, 1, tc.nullValues)
		})
	}
}

func equalMaps[K comparable, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// Records that pass through stateless operations to a sink keep a null
// key or value as a Kafka null, and an empty one as empty; typed outputs
// read them back as NullKey and NullValue.
func TestSinksKeepNullsAndEmpties(t *testing.T) {
	b := topology.NewBuilder()
	src := topology.Source(b, "in", serde.String(), serde.String())
	src.Filter(func(string, string) bool { return true }).To("filtered")
	topology.MapValues(src, func(v string) string { return v + "!" }).To("mapped")
	topology.SelectKey(src, func(k, _ string) string { return k + "?" }).To("rekeyed")
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := eddytest.New(top)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	pipeRaw(t, d, "in", nullsAndEmpties)

	isNil := func(b []byte) string {
		switch {
		case b == nil:
			return "null"
		case len(b) == 0:
			return "empty"
		}
		return string(b)
	}
	got := func(topic string) []string {
		var out []string
		for _, r := range d.RawOutput(topic) {
			out = append(out, isNil(r.Key)+"="+isNil(r.Value))
		}
		return out
	}
	for _, tc := range []struct {
		topic string
		want  []string
	}{
		{"filtered", []string{"null=x", "empty=x", "a=null", "a=empty", "a=y", "null=null"}},
		// MapValues keeps a null key; its function gets a null value as
		// "" and returns a real value.
		{"mapped", []string{"null=x!", "empty=x!", "a=!", "a=!", "a=y!", "null=!"}},
		// SelectKey keeps a null value; its function gets a null key as "".
		{"rekeyed", []string{"?=x", "?=x", "a?=null", "a?=empty", "a?=y", "?=null"}},
	} {
		if g := got(tc.topic); !slices.Equal(g, tc.want) {
			t.Errorf("%s: got %q, want %q", tc.topic, g, tc.want)
		}
	}
	checkDropped(t, d, 0, 0)

	// Typed, the same records read back with NullKey and NullValue.
	pipeRaw(t, d, "in", nullsAndEmpties)
	recs, err := eddytest.NewOutputTopic(d, "filtered", serde.String(), serde.String()).ReadRecords()
	if err != nil {
		t.Fatal(err)
	}
	var marks []string
	for _, r := range recs {
		marks = append(marks, mark(r.NullKey, r.Key)+"="+mark(r.NullValue, r.Value))
	}
	if want := []string{"null=x", "=x", "a=null", "a=", "a=y", "null=null"}; !slices.Equal(marks, want) {
		t.Errorf("typed read = %q, want %q", marks, want)
	}
}

func mark(null bool, s string) string {
	if null {
		return "null"
	}
	return s
}

// A null value no longer reaches the JSON serde (which cannot decode
// one): it passes through to sinks as null and the aggregation drops it.
func TestNullValueThroughJSON(t *testing.T) {
	type order struct{ Qty int64 }
	b := topology.NewBuilder()
	src := topology.Source(b, "orders", serde.String(), serde.JSON[order]())
	src.To("orders-copy")
	topology.Aggregate(src.GroupByKey(), func() int64 { return 0 }, func(_ string, o order, sum int64) int64 { return sum + o.Qty },
		serde.Int64(), topology.StoreName("qty")).ToStream().To("qty")
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := eddytest.New(top)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	pipeRaw(t, d, "orders", []raw{
		{[]byte("k"), []byte(`{"Qty":2}`)},
		{[]byte("k"), nil},
		{[]byte("k"), []byte(`{"Qty":3}`)},
	})
	qty, err := eddytest.NewOutputTopic(d, "qty", serde.String(), serde.Int64()).ReadKeyValues()
	if err != nil {
		t.Fatal(err)
	}
	if want := []topology.KeyValue[string, int64]{topology.KV("k", int64(2)), topology.KV("k", int64(5))}; !slices.Equal(qty, want) {
		t.Errorf("qty = %v, want %v", qty, want)
	}
	copies := d.RawOutput("orders-copy")
	if len(copies) != 3 || copies[1].Value != nil {
		t.Errorf("orders-copy = %v, want 3 records, the second with a null value", copies)
	}
	checkDropped(t, d, 0, 1)
}

// The Processor API sees NullKey and NullValue, and can forward nulls of
// types without nil by setting them, or of types with nil as nil.
func TestProcessorSeesAndMakesNulls(t *testing.T) {
	var seen []string
	b := topology.NewBuilder()
	src := topology.Source(b, "in", serde.String(), serde.String())
	topology.Process(src, processor.Func(func(ctx processor.Context[string, []byte], r processor.Record[string, string]) error {
		seen = append(seen, mark(r.NullKey, r.Key)+"="+mark(r.NullValue, r.Value))
		out := processor.Record[string, []byte]{Key: r.Key, NullKey: r.Key == "make-null", Timestamp: r.Timestamp}
		if r.Value != "make-nil" {
			out.Value = []byte(r.Value)
		}
		return ctx.Forward(out)
	}), nil).WithSerdes(serde.String(), serde.Bytes()).To("out")
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := eddytest.New(top)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	in := eddytest.NewInputTopic(d, "in", serde.String(), serde.String())
	for _, r := range []processor.Record[string, string]{
		{NullKey: true, Value: "v"},
		{Key: "k", NullValue: true},
		{Key: "", Value: ""},
		{Key: "make-null", Value: "make-nil"},
	} {
		if err := in.PipeRecord(r); err != nil {
			t.Fatal(err)
		}
	}
	if want := []string{"null=v", "k=null", "=", "make-null=make-nil"}; !slices.Equal(seen, want) {
		t.Errorf("the processor saw %q, want %q", seen, want)
	}
	out := d.RawOutput("out")
	if len(out) != 4 {
		t.Fatalf("%d outputs, want 4", len(out))
	}
	if last := out[3]; last.Key != nil || last.Value != nil {
		t.Errorf("a forwarded NullKey and nil value came out as key %#v, value %#v; want both null", last.Key, last.Value)
	}
	if empty := out[2]; empty.Key == nil || len(empty.Key) != 0 {
		t.Errorf("an empty string key came out as %#v, want empty, not null", empty.Key)
	}
}
