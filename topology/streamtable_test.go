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

// TestStreamTableJoins: Kafka Streams' KStream-KTable join semantics. Only
// stream records trigger a join, against the table's value at that
// moment; an inner join drops a record whose key the table does not hold,
// a left join forwards it with the zero value; results keep the stream
// record's timestamp.
func TestStreamTableJoins(t *testing.T) {
	for _, tc := range []struct {
		name  string
		left  bool
		table func(topology.Table[string, string]) topology.Table[string, string]
		want  []string
	}{
		{"inner", false, nil, []string{"alice=1@Zurich@10", "alice=3@Bern@30", "bob=5@Paris@50"}},
		{"left", true, nil, []string{"alice=1@Zurich@10", "carol=2@@20", "alice=3@Bern@30", "alice=4@@40", "bob=5@Paris@50", "<null>=6@@60"}},
		{"inner, filtered table", false, func(t topology.Table[string, string]) topology.Table[string, string] {
			return t.Filter(func(_, city string) bool { return city != "Paris" })
		}, []string{"alice=1@Zurich@10", "alice=3@Bern@30"}},
		{"left, mapped table", true, func(t topology.Table[string, string]) topology.Table[string, string] {
			return topology.MapTableValues(t, strings.ToUpper, serde.String())
		}, []string{"alice=1@ZURICH@10", "carol=2@@20", "alice=3@BERN@30", "alice=4@@40", "bob=5@PARIS@50", "<null>=6@@60"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := topology.NewBuilder()
			users := topology.TableFrom(b, "users", serde.String(), serde.String(), topology.StoreName("users"))
			if tc.table != nil {
				users = tc.table(users)
			}
			clicks := topology.Source(b, "clicks", serde.String(), serde.Int64())
			join := topology.JoinTable[string, int64, string, string]
			if tc.left {
				join = topology.LeftJoinTable[string, int64, string, string]
			}
			join(clicks, users, func(_ string, n int64, city string) string { return fmt.Sprintf("%d@%s", n, city) }).
				WithSerdes(serde.String(), serde.String()).To("out")
			top, err := b.Build()
			if err != nil {
				t.Fatal(err)
			}
			d, err := eddytest.New(top)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			u := eddytest.NewInputTopic(d, "users", serde.String(), serde.String())
			c := eddytest.NewInputTopic(d, "clicks", serde.String(), serde.Int64())
			at := func(ms int64) time.Time { return time.UnixMilli(ms) }
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			must(u.PipeAt("alice", "Zurich", at(1)))
			must(u.PipeAt("bob", "Paris", at(2)))
			must(c.PipeAt("alice", 1, at(10)))
			must(c.PipeAt("carol", 2, at(20)))
			must(u.PipeAt("alice", "Bern", at(25)))
			must(c.PipeAt("alice", 3, at(30)))
			must(d.PipeRaw("users", []byte("alice"), nil, at(35))) // a tombstone
			must(c.PipeAt("alice", 4, at(40)))
			must(c.PipeAt("bob", 5, at(50)))
			must(d.PipeRaw("clicks", nil, []byte{0, 0, 0, 0, 0, 0, 0, 6}, at(60))) // a null key
			must(d.PipeRaw("clicks", []byte("bob"), nil, at(70)))                  // a null value
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
			wantNullKeys := int64(1)
			if tc.left {
				wantNullKeys = 0
			}
			if d.DroppedRecords("null_key") != wantNullKeys || d.DroppedRecords("null_value") != 1 {
				t.Errorf("dropped %d null keys and %d null values, want %d and 1", d.DroppedRecords("null_key"), d.DroppedRecords("null_value"), wantNullKeys)
			}
		})
	}
}

// A stream whose key changed is read through a repartition topic before
// the join, and the join shares the table's sub-topology.
func TestStreamTableJoinTopology(t *testing.T) {
	b := topology.NewBuilder()
	users := topology.TableFrom(b, "users", serde.String(), serde.String(), topology.StoreName("users"))
	clicks := topology.Source(b, "clicks", serde.String(), serde.Int64())
	rekeyed := topology.SelectKey(clicks, func(k string, _ int64) string { return strings.ToLower(k) }).WithSerdes(serde.String(), serde.Int64())
	topology.JoinTable(rekeyed, users, func(_ string, n int64, city string) string { return city }, topology.Named("enrich")).
		WithSerdes(serde.String(), serde.String()).To("out")
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	subs := top.Subtopologies("app")
	if len(subs) != 2 || !slices.Contains(subs[0].SourceTopics, "app-enrich-repartition") || !slices.Contains(subs[0].SourceTopics, "users") {
		t.Fatalf("sub-topologies %+v: want the join, the table and the repartition topic in one", subs)
	}
	b = topology.NewBuilder()
	agg := topology.Source(b, "in", serde.String(), serde.Int64()).GroupByKey().Count()
	// An aggregation's table joins too.
	topology.JoinTable(topology.Source(b, "s", serde.String(), serde.Int64()), agg, func(_ string, a, b int64) int64 { return a + b }).To("out2")
	if _, err := b.Build(); err != nil {
		t.Fatalf("a join with an aggregation's table: %v", err)
	}
}
