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

// Partition time, as an extractor sees it, is per partition the largest
// timestamp of the records processed so far (unknown before the first,
// and again after DropBuffered), as Kafka Streams' RecordQueue keeps it;
// records are picked across partitions by their extracted timestamps.
func TestPartitionTimeAndExtractedOrder(t *testing.T) {
	type call struct {
		topic    string
		offset   int64
		partTime int64 // -1: unknown
	}
	var calls []call
	// The extractor reads the timestamp from the value's first byte.
	extract := func(rec topology.SourceRecord, partitionTime time.Time) time.Time {
		pt := int64(-1)
		if !partitionTime.IsZero() {
			pt = partitionTime.UnixMilli()
		}
		calls = append(calls, call{rec.Topic, rec.Offset, pt})
		return time.UnixMilli(int64(rec.Value[0]))
	}
	b := topology.NewBuilder()
	topology.SourceTopics(b, []string{"left", "right"}, serde.String(), serde.Bytes(), topology.WithTimestampExtractor(extract)).
		WithSerdes(nil, serde.Bytes()).To("merged")
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	var out []*kgo.Record
	tk, err := task.New(task.Config{
		ID: processor.TaskID{Partition: 0}, ApplicationID: "app", Spec: task.SpecsOf(top, "app")[0],
		Backends: map[string]state.Backend{},
		Output:   func(r *kgo.Record) { out = append(out, r) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tk.Init(); err != nil {
		t.Fatal(err)
	}
	defer tk.Close()
	// The records' own timestamps (100 + offset) would order them
	// otherwise.
	r := func(topic string, offset int64, ts byte) *kgo.Record {
		return &kgo.Record{Topic: topic, Offset: offset, Key: []byte("k"), Value: []byte{ts}, Timestamp: time.UnixMilli(100 + offset)}
	}
	tk.Add([]*kgo.Record{r("left", 0, 5), r("left", 1, 3), r("left", 2, 7)})
	tk.Add([]*kgo.Record{r("right", 0, 1), r("right", 1, 9)})
	if _, err := tk.Process(100); err != nil {
		t.Fatal(err)
	}
	var order []byte
	for _, o := range out {
		order = append(order, o.Value[0])
		if o.Timestamp.UnixMilli() != int64(o.Value[0]) {
			t.Errorf("output %d stamped %v, want its extracted timestamp", o.Value[0], o.Timestamp.UnixMilli())
		}
	}
	// Heads compared: left 5 vs right 1 -> 1; 5 vs 9 -> 5; 3 vs 9 -> 3;
	// 7 vs 9 -> 7; then 9.
	if want := []byte{1, 5, 3, 7, 9}; string(order) != string(want) {
		t.Errorf("processed %v, want %v", order, want)
	}
	partTimes := map[string]int64{}
	for _, c := range calls {
		partTimes[c.topic+"@"+string(rune('0'+c.offset))] = c.partTime
	}
	want := map[string]int64{"left@0": -1, "left@1": 5, "left@2": 5, "right@0": -1, "right@1": 1}
	if len(calls) != len(want) {
		t.Errorf("extractor called %d times, want once per record: %v", len(calls), calls)
	}
	for k, v := range want {
		if partTimes[k] != v {
			t.Errorf("partition time given for %s = %d, want %d", k, partTimes[k], v)
		}
	}
	if got := tk.StreamTime().UnixMilli(); got != 9 {
		t.Errorf("stream time = %d, want the largest extracted timestamp 9", got)
	}

	// DropBuffered forgets the partition time with the records.
	calls = nil
	tk.Add([]*kgo.Record{r("left", 3, 8)})
	tk.DropBuffered()
	tk.Add([]*kgo.Record{r("left", 3, 8)})
	if _, err := tk.Process(100); err != nil {
		t.Fatal(err)
	}
	if len(calls) != 1 || calls[0].partTime != -1 {
		t.Errorf("after DropBuffered the extractor saw %v, want one call with no partition time", calls)
	}
}
