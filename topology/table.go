package topology

import (
	"fmt"
	"time"

	"github.com/eddystream/eddy/internal/task"
	"github.com/eddystream/eddy/processor"
	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/state"
)

// GroupedStream is a stream whose records are grouped by key, ready for
// an aggregation. Create it with Stream.GroupByKey or GroupBy.
type GroupedStream[K, V any] struct {
	s    Stream[K, V]
	opts options
}

// GroupByKey groups the stream by its current key. If an upstream
// operation may have changed the key, the aggregation that follows reads
// the stream through a repartition topic. Options: Named (names the
// repartition topic), WithPartitions.
func (s Stream[K, V]) GroupByKey(opts ...Option) GroupedStream[K, V] {
	return GroupedStream[K, V]{s: s, opts: collect(opts)}
}

// GroupBy groups the stream by a new key computed from each record; the
// aggregation reads it through a repartition topic. The stream's value
// serde is kept; the key serde must be given.
func GroupBy[K, V, KR any](s Stream[K, V], fn func(K, V) KR, keys serde.Serde[KR], opts ...Option) GroupedStream[KR, V] {
	o := collect(opts)
	sel := o
	if o.name != "" {
		sel.name = o.name + "-selectkey"
	}
	return SelectKey(s, fn, Named(sel.name)).WithSerdes(keys, nil).GroupByKey(opts...)
}

// input returns the stream an aggregation over g reads: g's stream itself,
// or, when its key may have changed, the stream read back from a
// repartition topic named after the grouping or the store.
func (g GroupedStream[K, V]) input(store string) Stream[K, V] {
	s := g.s
	if !s.keyChanged {
		return s
	}
	name := g.opts.name
	if name == "" {
		name = store
	}
	// The repartition topic feeds only the aggregation, which would drop
	// records with a null key or value: they are dropped before they are
	// written.
	return repartitionThrough(s, name, g.opts.partitions, true, "grouping after a key change")
}

// repartitionThrough writes s to the internal repartition topic
// "<name>-repartition" (partitions: 0 for the writing sub-topology's count)
// and returns the stream read back from it, in a new sub-topology, so that
// all records of one key meet in one task. dropNull drops records with a
// null key or value before they are written. what names the operation in
// the error a missing serde gives.
func repartitionThrough[K, V any](s Stream[K, V], name string, partitions int, dropNull bool, what string) Stream[K, V] {
	b := s.b
	topic := name + "-repartition"
	sink := b.addNode(kindSink, "repartition-sink", name+"-repartition-sink", []*node{s.n})
	sink.topics, sink.internal, sink.repartitionPartitions = []string{topic}, true, partitions
	if s.keys == nil || s.values == nil {
		b.errorf(sink.name, "%s writes a repartition topic, which needs a key serde and a value serde: set them with WithSerdes before", what)
	}
	sink.instantiate = func(t *task.Task, topicName func(string, bool) string, _ []any) any {
		full := topicName(topic, true)
		return task.NewSink(t, sink.name, func(processor.Record[K, V]) string { return full }, s.keys, s.values)
	}
	if dropNull {
		dropNulls[K, V](sink)
	}
	src := b.addNode(kindSource, "repartition-source", name+"-repartition-source", nil)
	src.topics, src.internal = []string{topic}, true
	// A repartition topic holds records stamped upstream: their own
	// timestamps are the ones to use.
	src.instantiate = sourceInstantiate(src, options{}, s.keys, s.values)
	return Stream[K, V]{b: b, n: src, keys: s.keys, values: s.values}
}

// change is what flows between table nodes, Kafka Streams' Change: the
// key's new value, or its deletion (deleted: the new value is null), and
// the value it replaces when the node knows it (hasOld). A literal with
// only value set is an update whose old value is not forwarded.
type change[V any] struct {
	value   V
	deleted bool
	old     V
	hasOld  bool
}

// Table is a changelog stream viewed as the latest value per key, as
// aggregations produce it. Tables forward every update downstream.
type Table[K, V any] struct {
	b      *Builder
	n      *node
	keys   serde.Serde[K]
	values serde.Serde[V]
	store  string
	// old says whether the table's node forwards old values; nil for an
	// aggregation or a TableFrom with a StoreName, which always do (see
	// oldValues).
	old *oldValues
	// get reads the table's values for a join, when the table is derived
	// (Filter, MapTableValues) from a materialized one (see getter).
	get *valueGetter[K, V]
	// grace is the grace period of the windowed aggregation that made the
	// table (nil for other tables): when its windows close, for
	// SuppressUntilWindowCloses.
	grace *time.Duration
}

