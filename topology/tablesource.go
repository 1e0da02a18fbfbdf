package topology

import (
	"fmt"

	"github.com/eddystream/eddy/processor"
	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/state"
)

// TableFrom reads topic as a table, Kafka Streams' StreamsBuilder.table:
// each record is the new value of its key, and a record with a null value
// (a tombstone) deletes the key. The table is materialized in a
// timestamped key-value store (StoreName names it; a generated name
// otherwise), which every update is applied to in the topic's order, an
// out-of-order timestamp included, as Kafka Streams does with a
// key-value store; each update is forwarded with its record's timestamp.
//
// A tombstone never reaches the value serde; it is forwarded as a
// deletion, and ToStream turns it into a record with a null value. A
// record with a null key is dropped, counted in
// eddy_dropped_records_total (reason null_key) and logged at debug, as
// Kafka Streams drops it (logging at warn).
//
// Options: Named (the source node is "<name>-source", the table's node
// "<name>"), StoreName, the store options InMemory, WithBackend,
// WithoutLogging, WithChangelogConfig and WithCaching, and the source
// options WithTimestampExtractor and OnInvalidTimestamp. The store is
// logged to its own changelog topic, "<application-id>-<store>-changelog":
// eddy does not reuse the source topic as the changelog (Kafka Streams'
// topology.optimization=reuse.ktable.source.topics).
func TableFrom[K, V any](b *Builder, topic string, keys serde.Serde[K], values serde.Serde[V], opts ...Option) Table[K, V] {
	o := collect(opts)
	srcName := ""
	if o.name != "" {
		srcName = o.name + "-source"
	}
	src := b.addNode(kindSource, "table-source-topic", srcName, nil)
	src.topics = []string{topic}
	if topic == "" {
		b.errorf(src.name, "a table needs a source topic name")
	}
	src.instantiate = sourceInstantiate(src, o, keys, values)
	store := o.store
	if store == "" {
		store = b.generatedName("table-source-store")
	}
	storeOK := keys != nil && values != nil
	if storeOK {
		decl := b.declareStore(store, o, func(raw state.RawStore, changelog string) any {
			return newTimestampedStore(store, changelog, raw, keys, values)
		})
		if decl != nil {
			decl.timestamped = true
		}
	}
	n := addProcessor(b, "table-source", o, []*node{src}, []string{store}, func() processor.Processor[K, V, K, change[V]] {
		return &tableSourceProcessor[K, V]{store: store}
	})
	dropNullKeys[K, V](n)
	if !storeOK {
		b.errorf(n.name, "a table read from a topic needs a key serde and a value serde")
	}
	t := Table[K, V]{b: b, n: n, keys: keys, values: values, store: store}
	if o.store == "" {
		// Kafka Streams materializes a source table whose store the user
		// did not name only when a downstream needs old values.
		t.old = &oldValues{source: true}
	}
	return t
}

// tableSourceProcessor applies each record of a table's topic to the
// table's store and forwards the change, as Kafka Streams' KTableSource
// over a timestamped key-value store: a null value deletes the key.
type tableSourceProcessor[K, V any] struct {
	store string
	ctx   processor.Context[K, change[V]]
	kv    *timestampedStore[K, V]
}

func (p *tableSourceProcessor[K, V]) Init(ctx processor.Context[K, change[V]]) error {
	kv, err := timestampedStoreOf[K, V](ctx, p.store)
	if err != nil {
		return err
	}
	p.ctx, p.kv = ctx, kv
	return nil
}

func (p *tableSourceProcessor[K, V]) Process(r processor.Record[K, V]) error {
	old, had, err := p.kv.getStamped(r.Key)
	if err != nil {
		return err
	}
	c := change[V]{old: old.value, hasOld: had}
	if r.ValueIsNull() {
		c.deleted = true
		err = p.kv.Delete(r.Key)
	} else {
		c.value = r.Value
		err = p.kv.putStamped(r.Key, r.Value, r.Timestamp.UnixMilli())
	}
	if err != nil {
		return err
	}
	return p.ctx.Forward(processor.Record[K, change[V]]{Key: r.Key, Value: c, Timestamp: r.Timestamp, Headers: r.Headers})
}

func (p *tableSourceProcessor[K, V]) Close() error { return nil }

// timestampedStoreOf returns store name of ctx as a DSL store of values V
// with timestamps.
func timestampedStoreOf[K, V, KOut, VOut any](ctx processor.Context[KOut, VOut], name string) (*timestampedStore[K, V], error) {
	s, err := ctx.Store(name)
	if err != nil {
		return nil, err
	}
	kv, ok := s.(*timestampedStore[K, V])
	if !ok {
		return nil, fmt.Errorf("store %q is a %T, not a table's store", name, s)
	}
	return kv, nil
}
