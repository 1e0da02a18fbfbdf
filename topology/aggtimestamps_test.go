package topology_test

import (
	"encoding/binary"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddystream/eddy/eddytest"
	"github.com/eddystream/eddy/internal/task"
	"github.com/eddystream/eddy/processor"
	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/state"
	"github.com/eddystream/eddy/topology"
)

type stampedInput struct {
	key string
	v   int64
	ts  int64 // Unix ms
}

// outOfOrder is input whose timestamps go back and forth within a key.
var outOfOrder = []stampedInput{
	{"a", 1, 10}, {"a", 2, 5}, {"b", 3, 3}, {"a", 4, 20}, {"a", 5, 15}, {"b", 6, 1},
}

// An aggregate's result carries the largest timestamp of the records
// folded into it (Kafka Streams' KStreamAggregate and KStreamReduce), and
// table operations downstream keep it.
func TestAggregateOutputTimestamps(t *testing.T) {
	// wantTS is each output's timestamp for outOfOrder: the running max per
	// key.
	wantTS := []int64{10, 10, 3, 20, 20, 3}
	for _, tc := range []struct {
		name   string
		build  func(s topology.Stream[string, int64]) topology.Table[string, int64]
		values []int64
	}{
		{"count", func(s topology.Stream[string, int64]) topology.Table[string, int64] {
			return s.GroupByKey().Count(topology.StoreName("agg"))
		}, []int64{1, 2, 1, 3, 4, 2}},
		{"reduce", func(s topology.Stream[string, int64]) topology.Table[string, int64] {
			return s.GroupByKey().Reduce(func(a, v int64) int64 { return a + v }, topology.StoreName("agg"))
		}, []int64{1, 3, 3, 7, 12, 9}},
		{"aggregate", func(s topology.Stream[string, int64]) topology.Table[string, int64] {
			return topology.Aggregate(s.GroupByKey(), func() int64 { return 100 }, func(_ string, v, a int64) int64 { return a + v }, serde.Int64(), topology.StoreName("agg"))
		}, []int64{101, 103, 103, 107, 112, 109}},
		{"count after a key change (through a repartition topic)", func(s topology.Stream[string, int64]) topology.Table[string, int64] {
			return topology.GroupBy(s, func(k string, _ int64) string { return k }, serde.String()).
				Count(topology.StoreName("agg"))
		}, []int64{1, 2, 1, 3, 4, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := topology.NewBuilder()
			table := tc.build(topology.Source(b, "in", serde.String(), serde.Int64()))
			table.ToStream().To("out")
			table.Filter(func(_ string, n int64) bool { return n%2 == 0 }).ToStream().To("filtered")
			topology.MapTableValues(table, func(n int64) int64 { return -n }, serde.Int64()).ToStream().To("mapped")
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
			for _, r := range outOfOrder {
				if err := in.PipeAt(r.key, r.v, time.UnixMilli(r.ts)); err != nil {
					t.Fatal(err)
				}
			}
			values, ts := readInt64s(t, d, "out")
			if !slices.Equal(values, tc.values) || !slices.Equal(ts, wantTS) {
				t.Errorf("out = %v at %v, want %v at %v", values, ts, tc.values, wantTS)
			}
			// Filter forwards the even ones, and a deletion (a tombstone,
			// read as 0) when a key's even value turns odd, as Kafka
			// Streams' KTableFilter with the old values an aggregation
			// sends; all keep their timestamps.
			var wantFiltered, wantFilteredTS []int64
			prev := map[string]int64{}
			for i, v := range tc.values {
				key := outOfOrder[i].key
				old, had := prev[key]
				prev[key] = v
				switch {
				case v%2 == 0:
					wantFiltered, wantFilteredTS = append(wantFiltered, v), append(wantFilteredTS, wantTS[i])
				case had && old%2 == 0:
					wantFiltered, wantFilteredTS = append(wantFiltered, 0), append(wantFilteredTS, wantTS[i])
				}
			}
			if values, ts := readInt64s(t, d, "filtered"); !slices.Equal(values, wantFiltered) || !slices.Equal(ts, wantFilteredTS) {
				t.Errorf("filtered = %v at %v, want %v at %v", values, ts, wantFiltered, wantFilteredTS)
			}
			if _, ts := readInt64s(t, d, "mapped"); !slices.Equal(ts, wantTS) {
				t.Errorf("mapped timestamps = %v, want %v", ts, wantTS)
			}
			// The changelog records are stamped with the aggregate's
			// timestamp and carry it as the value's prefix.
			log := d.RawOutput("eddytest-agg-changelog")
			if len(log) != len(outOfOrder) {
				t.Fatalf("%d changelog records, want one per input", len(log))
			}
			for i, r := range log {
				if r.Timestamp.UnixMilli() != wantTS[i] || int64(binary.BigEndian.Uint64(r.Value)) != wantTS[i] {
					t.Errorf("changelog record %d stamped %d with prefix %x, want %d", i, r.Timestamp.UnixMilli(), r.Value[:8], wantTS[i])
				}
			}
			// The Processor API's view reads the values without timestamps.
			st, err := eddytest.KeyValueStore[string, int64](d, "agg")
			if err != nil {
				t.Fatal(err)
			}
			if v, ok, err := st.Get("a"); err != nil || !ok || v != tc.values[4] {
				t.Errorf("store a = %d, %v, %v, want %d", v, ok, err, tc.values[4])
			}
		})
	}
}

