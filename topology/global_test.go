package topology_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eddystream/eddy/eddytest"
	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/topology"
)

// TestGlobalJoins: Kafka Streams' KStream-GlobalKTable join semantics.
// The key mapper picks the table's key from the record (here the value's
// prefix before ':'); only stream records trigger a join, against the
// table as it is at that moment; tombstones in the table's topic delete;
// an inner join drops a record whose mapped key the table lacks, a left
// join forwards it with the zero value; a null mapped key drops the
// record unless the join is left and the record's key is null; a null
// key alone drops nothing (the mapper may read the value).
func TestGlobalJoins(t *testing.T) {
	for _, tc := range []struct {
		name           string
		left           bool
		want           []string
		wantNullKeys   int64
		wantNullValues int64
	}{
		{"inner", false, []string{"c1=zh:1@Zurich@10", "c3=zh:3@Bern@30", "c5=pa:5@Paris@50", "<null>=pa:6@Paris@60"}, 2, 1},
		{"left", true, []string{"c1=zh:1@Zurich@10", "c2=xx:2@@20", "c3=zh:3@Bern@30", "c4=zh:4@@40", "c5=pa:5@Paris@50", "<null>=pa:6@Paris@60", "<null>=:7@@70"}, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := topology.NewBuilder()
			clicks := topology.Source(b, "clicks", serde.String(), serde.String())
			// The mapped key is a *string so that it can be null: the
			// value's prefix before ':', nil when empty. The table's key
			// serde (ptrString) writes the bytes its producers write.
			cities := topology.GlobalTableFrom(b, "cities", ptrString{}, serde.String(), topology.StoreName("cities"))
			joiner := func(_ string, v string, city string) string { return v + "@" + city }
			join := topology.JoinGlobal[string, string, *string, string, string]
			if tc.left {
				join = topology.LeftJoinGlobal[string, string, *string, string, string]
			}
			join(clicks, cities, func(_ string, v string) *string {
				k := strings.SplitN(v, ":", 2)[0]
				if k == "" {
					return nil
				}
				return &k
			}, joiner).WithSerdes(serde.String(), serde.String()).To("out")
			top, err := b.Build()
			if err != nil {
				t.Fatal(err)
			}
			d, err := eddytest.New(top)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			g := eddytest.NewInputTopic(d, "cities", serde.String(), serde.String())
			c := eddytest.NewInputTopic(d, "clicks", serde.String(), serde.String())
			at := func(ms int64) time.Time { return time.UnixMilli(ms) }
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			must(g.PipeAt("zh", "Zurich", at(1)))
			must(g.PipeAt("pa", "Paris", at(2)))
			must(d.PipeRaw("cities", nil, []byte("Nowhere"), at(3))) // a null key: skipped
			must(c.PipeAt("c1", "zh:1", at(10)))
			must(c.PipeAt("c2", "xx:2", at(20)))
			must(g.PipeAt("zh", "Bern", at(25)))
			must(c.PipeAt("c3", "zh:3", at(30)))
			must(d.PipeRaw("cities", []byte("zh"), nil, at(35))) // a tombstone
			must(c.PipeAt("c4", "zh:4", at(40)))
			must(c.PipeAt("c5", "pa:5", at(50)))
			must(d.PipeRaw("clicks", nil, []byte("pa:6"), at(60)))        // a null key, joined by a left join
			must(d.PipeRaw("clicks", nil, []byte(":7"), at(70)))          // a null key and a null mapped key
			must(d.PipeRaw("clicks", []byte("c8"), []byte(":8"), at(80))) // a null mapped key
			must(d.PipeRaw("clicks", []byte("c9"), nil, at(90)))          // a null value
			recs, err := eddytest.NewOutputTopic(d, "out", serde.String(), serde.String()).ReadRecords()
			must(err)
			var got []string
			for _, r := range recs {
				k := r.Key
				if r.NullKey {
					k = "<null>"
				}
				got = append(got, fmt.Sprintf("%s=%s@%d", k, r.Value, r.Timestamp.UnixMilli()))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("output\n got %q\nwant %q", got, tc.want)
			}
			if n, v := d.DroppedRecords("null_key"), d.DroppedRecords("null_value"); n != tc.wantNullKeys || v != tc.wantNullValues {
				t.Errorf("dropped %d null keys and %d null values, want %d and %d", n, v, tc.wantNullKeys, tc.wantNullValues)
			}
			// The store holds the topic as it is: the tombstone deleted zh,
			// the null-key record is not there.
			kv, err := eddytest.KeyValueStore[*string, string](d, "cities")
			must(err)
			pa, zh := "pa", "zh"
			if v, ok, err := kv.Get(&pa); err != nil || !ok || v != "Paris" {
				t.Errorf("store: pa = %q, %v, %v; want Paris", v, ok, err)
			}
			if _, ok, err := kv.Get(&zh); err != nil || ok {
				t.Errorf("store: zh present (%v, %v) after its tombstone", ok, err)
			}
			if err := kv.Put(&pa, "Lyon"); err == nil {
				t.Error("a write to a global store succeeded")
			}
		})
	}
}

// A global table stays out of the sub-topologies, Describe lists its
// store, and a topic is either a global table's or a source's.
func TestGlobalTableTopology(t *testing.T) {
	b := topology.NewBuilder()
	g := topology.GlobalTableFrom(b, "cities", serde.String(), serde.String(), topology.StoreName("cities"), topology.InMemory())
	s := topology.Source(b, "clicks", serde.String(), serde.String())
	topology.JoinGlobal(s, g, func(_, v string) string { return v }, func(_, v, c string) string { return c }).To("out")
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	subs := top.Subtopologies("app")
	if len(subs) != 1 || len(subs[0].Stores) != 0 || slices.Contains(subs[0].SourceTopics, "cities") {
		t.Errorf("sub-topologies %+v: want one, without the global store or its topic", subs)
	}
	if d := top.Describe(); !strings.Contains(d, "cities: global key-value store of topic cities, memory, no changelog") {
		t.Errorf("Describe does not list the global store:\n%s", d)
	}
	if its := top.InternalTopics("app"); len(its) != 0 {
		t.Errorf("internal topics %+v: a global store has no changelog", its)
	}

	b = topology.NewBuilder()
	topology.GlobalTableFrom(b, "cities", serde.String(), serde.String())
	topology.Source(b, "cities", serde.String(), serde.String()).To("out")
	if _, err := b.Build(); err == nil || !strings.Contains(err.Error(), `topic "cities" is already read by source`) {
		t.Errorf("Build with a global table's topic read by a source: %v", err)
	}
	b = topology.NewBuilder()
	topology.GlobalTableFrom(b, "cities", serde.String(), serde.String(), topology.WithoutLogging())
	topology.Source(b, "in", serde.String(), serde.String()).To("out")
	if _, err := b.Build(); err == nil || !strings.Contains(err.Error(), "no changelog") {
		t.Errorf("Build with WithoutLogging on a global table: %v", err)
	}
}
