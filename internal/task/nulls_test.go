package task_test

import (
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddystream/eddy/internal/task"
	"github.com/eddystream/eddy/processor"
	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/state"
	"github.com/eddystream/eddy/topology"
)

// strict is a string serde that cannot represent null: it fails when
// given nil, as a serde that follows no null contract would.
type strict struct{ calls *int }

func (s strict) Serialize(_ string, v string) ([]byte, error) {
	*s.calls++
	return []byte(v), nil
}

func (s strict) Deserialize(_ string, b []byte) (string, error) {
	*s.calls++
	if b == nil {
		return "", errors.New("strict serde called with null")
	}
	return string(b), nil
}

// startTask builds task 0 of sub-topology sub of top with the drops it
// reports collected in drops.
func startTask(t *testing.T, top *topology.Topology, sub int, out *[]*kgo.Record, drops *[]task.Drop) *task.Task {
	t.Helper()
	spec := task.SpecsOf(top, "app")[sub]
	backends := map[string]state.Backend{}
	for _, s := range spec.Stores {
		backends[s.Name] = state.NewMemoryBackend()
	}
	tk, err := task.New(task.Config{
		ID: processor.TaskID{Subtopology: sub}, ApplicationID: "app", Spec: spec, Backends: backends,
		Output: func(r *kgo.Record) { *out = append(*out, r) },
		OnDrop: func(d task.Drop) { *drops = append(*drops, d) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tk.Close() })
	if err := tk.Init(); err != nil {
		t.Fatal(err)
	}
	return tk
}

// A null key or value never reaches a serde: sources and sinks pass it
// through as null themselves.
func TestNullsNeverReachTheSerdes(t *testing.T) {
	var calls int
	s := strict{&calls}
	b := topology.NewBuilder()
	topology.Source(b, "in", serde.Serde[string](s), serde.Serde[string](s)).To("out")
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	var out []*kgo.Record
	var drops []task.Drop
	tk := startTask(t, top, 0, &out, &drops)
	tk.Add([]*kgo.Record{
		{Topic: "in", Offset: 0, Key: nil, Value: []byte("v"), Timestamp: time.UnixMilli(1)},
		{Topic: "in", Offset: 1, Key: []byte("k"), Value: nil, Timestamp: time.UnixMilli(1)},
		{Topic: "in", Offset: 2, Key: nil, Value: nil, Timestamp: time.UnixMilli(1)},
	})
	if _, err := tk.Process(10); err != nil {
		t.Fatalf("Process: %v", err)
	}
	if calls != 4 {
		t.Errorf("the serdes were called %d times, want 4 (once each way for the non-null key and value)", calls)
	}
	if len(out) != 3 || out[0].Key != nil || out[1].Value != nil || out[2].Key != nil || out[2].Value != nil {
		t.Errorf("outputs %v: the nulls did not stay null", out)
	}
}

// Grouping after a key change drops records with a null key or value
// before they are written to the repartition topic, and reports each drop
// with the node and the input record.
func TestRepartitionForAnAggregationDropsNulls(t *testing.T) {
	b := topology.NewBuilder()
	src := topology.Source(b, "in", serde.String(), serde.Bytes())
	topology.SelectKey(src, func(k string, _ []byte) []byte {
		if k == "none" {
			return nil
		}
		return append([]byte{}, k...)
	}, topology.Named("rekey")).WithSerdes(serde.Bytes(), nil).
		GroupByKey(topology.Named("g")).Count(topology.StoreName("counts"))
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	var out []*kgo.Record
	var drops []task.Drop
	tk := startTask(t, top, 0, &out, &drops)
	ts := time.UnixMilli(1)
	tk.Add([]*kgo.Record{
		{Topic: "in", Offset: 7, Key: []byte("a"), Value: []byte("1"), Timestamp: ts},
		{Topic: "in", Offset: 8, Key: []byte("none"), Value: []byte("2"), Timestamp: ts},
		{Topic: "in", Offset: 9, Key: []byte("b"), Value: nil, Timestamp: ts},
		{Topic: "in", Offset: 10, Key: []byte(""), Value: []byte{}, Timestamp: ts},
	})
	if _, err := tk.Process(10); err != nil {
		t.Fatalf("Process: %v", err)
	}
	var written []string
	for _, r := range out {
		if r.Topic != "app-g-repartition" {
			t.Errorf("record for %s, want only the repartition topic", r.Topic)
		}
		written = append(written, string(r.Key)+"="+string(r.Value))
	}
	if len(written) != 2 || written[0] != "a=1" || written[1] != "=" {
		t.Errorf("written to the repartition topic: %q, want [a=1 =]", written)
	}
	want := []task.Drop{
		{Reason: task.DropNullKey, Node: "g-repartition-sink", Origin: processor.Origin{Topic: "in", Offset: 8}, HasOrigin: true},
		{Reason: task.DropNullValue, Node: "g-repartition-sink", Origin: processor.Origin{Topic: "in", Offset: 9}, HasOrigin: true},
	}
	if len(drops) != len(want) || drops[0] != want[0] || drops[1] != want[1] {
		t.Errorf("drops = %+v, want %+v", drops, want)
	}
}