func readInt64s(t *testing.T, d *eddytest.Driver, topic string) (values, ts []int64) {
	t.Helper()
	recs, err := eddytest.NewOutputTopic(d, topic, serde.String(), serde.Int64()).ReadRecords()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		values = append(values, r.Value)
		ts = append(ts, r.Timestamp.UnixMilli())
	}
	return values, ts
}

// A store restored from its changelog (the records' bytes copied into a
// fresh backend, as the restorer does) keeps the aggregates' timestamps:
// a late record after the restore is stamped with the restored maximum.
// A value written through the plain view has no timestamp, and the next
// aggregate takes the record's.
func TestAggregateTimestampsSurviveRestore(t *testing.T) {
	b := topology.NewBuilder()
	topology.Source(b, "in", serde.String(), serde.Int64()).GroupByKey().
		Count(topology.StoreName("agg")).ToStream().To("out")
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	spec := task.SpecsOf(top, "app")[0]
	run := func(backend state.Backend, before func(*task.Task), recs ...*kgo.Record) (out, changelog []*kgo.Record) {
		t.Helper()
		tk, err := task.New(task.Config{
			ID: processor.TaskID{}, ApplicationID: "app", Spec: spec,
			Backends: map[string]state.Backend{"agg": backend},
			Output: func(r *kgo.Record) {
				if r.Topic == "out" {
					out = append(out, r)
				} else {
					changelog = append(changelog, r)
				}
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer tk.Close()
		if err := tk.Init(); err != nil {
			t.Fatal(err)
		}
		if before != nil {
			before(tk)
		}
		tk.Add(recs)
		if _, err := tk.Process(len(recs)); err != nil {
			t.Fatal(err)
		}
		tk.FlushChangelog(time.UnixMilli(999_999))
		if err := tk.CommitStores(func(string) (int64, bool) { return 0, false }); err != nil {
			t.Fatal(err)
		}
		return out, changelog
	}
	rec := func(key string, offset, ts int64) *kgo.Record {
		return &kgo.Record{Topic: "in", Offset: offset, Key: []byte(key), Value: []byte("12345678"), Timestamp: time.UnixMilli(ts)}
	}
	_, changelog := run(state.NewMemoryBackend(), nil, rec("a", 0, 50), rec("a", 1, 20))
	if len(changelog) != 1 || changelog[0].Timestamp.UnixMilli() != 50 {
		t.Fatalf("changelog = %v, want one record stamped 50", changelog)
	}

	restored := state.NewMemoryBackend()
	var batch []state.Write
	for _, r := range changelog {
		batch = append(batch, state.Write{Key: r.Key, Value: r.Value})
	}
	if err := restored.Apply(batch); err != nil {
		t.Fatal(err)
	}
	out, _ := run(restored, nil, rec("a", 2, 30))
	if len(out) != 1 || out[0].Timestamp.UnixMilli() != 50 {
		t.Fatalf("after restore, out = %v, want the count stamped with the restored 50", out)
	}

	// Seed "b" through the plain view, as a Processor API user could: the
	// value has no timestamp, so its changelog record gets the commit's
	// time and the next aggregate the record's.
	seeded := state.NewMemoryBackend()
	_, changelog = run(seeded, func(tk *task.Task) {
		typed, _ := tk.TypedStore("agg")
		if err := typed.(state.KeyValueStore[string, int64]).Put("b", 41); err != nil {
			t.Fatal(err)
		}
	})
	if len(changelog) != 1 || changelog[0].Timestamp.UnixMilli() != 999_999 {
		t.Fatalf("changelog = %v, want one record stamped with the commit's time", changelog)
	}
	out, _ = run(seeded, nil, rec("b", 0, 7))
	if len(out) != 1 || out[0].Timestamp.UnixMilli() != 7 || int64(binary.BigEndian.Uint64(out[0].Value)) != 42 {
		t.Fatalf("out = %v, want 42 stamped 7", out)
	}
}
