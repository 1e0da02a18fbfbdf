package topology

import (
	"fmt"

	"github.com/eddystream/eddy/processor"
	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/state"
)

// CogroupedStream is several grouped streams with one key type, each with
// an aggregator of its own, folding into one aggregate per key: Kafka
// Streams' CogroupedKStream. Create it with Cogroup, add streams with
// CogroupWith, and finish with CogroupAggregate.
type CogroupedStream[K, VA any] struct {
	b *Builder
	// parts add, for each grouped stream, the processor that folds it into
	// the shared store, and return its node and key serde.
	parts []func(store string, init func() VA) (*node, serde.Serde[K])
}

// Cogroup starts a cogrouped aggregation with g, whose records agg folds
// into the key's aggregate, as Kafka Streams' KGroupedStream.cogroup.
func Cogroup[K, V, VA any](g GroupedStream[K, V], agg func(K, V, VA) VA) CogroupedStream[K, VA] {
	return CogroupWith(CogroupedStream[K, VA]{b: g.s.b}, g, agg)
}

// CogroupWith adds g to the cogrouped aggregation, with its own aggregator,
// as Kafka Streams' CogroupedKStream.cogroup. Every grouped stream must be
// co-partitioned with the others (a key change is repartitioned, as for
// any grouping; the engine checks the partition counts at start).
func CogroupWith[K, V, VA any](c CogroupedStream[K, VA], g GroupedStream[K, V], agg func(K, V, VA) VA) CogroupedStream[K, VA] {
	if g.s.b != c.b {
		c.b.errorf(g.opts.name, "cogroup: the grouped streams come from different builders")
	}
	c.parts = append(c.parts, func(store string, init func() VA) (*node, serde.Serde[K]) {
		in := g.input(store)
		n := addProcessor(c.b, "cogroup-aggregate", options{}, []*node{in.n}, []string{store}, func() processor.Processor[K, V, K, change[VA]] {
			return &aggregateProcessor[K, V, VA]{store: store, fn: aggregating(init, agg)}
		})
		dropNulls[K, V](n)
		return n, in.keys
	})
	return c
}

// CogroupAggregate folds every cogrouped stream into one aggregate per key,
// starting from init(), stored with aggSerde: Kafka Streams'
// CogroupedKStream.aggregate. Each record updates its key's aggregate with
// its own stream's aggregator and forwards the result, which carries the
// largest timestamp of the records folded in, as every aggregation's.
// Records with a null key or value are dropped and counted. Options:
// StoreName, Named (the node merging the updates), and the store options.
func CogroupAggregate[K, VA any](c CogroupedStream[K, VA], init func() VA, aggSerde serde.Serde[VA], opts ...Option) Table[K, VA] {
	b := c.b
	o := collect(opts)
	store := o.store
	if store == "" {
		store = b.generatedName("cogroup-store")
	}
	var parents []*node
	var keys serde.Serde[K]
	for _, part := range c.parts {
		n, k := part(store, init)
		parents = append(parents, n)
		if keys == nil {
			keys = k
		}
	}
	n := addProcessor(b, "cogroup-merge", o, parents, nil, processor.Func(func(ctx processor.Context[K, change[VA]], r processor.Record[K, change[VA]]) error {
		return ctx.Forward(r)
	}))
	n.detail = fmt.Sprintf("cogroups %d streams", len(parents))
	switch {
	case len(parents) == 0:
		b.errorf(n.name, "a cogrouped aggregation needs at least one grouped stream")
	case keys == nil || aggSerde == nil:
		b.errorf(n.name, "a cogrouped aggregation's store needs a key serde and an aggregate serde: set the key serde with WithSerdes before grouping")
	default:
		if decl := b.declareStore(store, o, func(raw state.RawStore, topic string) any {
			return newTimestampedStore(store, topic, raw, keys, aggSerde)
		}); decl != nil {
			decl.timestamped = true
		}
	}
	return Table[K, VA]{b: b, n: n, keys: keys, values: aggSerde, store: store}
}
