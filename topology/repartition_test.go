package topology_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/eddystream/eddy/eddytest"
	"github.com/eddystream/eddy/processor"
	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/topology"
)

// counter stands for a stateful processor: connected to the store "seen",
// it passes records on.
func counter() processor.Processor[string, int64, string, int64] {
	return processor.Func(func(ctx processor.Context[string, int64], r processor.Record[string, int64]) error {
		return ctx.Forward(r)
	})()
}

// A stateful processor after a key change, with no repartition, is a Build
// error naming it; Repartition or AssumePartitioned make it build, and
// Repartition inserts an internal topic with the partitions asked for.
func TestStatefulProcessAfterAKeyChange(t *testing.T) {
	build := func(mid func(topology.Stream[string, int64]) topology.Stream[string, int64], opts ...topology.Option) (*topology.Topology, error) {
		b := topology.NewBuilder()
		topology.AddKeyValueStore(b, "seen", serde.String(), serde.Int64())
		s := topology.SelectKey(topology.Source(b, "in", serde.String(), serde.Int64()), func(k string, _ int64) string { return strings.ToUpper(k) }).
			WithSerdes(serde.String(), serde.Int64())
		topology.ProcessValues(mid(s), counter, []string{"seen"}, append(opts, topology.Named("count-seen"))...).To("out")
		return b.Build()
	}
	same := func(s topology.Stream[string, int64]) topology.Stream[string, int64] { return s }
	_, err := build(same)
	var ne *topology.NodeError
	if !errors.As(err, &ne) || ne.Node != "count-seen" || !strings.Contains(err.Error(), "Repartition") {
		t.Fatalf("Build = %v, want an error naming count-seen and Repartition", err)
	}
	if _, err := build(same, topology.AssumePartitioned()); err != nil {
		t.Fatalf("with AssumePartitioned: %v", err)
	}
	top, err := build(func(s topology.Stream[string, int64]) topology.Stream[string, int64] {
		return s.Repartition(topology.Named("by-upper"), topology.WithPartitions(4))
	})
	if err != nil {
		t.Fatal(err)
	}
	its := top.InternalTopics("app")
	if len(its) != 2 || its[0].Name != "app-by-upper-repartition" || its[0].Partitions != 4 || its[1].Name != "app-seen-changelog" {
		t.Fatalf("internal topics %+v, want app-by-upper-repartition with 4 partitions and the store's changelog", its)
	}
}

// Repartition keeps records with a null key or value, and what goes
// through it comes out as it went in.
func TestRepartitionKeepsNulls(t *testing.T) {
	b := topology.NewBuilder()
	topology.Source(b, "in", serde.String(), serde.Int64()).Repartition().To("out")
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := eddytest.New(top)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := eddytest.NewInputTopic(d, "in", serde.String(), serde.Int64()).Pipe("a", 1); err != nil {
		t.Fatal(err)
	}
	if err := d.PipeRaw("in", nil, []byte{0, 0, 0, 0, 0, 0, 0, 2}, d.Now()); err != nil {
		t.Fatal(err)
	}
	if err := d.PipeRaw("in", []byte("c"), nil, d.Now()); err != nil {
		t.Fatal(err)
	}
	out := d.RawOutput("out")
	var got []string
	for _, r := range out {
		got = append(got, string(r.Key)+"/"+string(r.Value))
	}
	want := []string{"a/\x00\x00\x00\x00\x00\x00\x00\x01", "/\x00\x00\x00\x00\x00\x00\x00\x02", "c/"}
	if !slices.Equal(got, want) {
		t.Fatalf("out = %q, want %q", got, want)
	}
	if out[1].Key != nil || out[2].Value != nil {
		t.Fatalf("nulls did not stay null: key %v, value %v", out[1].Key, out[2].Value)
	}
}
