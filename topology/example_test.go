package topology_test

import (
	"fmt"
	"strings"

	"github.com/eddystream/eddy/eddytest"
	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/topology"
)

// A word count: a key change (FlatMap) before a grouping splits the
// topology in two sub-topologies joined by a repartition topic.
func ExampleTopology_Describe() {
	b := topology.NewBuilder()
	lines := topology.Source(b, "lines", serde.String(), serde.String(), topology.Named("lines"))
	words := topology.FlatMap(lines, func(_ string, line string) []topology.KeyValue[string, string] {
		var out []topology.KeyValue[string, string]
		for _, w := range strings.Fields(line) {
			out = append(out, topology.KV(w, w))
		}
		return out
	}, topology.Named("split"))
	words.GroupByKey(topology.Named("words")).Count(topology.StoreName("counts"), topology.Named("count")).
		ToStream(topology.Named("updates")).To("word-counts", topology.Named("out"))
	top, err := b.Build()
	if err != nil {
		panic(err)
	}
	fmt.Print(top.Describe())
	// Output:
	// Topology
	//   Sub-topology 0
	//     Source: lines (topics: [lines])
	//       --> split
	//     Processor: split (stores: [])
	//       --> words-repartition-sink
	//       <-- lines
	//     Sink: words-repartition-sink (topic: <application-id>-words-repartition)
	//       <-- split
	//   Sub-topology 1
	//     Source: words-repartition-source (topics: [<application-id>-words-repartition])
	//       --> count
	//     Processor: count (stores: [counts])
	//       --> updates
	//       <-- words-repartition-source
	//     Processor: updates (stores: [])
	//       --> out
	//       <-- count
	//     Sink: out (topic: word-counts)
	//       <-- updates
	//   Stores
	//     counts: key-value store, default backend, changelog <application-id>-counts-changelog (compact)
	//   Internal topics
	//     repartition: <application-id>-words-repartition (partitions of sub-topology 0)
	//     changelog: <application-id>-counts-changelog (partitions of sub-topology 1)
}

// Reduce keeps the running total per key; eddytest runs it without a
// broker.
func ExampleGroupedStream_Reduce() {
	b := topology.NewBuilder()
	topology.Source(b, "amounts", serde.String(), serde.Int64()).
		GroupByKey().
		Reduce(func(total, v int64) int64 { return total + v }, topology.StoreName("totals")).
		ToStream().
		To("totals")
	top, err := b.Build()
	if err != nil {
		panic(err)
	}
	d, err := eddytest.New(top)
	if err != nil {
		panic(err)
	}
	defer d.Close()
	in := eddytest.NewInputTopic(d, "amounts", serde.String(), serde.Int64())
	in.Pipe("alice", 5)
	in.Pipe("bob", 1)
	in.Pipe("alice", 7)
	out, _ := eddytest.NewOutputTopic(d, "totals", serde.String(), serde.Int64()).ReadKeyValues()
	fmt.Println(out)
	// Output: [{alice 5} {bob 1} {alice 12}]
}

// Users per city, from a table of each user's city: a user who moves is
// subtracted from the old city and added to the new one, and a
// tombstone (a deleted user) only subtracts.
func ExampleGroupTableBy() {
	b := topology.NewBuilder()
	cities := topology.TableFrom(b, "user-cities", serde.String(), serde.String())
	topology.GroupTableBy(cities, func(_, city string) (string, string) { return city, "" }, serde.String(), serde.String()).
		Count(topology.StoreName("users-per-city")).
		ToStream().
		To("city-counts")
	top, err := b.Build()
	if err != nil {
		panic(err)
	}
	d, err := eddytest.New(top)
	if err != nil {
		panic(err)
	}
	defer d.Close()
	in := eddytest.NewInputTopic(d, "user-cities", serde.String(), serde.String())
	in.Pipe("ann", "paris")
	in.Pipe("bo", "paris")
	in.Pipe("ann", "rome")
	d.PipeRaw("user-cities", []byte("bo"), nil, d.Now())
	out, _ := eddytest.NewOutputTopic(d, "city-counts", serde.String(), serde.Int64()).ReadKeyValues()
	fmt.Println(out)
	// Output: [{paris 1} {paris 2} {paris 1} {rome 1} {paris 0}]
}
