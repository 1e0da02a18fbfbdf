package topology_test

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eddystream/eddy/eddytest"
	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/topology"
)

// sideRow is a record of the "left" or "right" topic of a table-table
// join; a nil value is a tombstone.
type sideRow struct {
	topic string
	row
}

func lt(v *string, ts int64) sideRow { return sideRow{"left", row{s("k"), v, ts}} }
func rt(v *string, ts int64) sideRow { return sideRow{"right", row{s("k"), v, ts}} }

// pair formats a join's inputs as the Kafka Streams docs do, the empty
// string (the zero value, Go's stand-in for null) as "null".
func pair(_ string, l, r string) string {
	orNull := func(v string) string {
		if v == "" {
			return "null"
		}
		return v
	}
	return "[" + orNull(l) + ", " + orNull(r) + "]"
}

// runSides builds a topology with build, pipes rows into their topics and
// returns the driver.
func runSides(t *testing.T, build func(b *topology.Builder), rows []sideRow) *eddytest.Driver {
	t.Helper()
	b := topology.NewBuilder()
	build(b)
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := eddytest.New(top)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	for i, r := range rows {
		if err := d.PipeRaw(r.topic, bytesOf(r.key), bytesOf(r.value), time.UnixMilli(r.ts)); err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
	}
	return d
}

type tableJoinFunc = func(topology.Table[string, string], topology.Table[string, string], func(string, string, string) string, serde.Serde[string], ...topology.Option) topology.Table[string, string]

var tableJoins = []struct {
	name string
	join tableJoinFunc
}{
	{"inner", topology.JoinTables[string, string, string, string]},
	{"left", topology.LeftJoinTables[string, string, string, string]},
	{"outer", topology.OuterJoinTables[string, string, string, string]},
}

