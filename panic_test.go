package eddy_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddystream/eddy"
	"github.com/eddystream/eddy/processor"
	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/topology"
)

// hangLimit is how long a test lets Run take to fail, and then to return
// after its context ends, before it reports a hang. It detects a hang; no
// test expects Run to take anywhere near it.
const hangLimit = 60 * time.Second

// runUntilReturn runs app until Run returns by itself and returns its
// error. A Run that does not return within hangLimit is cancelled; one
// that does not return after that either fails the test as hung.
func runUntilReturn(t *testing.T, app *eddy.App) error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- app.Run(ctx) }()
	select {
	case err := <-errc:
		return err
	case <-time.After(hangLimit):
	}
	cancel()
	select {
	case err := <-errc:
		t.Fatalf("Run did not stop by itself within %v (it returned %v once cancelled)", hangLimit, err)
	case <-time.After(hangLimit):
		t.Fatalf("Run hung: it neither failed within %v nor returned within %v of its context's end", hangLimit, hangLimit)
	}
	return nil
}

// panicky is a topology from "in" to "out" that panics, where given, on
// the value "boom".
type panicky struct {
	name  string
	build func(src topology.Stream[string, string]) topology.Stream[string, string]
	// record says whether the panic happens while processing a record
	// (rather than in a punctuator).
	record bool
}

func panickyTopologies() []panicky {
	return []panicky{
		{"MapValues", func(s topology.Stream[string, string]) topology.Stream[string, string] {
			return topology.MapValues(s, func(v string) string {
				if v == "boom" {
					panic("poison value")
				}
				return v
			})
		}, true},
		{"Processor", func(s topology.Stream[string, string]) topology.Stream[string, string] {
			return topology.Process(s, processor.Func(func(ctx processor.Context[string, string], r processor.Record[string, string]) error {
				if r.Value == "boom" {
					var none []string
					_ = none[len(r.Value)] // index out of range: a runtime error, not a string
				}
				return ctx.Forward(r)
			}), nil).WithSerdes(serde.String(), serde.String())
		}, true},
		{"Serde", func(s topology.Stream[string, string]) topology.Stream[string, string] {
			return s.WithSerdes(serde.String(), panickySerde{})
		}, true},
		{"WallClockPunctuator", func(s topology.Stream[string, string]) topology.Stream[string, string] {
			return topology.Process(s, func() processor.Processor[string, string, string, string] {
				return &punctuatingProcessor{typ: processor.WallClockTime}
			}, nil).WithSerdes(serde.String(), serde.String())
		}, false},
		{"StreamTimePunctuator", func(s topology.Stream[string, string]) topology.Stream[string, string] {
			return topology.Process(s, func() processor.Processor[string, string, string, string] {
				return &punctuatingProcessor{typ: processor.StreamTime}
			}, nil).WithSerdes(serde.String(), serde.String())
		}, false},
	}
}

// panickySerde is a string serde whose serializer panics on "boom".
type panickySerde struct{}

func (panickySerde) Serialize(topic string, v string) ([]byte, error) {
	if v == "boom" {
		panic("serde: poison value")
	}
	return []byte(v), nil
}

func (panickySerde) Deserialize(topic string, b []byte) (string, error) { return string(b), nil }

// punctuatingProcessor forwards records and arms, after "boom", a
// punctuator that panics.
type punctuatingProcessor struct {
	typ processor.PunctuationType
	ctx processor.Context[string, string]
}

func (p *punctuatingProcessor) Init(ctx processor.Context[string, string]) error {
	p.ctx = ctx
	return nil
}

func (p *punctuatingProcessor) Process(r processor.Record[string, string]) error {
	if r.Value == "boom" {
		_, err := p.ctx.Schedule(time.Millisecond, p.typ, func(time.Time) error { panic("punctuator: poison") })
		if err != nil {
			return err
		}
	}
	return p.ctx.Forward(r)
}

func (p *punctuatingProcessor) Close() error { return nil }

// TestPanicInUserCodeFailsRun: a panic in a DSL callback, a processor, a
// serde or a punctuator ends Run with an error that names the task, the
// record and the panic, under both guarantees; it used to deadlock the
// worker (Run never returned, even when cancelled).
func TestPanicInUserCodeFailsRun(t *testing.T) {
	for _, g := range []eddy.Guarantee{eddy.AtLeastOnce, eddy.ExactlyOnce} {
		for _, tc := range panickyTopologies() {
			t.Run(g.String()+"/"+tc.name, func(t *testing.T) {
				addrs := cluster(t, kfake.SeedTopics(1, "in", "out"))
				produceValues(t, addrs, "in", "ok", "boom", "ok2", "ok3")
				// Time moves on for the stream-time punctuator.
				produceValues(t, addrs, "in", "later")
				b := topology.NewBuilder()
				tc.build(topology.Source(b, "in", serde.String(), serde.String())).To("out")
				top, err := b.Build()
				if err != nil {
					t.Fatal(err)
				}
				err = runUntilReturn(t, newApp(t, top, addrs, "panic", eddy.ProcessingGuarantee(g)))
				var pe *eddy.PanicError
				if !errors.As(err, &pe) {
					t.Fatalf("Run = %v, want an error wrapping a PanicError", err)
				}
				if len(pe.Stack) == 0 {
					t.Error("the PanicError has no stack")
				}
				if !strings.Contains(err.Error(), "task 0_0") || !strings.Contains(err.Error(), "panic: ") {
					t.Errorf("Run = %q, want it to name task 0_0 and the panic", err)
				}
				var proc *eddy.ProcessingError
				if tc.record {
					if !errors.As(err, &proc) || proc.Topic != "in" || proc.Partition != 0 || proc.Offset != 1 {
						t.Errorf("Run = %v, want a ProcessingError for in-0@1", err)
					}
				} else if !strings.Contains(err.Error(), "punctuator") {
					t.Errorf("Run = %q, want it to name the punctuator", err)
				}
			})
		}
	}
}

