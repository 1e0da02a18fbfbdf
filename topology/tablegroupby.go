package topology

import (
	"bytes"
	"time"

	"github.com/eddystream/eddy/internal/task"
	"github.com/eddystream/eddy/processor"
	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/state"
)

// GroupedTable is a table regrouped by a new key, ready for an
// aggregation that adds each new value and subtracts the value it
// replaces. Create it with GroupTableBy; the zero GroupedTable is not
// usable.
type GroupedTable[K, V any] struct {
	b *Builder
	// add adds the selector, the repartition topic's sink and its source
	// below the table, and returns the source.
	add    func(store string) *node
	keys   serde.Serde[K]
	values serde.Serde[V]
}

// GroupTableBy regroups table t by a new key and value that fn computes
// from each of its rows, Kafka Streams' KTable.groupBy. Every update of t
// reaches the aggregation that follows as the subtraction of fn(old
// value) from the old row's group and the addition of fn(new value) to
// the new one's: one record with both when the two keys are equal,
// otherwise two records, the subtraction first, as Kafka Streams 4.x
// (KTableRepartitionMap) sends them. A deletion only subtracts; a pair
// whose key or value is nil (a null) is skipped. The records go through a
// repartition topic named "<application-id>-<name>-repartition", <name>
// being the Named option, else the aggregation's store name; its values
// are in Kafka Streams' format for such topics (ChangedSerializer: the
// serialized value or values and a flag byte), so keys and values are
// the serdes of the regrouped key and value, and both are required.
//
// Options: Named, WithPartitions (of the repartition topic).
func GroupTableBy[K, V, KR, VR any](t Table[K, V], fn func(K, V) (KR, VR), keys serde.Serde[KR], values serde.Serde[VR], opts ...Option) GroupedTable[KR, VR] {
	o := collect(opts)
	b := t.b
	// Subtracting needs the old values: the table must send them.
	enableOldValues(t.old, true)
	add := func(store string) *node {
		name := o.name
		if name == "" {
			name = store
		}
		topic := name + "-repartition"
		selName := ""
		if o.name != "" {
			selName = o.name + "-select"
		}
		sel := b.addNode(kindProcessor, "table-groupby", selName, []*node{t.n})
		sel.instantiate = func(tk *task.Task, topicName func(string, bool) string, kids []any) any {
			full := topicName(topic, true)
			p := &tableRegroupProcessor[K, V, KR, VR]{fn: fn, keys: keys, topic: full}
			return task.NewProcessorNode(tk, sel.name, processor.Processor[K, change[V], KR, change[VR]](p), downstreams[KR, change[VR]](kids), nil)
		}
		sink := b.addNode(kindSink, "repartition-sink", name+"-repartition-sink", []*node{sel})
		sink.topics, sink.internal, sink.repartitionPartitions = []string{topic}, true, o.partitions
		if keys == nil || values == nil {
			b.errorf(sink.name, "a table grouping writes a repartition topic, which needs the serdes of the new key and value: pass them to GroupTableBy")
		}
		changes := serde.Serde[change[VR]](changeSerde[VR]{values})
		sink.instantiate = func(tk *task.Task, topicName func(string, bool) string, _ []any) any {
			full := topicName(topic, true)
			return task.NewSink(tk, sink.name, func(processor.Record[KR, change[VR]]) string { return full }, keys, changes)
		}
		src := b.addNode(kindSource, "repartition-source", name+"-repartition-source", nil)
		src.topics, src.internal = []string{topic}, true
		src.instantiate = sourceInstantiate(src, options{}, keys, changes)
		return src
	}
	return GroupedTable[KR, VR]{b: b, add: add, keys: keys, values: values}
}

// tableRegroupProcessor maps each change of a table to the subtraction
// and the addition its aggregation needs, as Kafka Streams'
// KTableRepartitionMap.
type tableRegroupProcessor[K, V, KR, VR any] struct {
	fn    func(K, V) (KR, VR)
	keys  serde.Serde[KR]
	topic string
	ctx   processor.Context[KR, change[VR]]
}