// TestTableTableJoinSemantics reproduces the table of "Semantics of
// table-table equi-joins" in the Kafka Streams developer guide (KTable-
// KTable Equi-Join): one key, records in timestamp order, each row the
// joiner's arguments or null (a deletion, forwarded by ToStream as a
// tombstone) for what each join forwards. It holds for tables read with
// and without named stores (Kafka Streams' materialized and
// unmaterialized source tables), for tables derived from them with
// MapTableValues and Filter, and for a materialized result, whose store
// ends with the last joined value.
func TestTableTableJoinSemantics(t *testing.T) {
	rows := []sideRow{
		lt(nil, 1), rt(nil, 2), lt(s("A"), 3), rt(s("a"), 4), lt(s("B"), 5), rt(s("b"), 6),
		lt(nil, 7), rt(nil, 8), lt(s("C"), 9), rt(s("c"), 10), rt(nil, 11), lt(nil, 12),
		rt(nil, 13), rt(s("d"), 14), lt(s("D"), 15),
	}
	want := map[string][]string{
		"inner": {"k=[A, a]@4", "k=[B, a]@5", "k=[B, b]@6", "k=null@7", "k=[C, c]@10", "k=null@11", "k=[D, d]@15"},
		"left": {"k=[A, null]@3", "k=[A, a]@4", "k=[B, a]@5", "k=[B, b]@6", "k=null@7", "k=[C, null]@9",
			"k=[C, c]@10", "k=[C, null]@11", "k=null@12", "k=[D, d]@15"},
		"outer": {"k=[A, null]@3", "k=[A, a]@4", "k=[B, a]@5", "k=[B, b]@6", "k=[null, b]@7", "k=null@8",
			"k=[C, null]@9", "k=[C, c]@10", "k=[C, null]@11", "k=null@12", "k=[null, d]@14", "k=[D, d]@15"},
	}
	type tables = func(b *topology.Builder) (topology.Table[string, string], topology.Table[string, string])
	sources := []struct {
		name   string
		tables tables
	}{
		{"unnamed stores", func(b *topology.Builder) (topology.Table[string, string], topology.Table[string, string]) {
			return topology.TableFrom(b, "left", serde.String(), serde.String()), topology.TableFrom(b, "right", serde.String(), serde.String())
		}},
		{"named stores", func(b *topology.Builder) (topology.Table[string, string], topology.Table[string, string]) {
			return topology.TableFrom(b, "left", serde.String(), serde.String(), topology.StoreName("l")),
				topology.TableFrom(b, "right", serde.String(), serde.String(), topology.StoreName("r"))
		}},
		{"derived", func(b *topology.Builder) (topology.Table[string, string], topology.Table[string, string]) {
			l := topology.MapTableValues(topology.TableFrom(b, "left", serde.String(), serde.String()), strings.ToLower, serde.String())
			r := topology.TableFrom(b, "right", serde.String(), serde.String()).
				Filter(func(_, v string) bool { return v != "x" })
			return topology.MapTableValues(l, strings.ToUpper, serde.String()), r
		}},
	}
	for _, src := range sources {
		for _, j := range tableJoins {
			for _, materialized := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/%s/materialized=%v", src.name, j.name, materialized), func(t *testing.T) {
					var opts []topology.Option
					if materialized {
						opts = append(opts, topology.StoreName("joined"))
					}
					d := runSides(t, func(b *topology.Builder) {
						l, r := src.tables(b)
						joined := j.join(l, r, pair, serde.String(), opts...)
						if got := joined.StoreName(); materialized != (got == "joined") {
							t.Errorf("StoreName() = %q", got)
						}
						joined.ToStream().To("out")
					}, rows)
					if got := outputs(t, d, "out"); !slices.Equal(got, want[j.name]) {
						t.Errorf("out\n got %q\nwant %q", got, want[j.name])
					}
					if !materialized {
						return
					}
					st, err := eddytest.KeyValueStore[string, string](d, "joined")
					if err != nil {
						t.Fatal(err)
					}
					if v, ok, err := st.Get("k"); v != "[D, d]" || !ok || err != nil {
						t.Errorf("store k = %q, %v, %v; want [D, d]", v, ok, err)
					}
				})
			}
		}
	}
}

// A result carries the larger timestamp of the values it joins, whichever
// side's update produced it; a left or outer result without a partner
// carries its one value's timestamp. A deletion of the joined key is
// stamped the same way.
func TestTableTableJoinTimestamps(t *testing.T) {
	rows := []sideRow{
		rt(s("x"), 3),  // outer: [null, x]@3
		lt(s("A"), 10), // joins x@3: @10
		rt(s("b"), 20), // joins A@10: @20
		lt(s("B"), 15), // joins b@20: @20, though the update is older
		lt(nil, 12),    // deletes k: @20
		{"left", row{s("j"), s("J"), 7}},
	}
	want := map[string][]string{
		"inner": {"k=[A, x]@10", "k=[A, b]@20", "k=[B, b]@20", "k=null@20"},
		"left":  {"k=[A, x]@10", "k=[A, b]@20", "k=[B, b]@20", "k=null@20", "j=[J, null]@7"},
		"outer": {"k=[null, x]@3", "k=[A, x]@10", "k=[A, b]@20", "k=[B, b]@20", "k=[null, b]@20", "j=[J, null]@7"},
	}
	for _, j := range tableJoins {
		t.Run(j.name, func(t *testing.T) {
			d := runSides(t, func(b *topology.Builder) {
				l := topology.TableFrom(b, "left", serde.String(), serde.String())
				r := topology.TableFrom(b, "right", serde.String(), serde.String())
				j.join(l, r, pair, serde.String()).ToStream().To("out")
			}, rows)
			if got := outputs(t, d, "out"); !slices.Equal(got, want[j.name]) {
				t.Errorf("out\n got %q\nwant %q", got, want[j.name])
			}
		})
	}
}