// TestPanicUnderSkipHandlerGoesToDeadLetter: under the skip handler, the
// record a panic happened on goes to the dead-letter topic with the panic
// in its headers, and the records after it are processed.
func TestPanicUnderSkipHandlerGoesToDeadLetter(t *testing.T) {
	for _, g := range []eddy.Guarantee{eddy.AtLeastOnce, eddy.ExactlyOnce} {
		t.Run(g.String(), func(t *testing.T) {
			addrs := cluster(t, kfake.SeedTopics(1, "in", "out", "dlq"))
			produceValues(t, addrs, "in", "ok", "boom", "ok2")
			tc := panickyTopologies()[0]
			b := topology.NewBuilder()
			tc.build(topology.Source(b, "in", serde.String(), serde.String())).To("out")
			top, err := b.Build()
			if err != nil {
				t.Fatal(err)
			}
			app := newApp(t, top, addrs, "panic-skip", eddy.ProcessingGuarantee(g),
				eddy.OnProcessingError(eddy.SkipOnProcessingError), eddy.DeadLetterTopic("dlq"))
			ctx, cancel := context.WithTimeout(context.Background(), hangLimit)
			defer cancel()
			errc := make(chan error, 1)
			go func() { errc <- app.Run(ctx) }()
			dead, out := readDeadAndOut(t, ctx, addrs, 1, 2)
			app.Close()
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			if string(dead[0].Value) != "boom" || string(out[0].Value) != "ok" || string(out[1].Value) != "ok2" {
				t.Fatalf("dead letter %q, outputs %q %q", dead[0].Value, out[0].Value, out[1].Value)
			}
			h := map[string]string{}
			for _, x := range dead[0].Headers {
				h[x.Key] = string(x.Value)
			}
			if h[eddy.HeaderErrorKind] != "processing" || !strings.Contains(h[eddy.HeaderErrorMessage], "panic: poison value") || h[eddy.HeaderSourceOffset] != "1" {
				t.Errorf("dead letter headers = %v", h)
			}
			if n := app.SkippedRecords(); n != 1 {
				t.Errorf("SkippedRecords = %d, want 1", n)
			}
		})
	}
}

// TestPunctuatorPanicUnderSkipHandlerGoesOn: a punctuator's panic under
// the skip handler is logged and skipped, as Kafka Streams hands
// punctuator exceptions to its processing exception handler, and the
// records keep flowing.
func TestPunctuatorPanicUnderSkipHandlerGoesOn(t *testing.T) {
	addrs := cluster(t, kfake.SeedTopics(1, "in", "out"))
	produceValues(t, addrs, "in", "ok", "boom", "ok2")
	b := topology.NewBuilder()
	panickyTopologies()[3].build(topology.Source(b, "in", serde.String(), serde.String())).To("out")
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	app := newApp(t, top, addrs, "punct-skip", eddy.OnProcessingError(eddy.SkipOnProcessingError))
	ctx, cancel := context.WithTimeout(context.Background(), hangLimit)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- app.Run(ctx) }()
	readDeadAndOut(t, ctx, addrs, 0, 3)
	// The punctuator fires every millisecond: the records produced now
	// are processed while it panics again and again.
	produceValues(t, addrs, "in", "ok3")
	readDeadAndOut(t, ctx, addrs, 0, 4)
	app.Close()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func produceValues(t *testing.T, addrs []string, topic string, values ...string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for _, v := range values {
		recs = append(recs, &kgo.Record{Topic: topic, Value: []byte(v)})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// readDeadAndOut reads committed records of "dlq" and "out" from the
// start until it has at least the numbers given, failing when ctx ends.
func readDeadAndOut(t *testing.T, ctx context.Context, addrs []string, wantDead, wantOut int) (dead, out []*kgo.Record) {
	t.Helper()
	topics := []string{"out"}
	if wantDead > 0 {
		topics = append(topics, "dlq")
	}
	reader, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	for len(dead) < wantDead || len(out) < wantOut {
		fs := reader.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d dead letters and %d outputs, want %d and %d", len(dead), len(out), wantDead, wantOut)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Topic == "dlq" {
				dead = append(dead, r)
			} else {
				out = append(out, r)
			}
		})
	}
	return dead, out
}
