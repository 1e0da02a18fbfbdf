package topology_test

import (
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/eddystream/eddy/eddytest"
	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/topology"
)

// row is one record of a table's topic: a nil key or value is a null.
type row struct {
	key, value *string
	ts         int64 // Unix ms
}

func s(v string) *string { return &v }

// upd is an update of key k to value v at ts; del a tombstone of k.
func upd(k, v string, ts int64) row { return row{s(k), s(v), ts} }
func del(k string, ts int64) row    { return row{s(k), nil, ts} }

func bytesOf(p *string) []byte {
	if p == nil {
		return nil
	}
	return []byte(*p)
}

// runTable builds a topology with build, pipes rows into topic "in" and
// returns the driver.
func runTable(t *testing.T, build func(b *topology.Builder), rows []row) *eddytest.Driver {
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
		if err := d.PipeRaw("in", bytesOf(r.key), bytesOf(r.value), time.UnixMilli(r.ts)); err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
	}
	return d
}

// outputs reads topic as "key=value@ts" lines, "key=null@ts" for a
// tombstone.
func outputs(t *testing.T, d *eddytest.Driver, topic string) []string {
	t.Helper()
	var out []string
	for _, r := range d.RawOutput(topic) {
		v := "null"
		if r.Value != nil {
			v = string(r.Value)
		}
		out = append(out, fmt.Sprintf("%s=%s@%d", r.Key, v, r.Timestamp.UnixMilli()))
	}
	return out
}

// A table read from a topic applies updates and tombstones in offset
// order (an out-of-order timestamp included, as Kafka Streams' KTableSource
// over a key-value store) and forwards each with its record's timestamp;
// ToStream turns deletions into tombstones, including the deletion of a
// key the table never had, as Kafka Streams does without a cache. A
// tombstone never reaches the value serde (JSON would fail on it), and a
// record with a null key is dropped and counted.
func TestTableFromTopic(t *testing.T) {
	d := runTable(t, func(b *topology.Builder) {
		topology.TableFrom(b, "in", serde.String(), serde.JSON[int](), topology.StoreName("t")).ToStream().To("out")
	}, []row{
		upd("a", "1", 10),
		upd("b", "2", 20),
		upd("a", "3", 5), // older than the value it replaces: applied all the same
		del("a", 30),
		del("c", 40), // never present
		{nil, s("9"), 50},
		upd("b", "4", 60),
	})
	want := []string{"a=1@10", "b=2@20", "a=3@5", "a=null@30", "c=null@40", "b=4@60"}
	if got := outputs(t, d, "out"); !slices.Equal(got, want) {
		t.Errorf("out = %q, want %q", got, want)
	}
	if got := d.DroppedRecords("null_key"); got != 1 {
		t.Errorf("dropped for a null key: %d, want 1", got)
	}
	st, err := eddytest.KeyValueStore[string, int](d, "t")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := st.Get("a"); ok || err != nil {
		t.Errorf("store a: present %v, %v; want deleted", ok, err)
	}
	if v, ok, err := st.Get("b"); v != 4 || !ok || err != nil {
		t.Errorf("store b = %d, %v, %v; want 4", v, ok, err)
	}
	// The store is logged: the tombstone deletes a's changelog entry.
	log := d.RawOutput("eddytest-t-changelog")
	if len(log) != 6 || string(log[3].Key) != "a" || log[3].Value != nil {
		t.Errorf("changelog = %v, want 6 records, the fourth a tombstone of a", log)
	}
}

// A table read from a compacted topic is the same whether the topic
// still holds every update or has been compacted to the last record per
// key (tombstones removed): the table is the latest value per key.
func TestTableFromCompactedTopic(t *testing.T) {
	full := []row{upd("a", "1", 1), upd("b", "1", 2), upd("a", "2", 3), del("b", 4), upd("c", "1", 5), upd("a", "3", 6)}
	compacted := []row{upd("c", "1", 5), upd("a", "3", 6)}
	contents := func(rows []row) map[string]string {
		d := runTable(t, func(b *topology.Builder) {
			topology.TableFrom(b, "in", serde.String(), serde.String(), topology.StoreName("t")).ToStream().To("out")
		}, rows)
		st, err := eddytest.KeyValueStore[string, string](d, "t")
		if err != nil {
			t.Fatal(err)
		}
		it, err := st.All()
		if err != nil {
			t.Fatal(err)
		}
		defer it.Close()
		m := map[string]string{}
		for it.Next() {
			m[it.Key()] = it.Value()
		}
		return m
	}
	want := map[string]string{"a": "3", "c": "1"}
	if got := contents(full); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("from the full topic: %v, want %v", got, want)
	}
	if got := contents(compacted); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("from the compacted topic: %v, want %v", got, want)
	}
}

// Table.Filter follows Kafka Streams' KTableFilter. Over a table whose
// old values are known (a named store), a value that stops matching
// forwards a deletion and an update where neither the old nor the new
// value matches forwards nothing. Over a source table without a named
// store, which Kafka Streams does not materialize and so has no old
// values, every update that does not match forwards a deletion.
func TestTableFilter(t *testing.T) {
	rows := []row{
		upd("a", "5", 1),  // does not match
		upd("a", "15", 2), // matches
		upd("a", "3", 3),  // stops matching
		upd("a", "2", 4),  // still not
		upd("b", "20", 5), // matches
		del("b", 6),       // deleted
		del("c", 7),       // never present
	}
	big := func(_ string, v string) bool { n, _ := strconv.Atoi(v); return n >= 10 }
	for _, tc := range []struct {
		name string
		opts []topology.Option
		want []string
	}{
		{"old values (named store)", []topology.Option{topology.StoreName("t")},
			[]string{"a=15@2", "a=null@3", "b=20@5", "b=null@6"}},
		{"no old values", nil,
			[]string{"a=null@1", "a=15@2", "a=null@3", "a=null@4", "b=20@5", "b=null@6", "c=null@7"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := runTable(t, func(b *topology.Builder) {
				topology.TableFrom(b, "in", serde.String(), serde.String(), tc.opts...).Filter(big).ToStream().To("out")
			}, rows)
			if got := outputs(t, d, "out"); !slices.Equal(got, tc.want) {
				t.Errorf("out = %q, want %q", got, tc.want)
			}
		})
	}
}

// Filter after MapTableValues sees the mapped old values: the mapping
// passes them on when a downstream needs them (Kafka Streams'
// KTableMapValues.enableSendingOldValues). A deletion stays a deletion.
func TestTableMapValuesThenFilter(t *testing.T) {
	d := runTable(t, func(b *topology.Builder) {
		tbl := topology.TableFrom(b, "in", serde.String(), serde.String(), topology.StoreName("t"))
		doubled := topology.MapTableValues(tbl, func(v string) string { return v + v }, serde.String())
		doubled.ToStream().To("mapped")
		doubled.Filter(func(_ string, v string) bool { return len(v) >= 4 }).ToStream().To("out")
	}, []row{upd("a", "1", 1), upd("a", "22", 2), upd("a", "3", 3), upd("a", "4", 4), del("a", 5)})
	if got, want := outputs(t, d, "mapped"), []string{"a=11@1", "a=2222@2", "a=33@3", "a=44@4", "a=null@5"}; !slices.Equal(got, want) {
		t.Errorf("mapped = %q, want %q", got, want)
	}
	if got, want := outputs(t, d, "out"), []string{"a=2222@2", "a=null@3"}; !slices.Equal(got, want) {
		t.Errorf("out = %q, want %q", got, want)
	}
}
