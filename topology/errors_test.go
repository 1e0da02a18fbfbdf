package topology_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddystream/eddy/eddytest"
	"github.com/eddystream/eddy/internal/task"
	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/topology"
)

// failing doubles values and fails on negative ones.
func failing(t *testing.T) *topology.Topology {
	t.Helper()
	b := topology.NewBuilder()
	src := topology.Source(b, "in", serde.String(), serde.Int64())
	topology.Process(src, func() processorOf { return &doubler{} }, nil).WithSerdes(serde.String(), serde.Int64()).To("out")
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return top
}

func TestProcessingErrorFailsByDefault(t *testing.T) {
	d, err := eddytest.New(failing(t))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	in := eddytest.NewInputTopic(d, "in", serde.String(), serde.Int64())
	if err := in.Pipe("a", 1); err != nil {
		t.Fatal(err)
	}
	err = in.Pipe("b", -1)
	var pe *task.ProcessingError
	if !errors.As(err, &pe) || pe.Topic != "in" || pe.Offset != 1 || !strings.Contains(err.Error(), "negative") {
		t.Fatalf("err = %v, want a ProcessingError for in-0@1", err)
	}
}

func TestSkippedRecordsGoToTheDeadLetterTopic(t *testing.T) {
	d, err := eddytest.New(failing(t), eddytest.WithSkipOnProcessingError(), eddytest.WithSkipOnDeserializationError(), eddytest.WithDeadLetterTopic("dlq"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	in := eddytest.NewInputTopic(d, "in", serde.String(), serde.Int64())
	for _, v := range []int64{1, -5, 2} {
		if err := in.Pipe("k", v); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.PipeRaw("in", []byte("bad"), []byte{1}, d.Now(), kgo.RecordHeader{Key: "trace", Value: []byte("t1")}); err != nil {
		t.Fatal(err)
	}
	out, _ := eddytest.NewOutputTopic(d, "out", serde.String(), serde.Int64()).ReadKeyValues()
	if len(out) != 2 || out[1].Value != 4 {
		t.Errorf("out = %v, want the doubled good records", out)
	}
	if d.Skipped() != 2 {
		t.Errorf("skipped = %d, want 2", d.Skipped())
	}
	dead := d.RawOutput("dlq")
	if len(dead) != 2 {
		t.Fatalf("dead letters = %d, want 2", len(dead))
	}
	headers := func(r *kgo.Record) map[string]string {
		m := map[string]string{}
		for _, h := range r.Headers {
			m[h.Key] = string(h.Value)
		}
		return m
	}
	h := headers(dead[0])
	if h[task.HeaderErrorKind] != "processing" || h[task.HeaderSourceTopic] != "in" || h[task.HeaderSourcePartition] != "0" || h[task.HeaderSourceOffset] != "1" ||
		!strings.Contains(h[task.HeaderErrorMessage], "negative") {
		t.Errorf("processing dead letter headers = %v", h)
	}
	if v, _ := serde.Int64().Deserialize("in", dead[0].Value); v != -5 {
		t.Errorf("dead letter value = %d, want the original -5", v)
	}
	h = headers(dead[1])
	if h[task.HeaderErrorKind] != "deserialization" || h[task.HeaderSourceOffset] != "3" || h["trace"] != "t1" || string(dead[1].Key) != "bad" {
		t.Errorf("deserialization dead letter = key %q headers %v (original headers must be kept)", dead[1].Key, h)
	}
}