// An unmaterialized join result is read through both tables' stores: a
// second join and a stream-table join look up its current joined value,
// with the largest timestamp of the values it joins.
func TestTableTableJoinChained(t *testing.T) {
	b := topology.NewBuilder()
	l := topology.TableFrom(b, "left", serde.String(), serde.String())
	r := topology.TableFrom(b, "right", serde.String(), serde.String())
	third := topology.TableFrom(b, "third", serde.String(), serde.String())
	lr := topology.JoinTables(l, r, pair, serde.String(), topology.Named("lr"))
	topology.LeftJoinTables(third, lr, func(_ string, a, b string) string { return a + "+" + b }, serde.String()).ToStream().To("out")
	clicks := topology.Source(b, "clicks", serde.String(), serde.String())
	topology.JoinTable(clicks, lr, func(_ string, c, j string) string { return c + ":" + j }).To("enriched")
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	if subs := top.Subtopologies("app"); len(subs) != 1 || len(subs[0].SourceTopics) != 4 {
		t.Fatalf("sub-topologies %+v: want one reading all four topics", subs)
	}
	d, err := eddytest.New(top)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, p := range []struct {
		topic, value string
		ts           int64
	}{
		{"third", "T", 1}, {"left", "A", 5}, {"right", "a", 30}, {"clicks", "c1", 31}, {"third", "U", 2}, {"left", "B", 40},
	} {
		if err := d.PipeRaw(p.topic, []byte("k"), []byte(p.value), time.UnixMilli(p.ts)); err != nil {
			t.Fatal(err)
		}
	}
	// third's own updates look up lr: U@2 joins [A, a], which holds the
	// timestamps 5 and 30.
	if got, want := outputs(t, d, "out"), []string{"k=T+@1", "k=T+[A, a]@30", "k=U+[A, a]@30", "k=U+[B, a]@40"}; !slices.Equal(got, want) {
		t.Errorf("out\n got %q\nwant %q", got, want)
	}
	if got, want := outputs(t, d, "enriched"), []string{"k=c1:[A, a]@31"}; !slices.Equal(got, want) {
		t.Errorf("enriched\n got %q\nwant %q", got, want)
	}
}

// A Filter downstream of a join asks for old values, which the join sends
// by making both tables send theirs: an update whose old and new joined
// values both fail the predicate forwards nothing, and one that stops
// matching forwards a deletion.
func TestTableTableJoinOldValues(t *testing.T) {
	sum := func(_ string, l, r string) string {
		a, _ := strconv.Atoi(l)
		b, _ := strconv.Atoi(r)
		return strconv.Itoa(a + b)
	}
	d := runSides(t, func(b *topology.Builder) {
		// Tables derived from unmaterialized source tables send old
		// values only when asked to.
		same := func(v string) string { return v }
		l := topology.MapTableValues(topology.TableFrom(b, "left", serde.String(), serde.String()), same, serde.String())
		r := topology.MapTableValues(topology.TableFrom(b, "right", serde.String(), serde.String()), same, serde.String())
		topology.JoinTables(l, r, sum, serde.String()).
			Filter(func(_, v string) bool { n, _ := strconv.Atoi(v); return n >= 10 }).
			ToStream().To("out")
	}, []sideRow{
		lt(s("1"), 1), rt(s("2"), 2), // 3: never matched, nothing
		lt(s("9"), 3), // 11: matches
		rt(s("0"), 4), // 9: stops matching
		lt(s("1"), 5), // 1: still not
		rt(nil, 6),    // deleted: it did not match, nothing
	})
	if got, want := outputs(t, d, "out"), []string{"k=11@3", "k=null@4"}; !slices.Equal(got, want) {
		t.Errorf("out\n got %q\nwant %q", got, want)
	}
}