func (p *tableRegroupProcessor[K, V, KR, VR]) Init(ctx processor.Context[KR, change[VR]]) error {
	p.ctx = ctx
	return nil
}

func (p *tableRegroupProcessor[K, V, KR, VR]) Process(r processor.Record[K, change[V]]) error {
	var newKey, oldKey KR
	var newValue, oldValue VR
	hasNew := !r.Value.deleted
	if hasNew {
		newKey, newValue = p.fn(r.Key, r.Value.value)
		hasNew = !isNull(newKey) && !isNull(newValue)
	}
	hasOld := r.Value.hasOld
	if hasOld {
		oldKey, oldValue = p.fn(r.Key, r.Value.old)
		hasOld = !isNull(oldKey) && !isNull(oldValue)
	}
	out := func(k KR, c change[VR]) error {
		return p.ctx.Forward(processor.Record[KR, change[VR]]{Key: k, Value: c, Timestamp: r.Timestamp, Headers: r.Headers})
	}
	if hasNew && hasOld {
		same, err := p.sameKey(newKey, oldKey)
		if err != nil {
			return err
		}
		if same {
			return out(newKey, change[VR]{value: newValue, old: oldValue, hasOld: true})
		}
	}
	if hasOld {
		if err := out(oldKey, change[VR]{deleted: true, old: oldValue, hasOld: true}); err != nil {
			return err
		}
	}
	if hasNew {
		return out(newKey, change[VR]{value: newValue})
	}
	return nil
}

// sameKey reports whether a and b are the same key, as the repartition
// topic and the aggregation's store see keys: by their serialized bytes.
func (p *tableRegroupProcessor[K, V, KR, VR]) sameKey(a, b KR) (bool, error) {
	ab, err := p.keys.Serialize(p.topic, a)
	if err != nil {
		return false, err
	}
	bb, err := p.keys.Serialize(p.topic, b)
	if err != nil {
		return false, err
	}
	return bytes.Equal(ab, bb), nil
}

func (p *tableRegroupProcessor[K, V, KR, VR]) Close() error { return nil }

// Count counts the rows of each group, Kafka Streams'
// KGroupedTable.count: an added row counts one, a subtracted row minus
// one; a group whose count drops to zero keeps it. Options: StoreName,
// Named, and the store options InMemory, WithBackend, WithoutLogging,
// WithChangelogConfig and WithCaching.
func (g GroupedTable[K, V]) Count(opts ...Option) Table[K, int64] {
	return tableAggregate(g, "table-count", func(_ K, _ V, n int64, _ bool) int64 { return n + 1 },
		func(_ K, _ V, n int64) int64 { return n - 1 }, serde.Int64(), opts)
}

// Reduce combines the values of each group, Kafka Streams'
// KGroupedTable.reduce: adder(aggregate, value) adds a row's new value
// (the first value of a group is its aggregate), subtractor(aggregate,
// value) removes the value a row had. A subtractor that returns nil (for
// a pointer, slice, map or interface type) empties the group; a
// deletion that leaves the group empty deletes it. Options as for Count.
func (g GroupedTable[K, V]) Reduce(adder, subtractor func(agg, v V) V, opts ...Option) Table[K, V] {
	return tableAggregate(g, "table-reduce", reducing[K](adder), func(_ K, v V, agg V) V { return subtractor(agg, v) }, g.values, opts)
}

