package topology_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/eddystream/eddy/eddytest"
	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/topology"
)

// Cogroup folds several grouped streams, each with its own aggregator,
// into one aggregate per key, forwarding every update with the largest
// timestamp folded in; a stream whose key changed is repartitioned first.
func TestCogroup(t *testing.T) {
	b := topology.NewBuilder()
	clicks := topology.Source(b, "clicks", serde.String(), serde.Int64())
	purchases := topology.Source(b, "purchases", serde.String(), serde.String())
	// Refunds arrive keyed by order, with the user in the value.
	refunds := topology.GroupBy(topology.Source(b, "refunds", serde.String(), serde.String()),
		func(_, user string) string { return user }, serde.String(), topology.Named("refunds-by-user"))
	c := topology.Cogroup(clicks.GroupByKey(), func(_ string, n int64, agg string) string { return agg + fmt.Sprintf("c%d ", n) })
	c = topology.CogroupWith(c, purchases.GroupByKey(), func(_ string, item string, agg string) string { return agg + "p:" + item + " " })
	c = topology.CogroupWith(c, refunds, func(user string, _ string, agg string) string { return agg + "r:" + user + " " })
	topology.CogroupAggregate(c, func() string { return "" }, serde.String(), topology.StoreName("activity")).ToStream().To("out")
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := eddytest.New(top)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	at := func(ms int64) time.Time { return time.UnixMilli(ms) }
	steps := []func() error{
		func() error {
			return eddytest.NewInputTopic(d, "clicks", serde.String(), serde.Int64()).PipeAt("ana", 1, at(10))
		},
		func() error {
			return eddytest.NewInputTopic(d, "purchases", serde.String(), serde.String()).PipeAt("ana", "book", at(5))
		},
		func() error {
			return eddytest.NewInputTopic(d, "clicks", serde.String(), serde.Int64()).PipeAt("bo", 2, at(20))
		},
		func() error {
			return eddytest.NewInputTopic(d, "refunds", serde.String(), serde.String()).PipeAt("order-7", "ana", at(30))
		},
	}
	for _, step := range steps {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	recs, err := eddytest.NewOutputTopic(d, "out", serde.String(), serde.String()).ReadRecords()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, fmt.Sprintf("%s=%q@%d", r.Key, r.Value, r.Timestamp.UnixMilli()))
	}
	want := []string{`ana="c1 "@10`, `ana="c1 p:book "@10`, `bo="c2 "@20`, `ana="c1 p:book r:ana "@30`}
	if !slices.Equal(got, want) {
		t.Fatalf("out\n got %q\nwant %q", got, want)
	}
	if its := top.InternalTopics("app"); len(its) != 2 || its[0].Name != "app-refunds-by-user-repartition" || its[1].Name != "app-activity-changelog" {
		t.Fatalf("internal topics %+v", its)
	}
}
