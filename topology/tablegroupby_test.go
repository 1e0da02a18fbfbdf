package topology_test

import (
	"slices"
	"strconv"
	"testing"

	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/topology"
)

// A table GroupBy sends each update to the aggregation as the
// subtraction of the old row and the addition of the new one, so that
// counts, sums and reductions stay right when a row moves between groups,
// changes within its group, or is deleted (Kafka Streams'
// KTableRepartitionMap, KTableAggregate and KTableReduce). Rows are
// "user -> region:amount"; groups are regions.
func TestTableGroupBy(t *testing.T) {
	rows := []row{
		upd("alice", "eu:10", 1),
		upd("bob", "eu:5", 2),
		upd("alice", "us:7", 3),   // moves from eu to us
		upd("bob", "eu:8", 4),     // changes within eu
		del("alice", 5),           // leaves us
		del("carol", 6),           // never present: nothing to subtract or add
		upd("bob", "eu:8", 7),     // same value again
		upd("alice", "us:1", 2),   // older timestamp
		{nil, s("eu:100"), 9},     // null key: dropped by the table
		upd("dave", "nowhere", 8), // the selector returns a nil key: skipped
	}
	region := func(_ string, v string) (*string, int64) {
		for i := range v {
			if v[i] == ':' {
				n, _ := strconv.ParseInt(v[i+1:], 10, 64)
				return s(v[:i]), n
			}
		}
		return nil, 0
	}
	regionSerde := ptrString{}
	for _, tc := range []struct {
		name  string
		build func(g topology.GroupedTable[*string, int64]) topology.Table[*string, int64]
		want  []string
	}{
		{"count", func(g topology.GroupedTable[*string, int64]) topology.Table[*string, int64] {
			return g.Count(topology.StoreName("agg"))
		}, []string{
			"eu=1@1",
			"eu=2@2",
			"eu=1@3", "us=1@3",
			"eu=1@4", // one repartition record carries both values: one update
			"us=0@5",
			"eu=1@7",
			"us=1@5", // stamped with the later timestamp of the aggregate
		}},
		{"reduce", func(g topology.GroupedTable[*string, int64]) topology.Table[*string, int64] {
			return g.Reduce(func(a, v int64) int64 { return a + v }, func(a, v int64) int64 { return a - v }, topology.StoreName("agg"))
		}, []string{"eu=10@1", "eu=15@2", "eu=5@3", "us=7@3", "eu=8@4", "us=0@5", "eu=8@7", "us=1@5"}},
		{"aggregate", func(g topology.GroupedTable[*string, int64]) topology.Table[*string, int64] {
			return topology.TableAggregate(g, func() int64 { return 1000 },
				func(_ *string, v, a int64) int64 { return a + v }, func(_ *string, v, a int64) int64 { return a - v },
				serde.Int64(), topology.StoreName("agg"))
		}, []string{"eu=1010@1", "eu=1015@2", "eu=1005@3", "us=1007@3", "eu=1008@4", "us=1000@5", "eu=1008@7", "us=1001@5"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := runTable(t, func(b *topology.Builder) {
				tbl := topology.TableFrom(b, "in", serde.String(), serde.String())
				grouped := topology.GroupTableBy(tbl, region, regionSerde, serde.Int64(), topology.Named("by-region"))
				topology.MapTableValues(tc.build(grouped), func(n int64) string { return strconv.FormatInt(n, 10) }, serde.String()).
					ToStream().To("out")
			}, rows)
			if got := outputs(t, d, "out"); !slices.Equal(got, tc.want) {
				t.Errorf("out = %q\nwant    %q", got, tc.want)
			}
			if got := d.DroppedRecords("null_key"); got != 1 {
				t.Errorf("dropped for a null key: %d, want 1", got)
			}
		})
	}
}

// A reduce whose subtractor returns nil empties its group: the group's
// row is deleted and ToStream forwards a tombstone (Kafka Streams' reduce
// with a subtractor returning null).
func TestTableReduceSubtractorNilDeletes(t *testing.T) {
	d := runTable(t, func(b *topology.Builder) {
		tbl := topology.TableFrom(b, "in", serde.String(), serde.String())
		g := topology.GroupTableBy(tbl, func(_ string, v string) (string, []byte) { return "all", []byte(v) }, serde.String(), serde.Bytes())
		g.Reduce(func(a, v []byte) []byte { return append(append([]byte(nil), a...), v...) }, func(a, v []byte) []byte {
			if len(a) == len(v) {
				return nil
			}
			return a[:len(a)-len(v)]
		}, topology.StoreName("agg")).ToStream().To("out")
	}, []row{upd("k", "x", 1), del("k", 2), upd("k", "y", 3)})
	if got, want := outputs(t, d, "out"), []string{"all=x@1", "all=null@2", "all=y@3"}; !slices.Equal(got, want) {
		t.Errorf("out = %q, want %q", got, want)
	}
}

// Build reports a table grouping without serdes against its repartition
// sink.
func TestGroupTableByNeedsSerdes(t *testing.T) {
	b := topology.NewBuilder()
	tbl := topology.TableFrom(b, "in", serde.String(), serde.String())
	topology.GroupTableBy(tbl, func(k, v string) (string, string) { return v, k }, nil, serde.String(), topology.Named("g")).Count()
	if _, err := b.Build(); err == nil {
		t.Fatal("Build accepted a table grouping without a key serde")
	}
}

// ptrString is a serde of *string, whose nil is a null key.
type ptrString struct{}

func (ptrString) Serialize(_ string, v *string) ([]byte, error) { return []byte(*v), nil }
func (ptrString) Deserialize(_ string, b []byte) (*string, error) {
	v := string(b)
	return &v, nil
}