// StoreName is the name of the store the table is materialized in, or ""
// for a table derived without a store (Filter, MapTableValues).
func (t Table[K, V]) StoreName() string { return t.store }

// Count counts the records per key. Records with a null key or value are
// dropped and counted as dropped, as Kafka Streams does (see Nulls in the
// package doc). Options: StoreName, Named, and the store options InMemory,
// WithBackend, WithoutLogging, WithChangelogConfig and WithCaching.
func (g GroupedStream[K, V]) Count(opts ...Option) Table[K, int64] {
	return aggregate(g, "count", func() int64 { return 0 }, func(_ K, _ V, n int64) int64 { return n + 1 }, serde.Int64(), opts)
}

// Reduce combines the values per key with fn(aggregate, value); the first
// value of a key is its initial aggregate. Records with a null key or
// value are dropped, as by Count. Options as for Count.
func (g GroupedStream[K, V]) Reduce(fn func(agg, v V) V, opts ...Option) Table[K, V] {
	return aggregateFn(g, "reduce", reducing[K](fn), g.s.values, opts)
}

// Aggregate folds the values per key into an aggregate of type VA,
// starting from init(). aggSerde stores the aggregate. Records with a
// null key or value are dropped, as by Count. Options as for Count.
func Aggregate[K, V, VA any](g GroupedStream[K, V], init func() VA, agg func(K, V, VA) VA, aggSerde serde.Serde[VA], opts ...Option) Table[K, VA] {
	return aggregate(g, "aggregate", init, agg, aggSerde, opts)
}

func aggregate[K, V, VA any](g GroupedStream[K, V], prefix string, init func() VA, agg func(K, V, VA) VA, aggSerde serde.Serde[VA], opts []Option) Table[K, VA] {
	return aggregateFn(g, prefix, aggregating(init, agg), aggSerde, opts)
}

// aggregateFn adds the store and the processor shared by every
// aggregation: read the old aggregate, compute the new one, store it,
// forward it.
func aggregateFn[K, V, VA any](g GroupedStream[K, V], prefix string, fn func(K, V, VA, bool) VA, aggSerde serde.Serde[VA], opts []Option) Table[K, VA] {
	b := g.s.b
	o := collect(opts)
	store := o.store
	if store == "" {
		store = b.generatedName(prefix + "-store")
	}
	in := g.input(store)
	keys := in.keys
	storeOK := keys != nil && aggSerde != nil
	if storeOK {
		decl := b.declareStore(store, o, func(raw state.RawStore, topic string) any {
			return newTimestampedStore(store, topic, raw, keys, aggSerde)
		})
		if decl != nil {
			decl.timestamped = true
		}
	}
	n := addProcessor(b, prefix, o, []*node{in.n}, []string{store}, func() processor.Processor[K, V, K, change[VA]] {
		return &aggregateProcessor[K, V, VA]{store: store, fn: fn}
	})
	dropNulls[K, V](n)
	if !storeOK {
		b.errorf(n.name, "an aggregation's store needs a key serde and an aggregate serde: set the key serde with WithSerdes before grouping")
	}
	return Table[K, VA]{b: b, n: n, keys: keys, values: aggSerde, store: store}
}

// dropNulls puts the instances of node n, whose input types are K and V,
// behind a guard that drops records with a null key or value and reports
// each drop (task.DropNulls).
func dropNulls[K, V any](n *node) {
	inner := n.instantiate
	n.instantiate = func(t *task.Task, topicName func(string, bool) string, kids []any) any {
		return task.DropNulls(t, inner(t, topicName, kids).(task.Downstream[K, V]))
	}
}

// aggregateProcessor folds records into the aggregate of their key. The
// aggregate's timestamp is the largest of the records folded into it (the
// record's, or the previous aggregate's if later), as Kafka Streams'
// KStreamAggregate and KStreamReduce stamp it; the update it forwards
// carries that timestamp.
type aggregateProcessor[K, V, VA any] struct {
	store string
	fn    func(K, V, VA, bool) VA
	ctx   processor.Context[K, change[VA]]
	kv    *timestampedStore[K, VA]
}

func (p *aggregateProcessor[K, V, VA]) Init(ctx processor.Context[K, change[VA]]) error {
	s, err := ctx.Store(p.store)
	if err != nil {
		return err
	}
	kv, ok := s.(*timestampedStore[K, VA])
	if !ok {
		return fmt.Errorf("store %q is a %T, not an aggregation's store", p.store, s)
	}
	p.ctx, p.kv = ctx, kv
	return nil
}

