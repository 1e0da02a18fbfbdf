package topology_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eddystream/eddy/eddytest"
	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/topology"
	"github.com/eddystream/eddy/window"
)

// SuppressUntilWindowCloses forwards each window's final result once the
// stream time passes its end plus the grace period (Kafka Streams'
// untilWindowCloses), with the timestamp of its last update.
func TestSuppressUntilWindowCloses(t *testing.T) {
	size := 10 * time.Second
	b := topology.NewBuilder()
	counts := topology.WindowedBy(topology.Source(b, "in", serde.String(), serde.Int64()).GroupByKey(),
		must(window.TimeWindowsOfSizeAndGrace(size, 5*time.Second))).Count(topology.StoreName("counts"))
	topology.SuppressUntilWindowCloses(counts, topology.BufferConfig{}, topology.Named("finals")).ToStream().To("out")
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(top.Describe(), "finals-store: key-value store") {
		t.Errorf("Describe lacks the buffer store:\n%s", top.Describe())
	}
	d, err := eddytest.New(top)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	pipeTimed(t, d, []timed{{key: "A", ts: 0}, {key: "A", ts: 3000}, {key: "B", ts: 7000}, {key: "A", ts: 12_000}})
	if got := windowedOutput(t, d, "out", size); len(got) != 0 {
		t.Fatalf("before [0,10000) closed at 15000: %q", got)
	}
	pipeTimed(t, d, []timed{{key: "C", ts: 15_000}})
	if got, want := windowedOutput(t, d, "out", size), []string{"A@0/10000=2@3000", "B@0/10000=1@7000"}; !slices.Equal(got, want) {
		t.Fatalf("at 15000:\n got %q\nwant %q", got, want)
	}
	pipeTimed(t, d, []timed{{key: "C", ts: 25_000}})
	if got, want := windowedOutput(t, d, "out", size), []string{"A@10000/20000=1@12000", "C@10000/20000=1@15000"}; !slices.Equal(got, want) {
		t.Fatalf("at 25000:\n got %q\nwant %q", got, want)
	}
}

// countsTable builds a count per key, suppressed by suppress, to "out".
func countsTable(t *testing.T, suppress func(topology.Table[string, int64]) topology.Table[string, int64]) *eddytest.Driver {
	t.Helper()
	b := topology.NewBuilder()
	suppress(topology.Source(b, "in", serde.String(), serde.Int64()).GroupByKey().Count(topology.StoreName("counts"))).ToStream().To("out")
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := eddytest.New(top)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func countsOut(t *testing.T, d *eddytest.Driver) []string {
	t.Helper()
	recs, err := eddytest.NewOutputTopic(d, "out", serde.String(), serde.Int64()).ReadRecords()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		out = append(out, fmt.Sprintf("%s=%d@%d", r.Key, r.Value, r.Timestamp.UnixMilli()))
	}
	return out
}

// SuppressUntilTimeLimit forwards a key's latest value once the limit has
// passed since its first held update; a later update does not restart the
// wait (Kafka Streams' untilTimeLimit).
func TestSuppressUntilTimeLimit(t *testing.T) {
	d := countsTable(t, func(c topology.Table[string, int64]) topology.Table[string, int64] {
		return topology.SuppressUntilTimeLimit(c, 10*time.Second, topology.BufferConfig{})
	})
	pipeTimed(t, d, []timed{{key: "A", ts: 0}, {key: "A", ts: 5000}, {key: "B", ts: 6000}})
	if got := countsOut(t, d); len(got) != 0 {
		t.Fatalf("before the limit: %q", got)
	}
	pipeTimed(t, d, []timed{{key: "C", ts: 10_000}})
	if got, want := countsOut(t, d), []string{"A=2@5000"}; !slices.Equal(got, want) {
		t.Fatalf("at 10000: got %q, want %q", got, want)
	}
	pipeTimed(t, d, []timed{{key: "C", ts: 16_000}})
	if got, want := countsOut(t, d), []string{"B=1@6000"}; !slices.Equal(got, want) {
		t.Fatalf("at 16000: got %q, want %q", got, want)
	}
}

// A full buffer emits its oldest update early when configured so, and
// otherwise fails the task with an error that says why.
func TestSuppressBufferFull(t *testing.T) {
	early := countsTable(t, func(c topology.Table[string, int64]) topology.Table[string, int64] {
		return topology.SuppressUntilTimeLimit(c, time.Hour, topology.BufferConfig{MaxRecords: 2, EmitEarlyWhenFull: true})
	})
	pipeTimed(t, early, []timed{{key: "A", ts: 0}, {key: "B", ts: 1}, {key: "A", ts: 2}, {key: "C", ts: 3}})
	if got, want := countsOut(t, early), []string{"A=2@2"}; !slices.Equal(got, want) {
		t.Fatalf("emit early: got %q, want %q (the oldest held key, A, makes room for C)", got, want)
	}
	strict := countsTable(t, func(c topology.Table[string, int64]) topology.Table[string, int64] {
		return topology.SuppressUntilTimeLimit(c, time.Hour, topology.BufferConfig{MaxBytes: 40})
	})
	in := eddytest.NewInputTopic(strict, "in", serde.String(), serde.Int64())
	var err error
	for i := 0; i < 10 && err == nil; i++ {
		err = in.PipeAt(fmt.Sprint("key-", i), 1, time.UnixMilli(int64(i)))
	}
	if !errors.Is(err, topology.ErrSuppressBufferFull) {
		t.Fatalf("a full strict buffer: %v, want ErrSuppressBufferFull", err)
	}
}

func TestSuppressBuildErrors(t *testing.T) {
	b := topology.NewBuilder()
	counts := topology.Source(b, "in", serde.String(), serde.Int64()).GroupByKey().Count()
	windowed := topology.WindowedBy(topology.Source(b, "in2", serde.String(), serde.Int64()).GroupByKey(), must(window.TimeWindowsOfSizeWithNoGrace(time.Second))).Count()
	topology.SuppressUntilWindowCloses(windowed, topology.BufferConfig{EmitEarlyWhenFull: true}, topology.Named("early")).ToStream().To("out")
	counts.ToStream().To("out2")
	if _, err := b.Build(); err == nil || !strings.Contains(err.Error(), "early") {
		t.Fatalf("EmitEarlyWhenFull with SuppressUntilWindowCloses: %v", err)
	}
}

// The buffer is a logged store: what it holds when the task stops is
// restored from its changelog, and the held updates come out later.
func TestSuppressBufferIsLogged(t *testing.T) {
	b := topology.NewBuilder()
	topology.SuppressUntilTimeLimit(topology.Source(b, "in", serde.String(), serde.Int64()).GroupByKey().Count(),
		time.Minute, topology.BufferConfig{}, topology.Named("held")).ToStream().To("out")
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	its := top.InternalTopics("app")
	if !slices.ContainsFunc(its, func(it topology.InternalTopic) bool { return it.Name == "app-held-store-changelog" }) {
		t.Fatalf("internal topics %+v lack the buffer's changelog", its)
	}
}