// A joiner's nil result deletes the key, as a null result does in Kafka
// Streams.
func TestTableTableJoinNilResult(t *testing.T) {
	d := runSides(t, func(b *topology.Builder) {
		l := topology.TableFrom(b, "left", serde.String(), serde.String())
		r := topology.TableFrom(b, "right", serde.String(), serde.String())
		joined := topology.JoinTables(l, r, func(_ string, a, b string) *string {
			if a == b {
				return nil
			}
			v := a + b
			return &v
		}, nil)
		topology.MapTableValues(joined, func(v *string) string { return *v }, serde.String()).ToStream().To("out")
	}, []sideRow{lt(s("a"), 1), rt(s("b"), 2), lt(s("b"), 3), rt(s("c"), 4)})
	if got, want := outputs(t, d, "out"), []string{"k=ab@2", "k=null@3", "k=bc@4"}; !slices.Equal(got, want) {
		t.Errorf("out\n got %q\nwant %q", got, want)
	}
}

// A materialized result needs the joined values' serde; the join is
// described with each side reading the other's store.
func TestTableTableJoinBuild(t *testing.T) {
	b := topology.NewBuilder()
	l := topology.TableFrom(b, "left", serde.String(), serde.String())
	r := topology.TableFrom(b, "right", serde.String(), serde.String(), topology.StoreName("r"))
	topology.JoinTables(l, r, pair, nil, topology.StoreName("joined")).ToStream()
	if _, err := b.Build(); err == nil || !strings.Contains(err.Error(), "valueSerde") {
		t.Errorf("Build: %v, want an error about the value serde", err)
	}
	b = topology.NewBuilder()
	l = topology.TableFrom(b, "left", serde.String(), serde.String())
	r = topology.TableFrom(b, "right", serde.String(), serde.String(), topology.StoreName("r"))
	topology.OuterJoinTables(l, r, pair, serde.String(), topology.Named("j"), topology.InMemory()).ToStream().To("out")
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	desc := top.Describe()
	for _, want := range []string{"Processor: j-join-this (stores: [r]", "Processor: j-join-other (stores: [table-source-store-", "Processor: j (stores: [table-outer-join-store-"} {
		if !strings.Contains(desc, want) {
			t.Errorf("Describe lacks %q:\n%s", want, desc)
		}
	}
}

// GroupTableBy over a join subtracts each joined row's old value from its
// group: the join sends old values and makes both tables, here derived
// ones that send them only when asked, send theirs.
func TestTableTableJoinGroupBy(t *testing.T) {
	same := func(v string) string { return v }
	b := topology.NewBuilder()
	cities := topology.MapTableValues(topology.TableFrom(b, "left", serde.String(), serde.String()), same, serde.String())
	tiers := topology.MapTableValues(topology.TableFrom(b, "right", serde.String(), serde.String()), same, serde.String())
	members := topology.JoinTables(cities, tiers, func(_ string, city, _ string) string { return city }, serde.String())
	perCity := topology.GroupTableBy(members, func(_ string, city string) (string, string) { return city, city }, serde.String(), serde.String()).Count()
	topology.MapTableValues(perCity, func(n int64) string { return strconv.FormatInt(n, 10) }, serde.String()).ToStream().To("out")
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := eddytest.New(top)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, r := range []sideRow{
		{"left", upd("alice", "Bern", 1)}, {"right", upd("alice", "gold", 2)},
		{"left", upd("bob", "Bern", 3)}, {"right", upd("bob", "silver", 4)},
		{"left", upd("alice", "Zurich", 5)}, // moves alice from Bern to Zurich
		{"right", del("bob", 6)},            // bob leaves Bern
	} {
		if err := d.PipeRaw(r.topic, bytesOf(r.key), bytesOf(r.value), time.UnixMilli(r.ts)); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := outputs(t, d, "out"), []string{"Bern=1@2", "Bern=2@4", "Bern=1@5", "Zurich=1@5", "Bern=0@6"}; !slices.Equal(got, want) {
		t.Errorf("out\n got %q\nwant %q", got, want)
	}
}