// TableAggregate folds the values of each group of g into an aggregate of
// type VA, Kafka Streams' KGroupedTable.aggregate: adder adds a row's new
// value to the group's aggregate (init() for a group without one),
// subtractor removes the value a row had. A subtractor that returns nil
// (for a pointer, slice, map or interface type) empties the group.
// aggSerde stores the aggregate. Options as for Count.
func TableAggregate[K, V, VA any](g GroupedTable[K, V], init func() VA, adder, subtractor func(K, V, VA) VA, aggSerde serde.Serde[VA], opts ...Option) Table[K, VA] {
	return tableAggregate(g, "table-aggregate", func(k K, v V, agg VA, had bool) VA {
		if !had {
			agg = init()
		}
		return adder(k, v, agg)
	}, subtractor, aggSerde, opts)
}

// tableAggregate adds the repartition topic, the store and the processor
// of a table aggregation.
func tableAggregate[K, V, VA any](g GroupedTable[K, V], prefix string, add func(K, V, VA, bool) VA, sub func(K, V, VA) VA, aggSerde serde.Serde[VA], opts []Option) Table[K, VA] {
	b := g.b
	o := collect(opts)
	store := o.store
	if store == "" {
		store = b.generatedName(prefix + "-store")
	}
	src := g.add(store)
	keys := g.keys
	storeOK := keys != nil && aggSerde != nil
	if storeOK {
		decl := b.declareStore(store, o, func(raw state.RawStore, topic string) any {
			return newTimestampedStore(store, topic, raw, keys, aggSerde)
		})
		if decl != nil {
			decl.timestamped = true
		}
	}
	n := addProcessor(b, prefix, o, []*node{src}, []string{store}, func() processor.Processor[K, change[V], K, change[VA]] {
		return &tableAggregateProcessor[K, V, VA]{store: store, add: add, sub: sub}
	})
	if !storeOK {
		b.errorf(n.name, "a table aggregation's store needs a key serde and an aggregate serde")
	}
	return Table[K, VA]{b: b, n: n, keys: keys, values: aggSerde, store: store}
}

// tableAggregateProcessor applies the subtractions and additions of a
// table grouping to the aggregates of their keys, as Kafka Streams'
// KTableAggregate and KTableReduce: first the old value is subtracted
// (if the group has an aggregate), then the new one added. The result is
// stamped with the record's timestamp, or the previous aggregate's if
// later and the aggregate was updated from it.
type tableAggregateProcessor[K, V, VA any] struct {
	store string
	add   func(K, V, VA, bool) VA
	sub   func(K, V, VA) VA
	ctx   processor.Context[K, change[VA]]
	kv    *timestampedStore[K, VA]
}

func (p *tableAggregateProcessor[K, V, VA]) Init(ctx processor.Context[K, change[VA]]) error {
	kv, err := timestampedStoreOf[K, VA](ctx, p.store)
	if err != nil {
		return err
	}
	p.ctx, p.kv = ctx, kv
	return nil
}

func (p *tableAggregateProcessor[K, V, VA]) Process(r processor.Record[K, change[V]]) error {
	old, had, err := p.kv.getStamped(r.Key)
	if err != nil {
		return err
	}
	ts := r.Timestamp.UnixMilli()
	agg, has := old.value, had
	if r.Value.hasOld && had {
		agg = p.sub(r.Key, r.Value.old, agg)
		has = !isNull(agg)
		ts = max(ts, old.ts)
	}
	if !r.Value.deleted {
		if !has {
			agg = *new(VA)
		}
		agg = p.add(r.Key, r.Value.value, agg, has)
		has = !isNull(agg)
		if had {
			ts = max(ts, old.ts)
		}
	}
	out := change[VA]{old: old.value, hasOld: had}
	if has {
		out.value = agg
		err = p.kv.putStamped(r.Key, agg, ts)
	} else {
		out.deleted = true
		err = p.kv.Delete(r.Key)
	}
	if err != nil {
		return err
	}
	return p.ctx.Forward(processor.Record[K, change[VA]]{Key: r.Key, Value: out, Timestamp: time.UnixMilli(ts), Headers: r.Headers})
}

func (p *tableAggregateProcessor[K, V, VA]) Close() error { return nil }