func (p *aggregateProcessor[K, V, VA]) Process(r processor.Record[K, V]) error {
	old, had, err := p.kv.getStamped(r.Key)
	if err != nil {
		return err
	}
	agg := p.fn(r.Key, r.Value, old.value, had)
	ts := r.Timestamp
	if had && old.ts > ts.UnixMilli() {
		ts = time.UnixMilli(old.ts)
	}
	if err := p.kv.putStamped(r.Key, agg, ts.UnixMilli()); err != nil {
		return err
	}
	return p.ctx.Forward(processor.Record[K, change[VA]]{Key: r.Key, Value: change[VA]{value: agg, old: old.value, hasOld: had}, Timestamp: ts, Headers: r.Headers})
}

func (p *aggregateProcessor[K, V, VA]) Close() error { return nil }

// ToStream turns the table's updates into a stream, as Kafka Streams'
// KTable.toStream: an update becomes a record with the new value, and a
// deletion (a tombstone read by TableFrom, a value Filter turned off, an
// aggregate removed) a record with a null value (Record.NullValue).
func (t Table[K, V]) ToStream(opts ...Option) Stream[K, V] {
	n := addProcessor(t.b, "tostream", collect(opts), []*node{t.n}, nil, processor.Func(func(ctx processor.Context[K, V], r processor.Record[K, change[V]]) error {
		return ctx.Forward(processor.Record[K, V]{Key: r.Key, NullKey: r.NullKey, Value: r.Value.value, NullValue: r.Value.deleted, Timestamp: r.Timestamp, Headers: r.Headers})
	}))
	return Stream[K, V]{b: t.b, n: n, keys: t.keys, values: t.values}
}

// Filter keeps the keys whose value matches pred, as Kafka Streams'
// KTable.filter: an update that does not match becomes a deletion of the
// key. When the table's old values are known (the table is an
// aggregation, a TableFrom with a StoreName, or is grouped with
// GroupTableBy), an update forwards nothing if neither its old nor its
// new value matches, so a key that never matched yields no deletions.
func (t Table[K, V]) Filter(pred func(K, V) bool, opts ...Option) Table[K, V] {
	old := &oldValues{parent: t.old}
	old.send = enableOldValues(t.old, false)
	// The supplier runs when a task is built, after Build: by then every
	// downstream that needs old values has asked for them.
	n := addProcessor(t.b, "table-filter", collect(opts), []*node{t.n}, nil, func() processor.Processor[K, change[V], K, change[V]] {
		sendOld := old.send
		return processor.Func(func(ctx processor.Context[K, change[V]], r processor.Record[K, change[V]]) error {
			c := r.Value
			out := change[V]{value: c.value, old: c.old}
			out.deleted = c.deleted || !pred(r.Key, c.value)
			if sendOld {
				out.hasOld = c.hasOld && pred(r.Key, c.old)
				if out.deleted && !out.hasOld {
					return nil
				}
			}
			if out.deleted {
				out.value = *new(V)
			}
			if !out.hasOld {
				out.old = *new(V)
			}
			r.Value = out
			return ctx.Forward(r)
		})()
	})
	get := derivedGetter(t.getter(), func(k K, v V) (V, bool) { return v, pred(k, v) })
	return Table[K, V]{b: t.b, n: n, keys: t.keys, values: t.values, old: old, get: get}
}

// MapTableValues transforms the value of every update of a table, as
// Kafka Streams' KTable.mapValues; a deletion stays a deletion, and a nil
// result (of a pointer, slice, map or interface type) is one.
// valueSerde is the serde of the new values (nil when unknown).
func MapTableValues[K, V, VR any](t Table[K, V], fn func(V) VR, valueSerde serde.Serde[VR], opts ...Option) Table[K, VR] {
	old := &oldValues{parent: t.old}
	n := addProcessor(t.b, "table-mapvalues", collect(opts), []*node{t.n}, nil, func() processor.Processor[K, change[V], K, change[VR]] {
		sendOld := old.send
		return processor.Func(func(ctx processor.Context[K, change[VR]], r processor.Record[K, change[V]]) error {
			out := processor.Record[K, change[VR]]{Key: r.Key, NullKey: r.NullKey, Timestamp: r.Timestamp, Headers: r.Headers}
			if r.Value.deleted {
				out.Value.deleted = true
			} else {
				out.Value.value = fn(r.Value.value)
				out.Value.deleted = isNull(out.Value.value)
			}
			if sendOld && r.Value.hasOld {
				out.Value.old = fn(r.Value.old)
				out.Value.hasOld = !isNull(out.Value.old)
			}
			return ctx.Forward(out)
		})()
	})
	get := derivedGetter(t.getter(), func(_ K, v V) (VR, bool) {
		out := fn(v)
		return out, !isNull(out)
	})
	return Table[K, VR]{b: t.b, n: n, keys: t.keys, values: valueSerde, old: old, get: get}
}
