package topology_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/eddystream/eddy/eddytest"
	"github.com/eddystream/eddy/processor"
	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/topology"
)

// Every ...WithMeta callback sees the record's timestamp, headers and
// origin, and the records it forwards keep the timestamp and headers.
func TestCallbacksWithMeta(t *testing.T) {
	var seen []string
	see := func(op string) func(string, string, topology.Meta) {
		return func(k, v string, m topology.Meta) {
			var hs []string
			for _, h := range m.Headers {
				hs = append(hs, h.Key+"="+string(h.Value))
			}
			seen = append(seen, fmt.Sprintf("%s %s/%s ts=%d headers=%v origin=%s@%d:%v", op, k, v, m.Timestamp.UnixMilli(), hs, m.Origin.Topic, m.Origin.Offset, m.HasOrigin))
		}
	}
	b := topology.NewBuilder()
	src := topology.Source(b, "in", serde.String(), serde.String())
	kept := src.FilterWithMeta(func(k, v string, m topology.Meta) bool {
		see("filter")(k, v, m)
		return len(m.Headers) > 0
	}).PeekWithMeta(see("peek"))
	mapped := topology.MapWithMeta(kept, func(k, v string, m topology.Meta) (string, string) {
		see("map")(k, v, m)
		return k + "!", fmt.Sprint(m.Timestamp.UnixMilli())
	})
	values := topology.MapValuesWithMeta(mapped, func(k, v string, m topology.Meta) string {
		see("mapvalues")(k, v, m)
		return v + "/" + string(m.Headers[0].Value)
	})
	flat := topology.FlatMapWithMeta(values, func(k, v string, m topology.Meta) []topology.KeyValue[string, string] {
		see("flatmap")(k, v, m)
		return []topology.KeyValue[string, string]{topology.KV(k, v)}
	})
	topology.FlatMapValuesWithMeta(flat, func(k, v string, m topology.Meta) []string {
		see("flatmapvalues")(k, v, m)
		return []string{v}
	}).WithSerdes(serde.String(), serde.String()).To("out")
	src.ForeachWithMeta(see("foreach"))
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := eddytest.New(top)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	in := eddytest.NewInputTopic(d, "in", serde.String(), serde.String())
	if err := in.PipeAt("a", "plain", time.UnixMilli(5)); err != nil {
		t.Fatal(err)
	}
	if err := in.PipeRecord(processor.Record[string, string]{Key: "b", Value: "x", Timestamp: time.UnixMilli(9), Headers: []processor.Header{{Key: "h", Value: []byte("1")}}}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"filter a/plain ts=5 headers=[] origin=in@0:true",
		"foreach a/plain ts=5 headers=[] origin=in@0:true",
		"filter b/x ts=9 headers=[h=1] origin=in@1:true",
		"peek b/x ts=9 headers=[h=1] origin=in@1:true",
		"map b/x ts=9 headers=[h=1] origin=in@1:true",
		"mapvalues b!/9 ts=9 headers=[h=1] origin=in@1:true",
		"flatmap b!/9/1 ts=9 headers=[h=1] origin=in@1:true",
		"flatmapvalues b!/9/1 ts=9 headers=[h=1] origin=in@1:true",
		"foreach b/x ts=9 headers=[h=1] origin=in@1:true",
	}
	if !slices.Equal(seen, want) {
		t.Errorf("callbacks saw\n%q\nwant\n%q", seen, want)
	}
	out, err := eddytest.NewOutputTopic(d, "out", serde.String(), serde.String()).ReadRecords()
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || out[0].Key != "b!" || out[0].Value != "9/1" || out[0].Timestamp.UnixMilli() != 9 || len(out[0].Headers) != 1 {
		t.Errorf("out = %+v", out)
	}
}
