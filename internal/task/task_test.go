package task_test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddystream/eddy/internal/task"
	"github.com/eddystream/eddy/processor"
	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/state"
	"github.com/eddystream/eddy/topology"
)

// newTask builds the single task of a topology that merges two topics.
func newTask(t *testing.T, out *[]*kgo.Record) *task.Task {
	t.Helper()
	b := topology.NewBuilder()
	topology.SourceTopics(b, []string{"left", "right"}, serde.String(), serde.String()).To("merged")
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	spec := task.SpecsOf(top, "app")[0]
	tk, err := task.New(task.Config{
		ID: processor.TaskID{Partition: 3}, ApplicationID: "app", Spec: spec,
		Backends: map[string]state.Backend{},
		Output:   func(r *kgo.Record) { *out = append(*out, r) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tk.Init(); err != nil {
		t.Fatal(err)
	}
	return tk
}

func rec(topic string, offset int64, ts int64) *kgo.Record {
	return &kgo.Record{Topic: topic, Partition: 3, Offset: offset, Value: []byte(topic), Key: []byte{byte('0' + ts)}, Timestamp: time.UnixMilli(ts)}
}

// A task picks, across its input partitions, the queued record with the
// smallest timestamp; each partition stays in offset order.
func TestProcessPicksSmallestTimestampAcrossPartitions(t *testing.T) {
	var out []*kgo.Record
	tk := newTask(t, &out)
	defer tk.Close()
	tk.Add([]*kgo.Record{rec("left", 10, 1), rec("left", 11, 4), rec("left", 12, 5)})
	tk.Add([]*kgo.Record{rec("right", 20, 2), rec("right", 21, 3), rec("right", 22, 6)})
	if tk.Buffered() != 6 {
		t.Fatalf("Buffered = %d", tk.Buffered())
	}
	n, err := tk.Process(4)
	if err != nil || n != 4 {
		t.Fatalf("Process(4) = %d, %v", n, err)
	}
	if _, err := tk.Process(100); err != nil {
		t.Fatal(err)
	}
	var order string
	for _, r := range out {
		order += string(r.Key)
	}
	if order != "123456" {
		t.Errorf("processed in timestamp order %q, want 123456", order)
	}
	if got := tk.StreamTime(); !got.Equal(time.UnixMilli(6)) {
		t.Errorf("stream time = %v", got)
	}
	offs := tk.Offsets()
	if offs[task.TopicPartition{Topic: "left", Partition: 3}] != 13 || offs[task.TopicPartition{Topic: "right", Partition: 3}] != 23 {
		t.Errorf("offsets to commit = %v, want left 13, right 23", offs)
	}
}

func TestRecordOfAnUnknownTopicFails(t *testing.T) {
	var out []*kgo.Record
	tk := newTask(t, &out)
	defer tk.Close()
	tk.Add([]*kgo.Record{rec("elsewhere", 0, 1)})
	if _, err := tk.Process(1); err == nil {
		t.Fatal("a record of a topic the task does not read was processed")
	}
}

func TestDropBuffered(t *testing.T) {
	var out []*kgo.Record
	tk := newTask(t, &out)
	defer tk.Close()
	tk.Add([]*kgo.Record{rec("left", 0, 1), rec("right", 0, 2)})
	if n := tk.DropBuffered(); n != 2 || tk.Buffered() != 0 {
		t.Fatalf("DropBuffered = %d, Buffered = %d", n, tk.Buffered())
	}
	if n, _ := tk.Process(10); n != 0 || len(out) != 0 {
		t.Fatal("dropped records were processed")
	}
}
