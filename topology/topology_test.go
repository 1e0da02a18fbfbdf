package topology_test

import (
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/eddystream/eddy/eddytest"
	"github.com/eddystream/eddy/processor"
	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/state"
	"github.com/eddystream/eddy/topology"
)

func wordCount(t *testing.T) *topology.Topology {
	t.Helper()
	b := topology.NewBuilder()
	lines := topology.Source(b, "lines", serde.String(), serde.String())
	words := topology.FlatMap(lines, func(_ string, line string) []topology.KeyValue[string, string] {
		var out []topology.KeyValue[string, string]
		for _, w := range strings.Fields(strings.ToLower(line)) {
			out = append(out, topology.KV(w, w))
		}
		return out
	}, topology.Named("split-words"))
	counts := words.GroupByKey().Count(topology.StoreName("counts"), topology.InMemory())
	counts.ToStream().To("word-counts")
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return top
}

func TestWordCountRepartitionsAndCounts(t *testing.T) {
	top := wordCount(t)
	d, err := eddytest.New(top, eddytest.WithApplicationID("wc"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	in := eddytest.NewInputTopic(d, "lines", serde.String(), serde.String())
	for _, l := range []string{"the quick fox", "The lazy dog", "the end"} {
		if err := in.Pipe("", l); err != nil {
			t.Fatal(err)
		}
	}
	out := eddytest.NewOutputTopic(d, "word-counts", serde.String(), serde.Int64())
	kvs, err := out.ReadKeyValues()
	if err != nil {
		t.Fatal(err)
	}
	last := map[string]int64{}
	for _, kv := range kvs {
		last[kv.Key] = kv.Value
	}
	want := map[string]int64{"the": 3, "quick": 1, "fox": 1, "lazy": 1, "dog": 1, "end": 1}
	if len(last) != len(want) {
		t.Fatalf("counts = %v, want %v", last, want)
	}
	for w, n := range want {
		if last[w] != n {
			t.Errorf("count[%q] = %d, want %d", w, last[w], n)
		}
	}
	// Every update is forwarded: "the" was emitted with 1, 2, 3.
	var theSeq []int64
	for _, kv := range kvs {
		if kv.Key == "the" {
			theSeq = append(theSeq, kv.Value)
		}
	}
	if len(theSeq) != 3 || theSeq[2] != 3 {
		t.Errorf("updates of \"the\" = %v, want [1 2 3]", theSeq)
	}
	store, err := eddytest.KeyValueStore[string, int64](d, "counts")
	if err != nil {
		t.Fatal(err)
	}
	if n, ok, _ := store.Get("the"); !ok || n != 3 {
		t.Errorf("store counts[the] = %d,%v", n, ok)
	}
	// The changelog carries the latest value per key per commit.
	cl := d.RawOutput("wc-counts-changelog")
	if len(cl) != 8 { // one commit per piped line, one record per key written: 3 + 3 + 2
		t.Errorf("changelog records = %d, want 8", len(cl))
	}
	if len(d.RawOutput("wc-counts-repartition")) != 0 {
		t.Error("repartition records leaked to outputs instead of being routed")
	}
}

func TestDescribeAndInternalTopics(t *testing.T) {
	top := wordCount(t)
	desc := top.Describe()
	for _, want := range []string{"Sub-topology 0", "Sub-topology 1", "Source: source-0000 (topics: [lines])", "split-words", "<application-id>-counts-repartition", "<application-id>-counts-changelog", "Sink: sink-"} {
		if !strings.Contains(desc, want) {
			t.Errorf("Describe() lacks %q:\n%s", want, desc)
		}
	}
	its := top.InternalTopics("app")
	if len(its) != 2 || its[0].Name != "app-counts-repartition" || its[0].Kind != topology.Repartition || its[0].Subtopology != 0 || its[0].ReadBy != 1 ||
		its[1].Name != "app-counts-changelog" || its[1].Kind != topology.Changelog || its[1].Subtopology != 1 {
		t.Fatalf("InternalTopics = %+v", its)
	}
	subs := top.Subtopologies("app")
	if len(subs) != 2 || subs[0].SourceTopics[0] != "lines" || subs[1].SourceTopics[0] != "app-counts-repartition" || subs[1].Stores[0] != "counts" {
		t.Fatalf("Subtopologies = %+v", subs)
	}
}

func TestStatelessOperations(t *testing.T) {
	b := topology.NewBuilder()
	src := topology.Source(b, "in", serde.String(), serde.Int64())
	var peeked []string
	branches := src.Filter(func(_ string, v int64) bool { return v >= 0 }).
		Peek(func(k string, _ int64) { peeked = append(peeked, k) }).
		Split(topology.Named("size-")).
		Branch("big", func(_ string, v int64) bool { return v >= 100 }).
		Branch("small", func(_ string, v int64) bool { return v < 10 }).
		Default("medium")
	if len(branches) != 3 {
		t.Fatalf("branches = %v", len(branches))
	}
	topology.MapValues(branches["size-big"], func(v int64) string { return "big" }).WithSerdes(nil, serde.String()).To("labels")
	topology.FlatMapValues(branches["size-small"], func(v int64) []string { return []string{"small", "tiny"} }).WithSerdes(nil, serde.String()).
		Merge(topology.MapValues(branches["size-medium"], func(v int64) string { return "medium" })).
		FilterNot(func(_ string, v string) bool { return v == "tiny" }).
		To("labels-2")
	topology.SelectKey(src, func(k string, v int64) string { return k + "!" }).To("rekeyed")
	topology.Map(src, func(k string, v int64) (int64, string) { return v * 2, k }).WithSerdes(serde.Int64(), serde.String()).
		ToFunc(func(r processor.Record[int64, string]) string {
			if r.Key > 10 {
				return "map-high"
			}
			return "map-low"
		})
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := eddytest.New(top)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	in := eddytest.NewInputTopic(d, "in", serde.String(), serde.Int64())
	for _, kv := range []topology.KeyValue[string, int64]{{"a", 500}, {"b", 5}, {"c", 50}, {"d", -1}} {
		if err := in.Pipe(kv.Key, kv.Value); err != nil {
			t.Fatal(err)
		}
	}
	read := func(topic string) []string {
		recs, err := eddytest.NewOutputTopic(d, topic, serde.String(), serde.String()).ReadKeyValues()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, kv := range recs {
			out = append(out, kv.Key+"="+kv.Value)
		}
		sort.Strings(out)
		return out
	}
	if got := read("labels"); strings.Join(got, ",") != "a=big" {
		t.Errorf("labels = %v", got)
	}
	if got := read("labels-2"); strings.Join(got, ",") != "b=small,c=medium" {
		t.Errorf("labels-2 = %v", got)
	}
	sort.Strings(peeked)
	if strings.Join(peeked, ",") != "a,b,c" {
		t.Errorf("peeked = %v", peeked)
	}
	rk, _ := eddytest.NewOutputTopic(d, "rekeyed", serde.String(), serde.Int64()).ReadKeyValues()
	if len(rk) != 4 {
		t.Errorf("rekeyed = %v", rk)
	}
	high, _ := eddytest.NewOutputTopic(d, "map-high", serde.Int64(), serde.String()).ReadKeyValues()
	low, _ := eddytest.NewOutputTopic(d, "map-low", serde.Int64(), serde.String()).ReadKeyValues()
	if len(high) != 2 || len(low) != 2 || high[0] != topology.KV(int64(1000), "a") || low[1] != topology.KV(int64(-2), "d") {
		t.Errorf("map-high = %v, map-low = %v", high, low)
	}
}

func TestGroupByReduceAggregateAndTableOps(t *testing.T) {
	b := topology.NewBuilder()
	src := topology.Source(b, "sales", serde.String(), serde.Int64())
	byRegion := topology.GroupBy(src, func(k string, _ int64) string { return strings.SplitN(k, "/", 2)[0] }, serde.String(), topology.Named("by-region"))
	byRegion.Reduce(func(a, v int64) int64 { return a + v }, topology.StoreName("totals")).ToStream().To("totals")
	type stats struct{ N, Max int64 }
	agg := topology.Aggregate(src.GroupByKey(), func() stats { return stats{} }, func(_ string, v int64, s stats) stats {
		s.N++
		s.Max = max(s.Max, v)
		return s
	}, serde.JSON[stats](), topology.StoreName("stats"))
	topology.MapTableValues(agg.Filter(func(_ string, s stats) bool { return s.N >= 2 }), func(s stats) int64 { return s.Max }, serde.Int64()).
		ToStream().To("max-of-repeated")
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	if its := top.InternalTopics("x"); its[0].Name != "x-by-region-repartition" {
		t.Fatalf("repartition topic = %s, want named after the grouping", its[0].Name)
	}
	d, err := eddytest.New(top)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	in := eddytest.NewInputTopic(d, "sales", serde.String(), serde.Int64())
	for _, s := range []struct {
		k string
		v int64
	}{{"eu/1", 10}, {"us/1", 5}, {"eu/2", 7}, {"eu/1", 3}} {
		if err := in.Pipe(s.k, s.v); err != nil {
			t.Fatal(err)
		}
	}
	totals, _ := eddytest.NewOutputTopic(d, "totals", serde.String(), serde.Int64()).ReadKeyValues()
	if n := len(totals); n != 4 || totals[n-1] != topology.KV("eu", int64(20)) {
		t.Errorf("totals = %v", totals)
	}
	mx, _ := eddytest.NewOutputTopic(d, "max-of-repeated", serde.String(), serde.Int64()).ReadKeyValues()
	if len(mx) != 1 || mx[0] != topology.KV("eu/1", int64(10)) {
		t.Errorf("max-of-repeated = %v (filtered-out keys must not appear)", mx)
	}
	st, err := eddytest.KeyValueStore[string, stats](d, "stats")
	if err != nil {
		t.Fatal(err)
	}
	it, err := st.Range("eu/", "eu/~")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for it.Next() {
		keys = append(keys, it.Key())
	}
	it.Close()
	if strings.Join(keys, ",") != "eu/1,eu/2" {
		t.Errorf("range eu/ = %v", keys)
	}
}

// dedupe is a Processor API processor: it forwards a key the first time it
// is seen, remembers it in a store, and reports the number of keys on
// wall-clock and stream-time punctuation.
type dedupe struct {
	ctx    processor.Context[string, string]
	seen   state.KeyValueStore[string, int64]
	origin []processor.Origin
}

func (p *dedupe) Init(ctx processor.Context[string, string]) error {
	seen, err := state.KeyValue[string, int64](ctx, "seen")
	if err != nil {
		return err
	}
	p.ctx, p.seen = ctx, seen
	report := func(kind string) processor.Punctuator {
		return func(now time.Time) error {
			it, err := p.seen.All()
			if err != nil {
				return err
			}
			n := 0
			for it.Next() {
				n++
			}
			it.Close()
			return ctx.Forward(processor.Record[string, string]{Key: kind, Value: strings.Repeat("x", n), Timestamp: now})
		}
	}
	if _, err := ctx.Schedule(time.Minute, processor.WallClockTime, report("wall")); err != nil {
		return err
	}
	_, err = ctx.Schedule(10*time.Second, processor.StreamTime, report("stream"))
	return err
}

func (p *dedupe) Process(r processor.Record[string, string]) error {
	o, ok := p.ctx.Origin()
	if !ok {
		return errors.New("no origin while processing a record")
	}
	p.origin = append(p.origin, o)
	if _, had, err := p.seen.Get(r.Key); err != nil || had {
		return err
	}
	if err := p.seen.Put(r.Key, r.Timestamp.UnixMilli()); err != nil {
		return err
	}
	return p.ctx.ForwardTo("first-seen", r)
}

func (p *dedupe) Close() error { return nil }

func TestProcessorAPIStoresAndPunctuation(t *testing.T) {
	b := topology.NewBuilder()
	topology.AddKeyValueStore(b, "seen", serde.String(), serde.Int64())
	var proc *dedupe
	src := topology.Source(b, "events", serde.String(), serde.String())
	out := topology.Process(src, func() processor.Processor[string, string, string, string] {
		proc = &dedupe{}
		return proc
	}, []string{"seen"}, topology.Named("dedupe"))
	// A pass-through child named "first-seen" that ForwardTo addresses,
	// then the sink.
	topology.MapValues(out, func(v string) string { return v }, topology.Named("first-seen")).To("firsts")
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := eddytest.New(top)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	in := eddytest.NewInputTopic(d, "events", serde.String(), serde.String())
	t0 := d.Now()
	for i, k := range []string{"a", "b", "a", "c"} {
		if err := in.PipeAt(k, "v", t0.Add(time.Duration(i)*4*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	firsts, _ := eddytest.NewOutputTopic(d, "firsts", serde.String(), serde.String()).ReadKeyValues()
	var got []string
	for _, kv := range firsts {
		got = append(got, kv.Key)
	}
	// Stream time went 0s, 4s, 8s, 12s: the stream-time punctuator (every
	// 10 s from the first record) fired once, at 12 s, seeing a, b (c is
	// processed before the punctuation check of its own record... and is
	// stored by then): 3 keys.
	if strings.Join(got, ",") != "a,b,c,stream" || firsts[3].Value != "xxx" {
		t.Fatalf("firsts = %v", firsts)
	}
	if len(proc.origin) != 4 || proc.origin[2] != (processor.Origin{Topic: "events", Partition: 0, Offset: 2}) {
		t.Errorf("origins = %v", proc.origin)
	}
	// Wall clock: armed on the first tick, fires a minute later.
	if err := d.AdvanceWallClock(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := d.AdvanceWallClock(61 * time.Second); err != nil {
		t.Fatal(err)
	}
	firsts, _ = eddytest.NewOutputTopic(d, "firsts", serde.String(), serde.String()).ReadKeyValues()
	if len(firsts) != 1 || firsts[0].Key != "wall" || firsts[0].Value != "xxx" {
		t.Fatalf("after wall-clock advance: %v", firsts)
	}
}

func TestDeserializationHandlers(t *testing.T) {
	build := func() *topology.Topology {
		b := topology.NewBuilder()
		topology.Source(b, "nums", serde.String(), serde.Int64()).To("copy")
		top, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		return top
	}
	d, err := eddytest.New(build())
	if err != nil {
		t.Fatal(err)
	}
	err = d.PipeRaw("nums", []byte("k"), []byte("short"), d.Now())
	if err == nil || !strings.Contains(err.Error(), "nums-0@0") {
		t.Fatalf("fail handler: err = %v, want one naming nums-0@0", err)
	}
	d.Close()

	d, err = eddytest.New(build(), eddytest.WithSkipOnDeserializationError())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.PipeRaw("nums", []byte("k"), []byte("short"), d.Now()); err != nil {
		t.Fatal(err)
	}
	if err := eddytest.NewInputTopic(d, "nums", serde.String(), serde.Int64()).Pipe("k", 7); err != nil {
		t.Fatal(err)
	}
	if d.Skipped() != 1 {
		t.Errorf("skipped = %d", d.Skipped())
	}
	if got, _ := eddytest.NewOutputTopic(d, "copy", serde.String(), serde.Int64()).ReadKeyValues(); len(got) != 1 || got[0].Value != 7 {
		t.Errorf("copy = %v", got)
	}
}

func TestBuildErrorsNameTheNode(t *testing.T) {
	for name, tc := range map[string]struct {
		build func(b *topology.Builder)
		want  []string
	}{
		"unknown store": {func(b *topology.Builder) {
			src := topology.Source(b, "in", serde.String(), serde.String())
			topology.Process(src, processor.Func(func(processor.Context[string, string], processor.Record[string, string]) error { return nil }), []string{"nope"}, topology.Named("p"))
		}, []string{`node "p"`, `store "nope"`}},
		"duplicate name": {func(b *topology.Builder) {
			src := topology.Source(b, "in", serde.String(), serde.String(), topology.Named("x"))
			src.Filter(func(string, string) bool { return true }, topology.Named("x"))
		}, []string{`node "x"`, "unique"}},
		"missing serde at sink": {func(b *topology.Builder) {
			src := topology.Source(b, "in", serde.String(), serde.String())
			topology.MapValues(src, func(string) int { return 1 }).To("out", topology.Named("out-sink"))
		}, []string{`node "out-sink"`, "serde"}},
		"missing serde at repartition": {func(b *topology.Builder) {
			src := topology.Source(b, "in", serde.String(), serde.String())
			topology.Map(src, func(k, v string) (int, string) { return 1, v }).GroupByKey(topology.Named("g")).Count()
		}, []string{`node "g-repartition-sink"`, "repartition"}},
		"sink without topic": {func(b *topology.Builder) {
			topology.Source(b, "in", serde.String(), serde.String()).To("", topology.Named("s"))
		}, []string{`node "s"`, "needs a topic"}},
		"topic read twice": {func(b *topology.Builder) {
			topology.Source(b, "in", serde.String(), serde.String())
			topology.Source(b, "in", serde.String(), serde.String(), topology.Named("again"))
		}, []string{`node "again"`, "already read"}},
		"unused store": {func(b *topology.Builder) {
			topology.AddKeyValueStore(b, "lonely", serde.String(), serde.String())
			topology.Source(b, "in", serde.String(), serde.String()).To("out")
		}, []string{`node "lonely"`, "no processor uses it"}},
	} {
		t.Run(name, func(t *testing.T) {
			b := topology.NewBuilder()
			tc.build(b)
			_, err := b.Build()
			if err == nil {
				t.Fatal("Build succeeded")
			}
			var ne *topology.NodeError
			if !errors.As(err, &ne) {
				t.Errorf("error %v is not a *NodeError", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}
