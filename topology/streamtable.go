package topology

import (
	"fmt"

	"github.com/eddystream/eddy/internal/task"
	"github.com/eddystream/eddy/processor"
	"github.com/eddystream/eddy/state"
)

// valueGetter reads a table's current value of a key, as Kafka Streams'
// KTableValueGetter: from the store the table is materialized in, or
// through the operations (Filter, MapTableValues) that derived it from a
// materialized table.
type valueGetter[K, V any] struct {
	// stores are the stores the getter reads: a processor that uses it
	// must be connected to them.
	stores []string
	// open returns the lookup of one processor instance.
	open func(ctx state.StoreGetter) (lookup[K, V], error)
}

// lookup returns the value of a key and its timestamp; ok is false when
// the table has none.
type lookup[K, V any] func(key K) (value V, ts int64, ok bool, err error)

// getter returns t's value getter, or nil if t is neither materialized
// nor derived from a materialized table.
func (t Table[K, V]) getter() *valueGetter[K, V] {
	if t.get != nil {
		return t.get
	}
	if t.store == "" {
		return nil
	}
	store := t.store
	return &valueGetter[K, V]{stores: []string{store}, open: func(ctx state.StoreGetter) (lookup[K, V], error) {
		s, err := ctx.Store(store)
		if err != nil {
			return nil, err
		}
		kv, ok := s.(*timestampedStore[K, V])
		if !ok {
			return nil, fmt.Errorf("store %q is a %T, not a table's store", store, s)
		}
		return func(k K) (V, int64, bool, error) {
			v, ok, err := kv.getStamped(k)
			return v.value, v.ts, ok, err
		}, nil
	}}
}

// derivedGetter returns the getter of a table derived from parent by fn,
// which maps a value to the derived one (ok false: the derived table has
// no value for the key).
func derivedGetter[K, V, VR any](parent *valueGetter[K, V], fn func(K, V) (VR, bool)) *valueGetter[K, VR] {
	if parent == nil {
		return nil
	}
	return &valueGetter[K, VR]{stores: parent.stores, open: func(ctx state.StoreGetter) (lookup[K, VR], error) {
		get, err := parent.open(ctx)
		if err != nil {
			return nil, err
		}
		return func(k K) (VR, int64, bool, error) {
			var zero VR
			v, ts, ok, err := get(k)
			if err != nil || !ok {
				return zero, ts, false, err
			}
			out, ok := fn(k, v)
			return out, ts, ok, nil
		}, nil
	}}
}

// JoinTable joins each record of the stream with the table's current value
// of the record's key, as Kafka Streams' KStream.join(KTable): a record
// whose key the table does not hold yields nothing, and a table update
// yields nothing by itself (only the stream side triggers the join). The
// result keeps the stream record's key, timestamp and headers. Records
// with a null key or a null value are dropped and counted (reasons
// null_key, null_value).
//
// The table must be materialized (an aggregation, TableFrom) or derived
// from one with Filter or MapTableValues, and co-partitioned with the
// stream: its topics and the stream's must have the same number of
// partitions (checked at start). After a key change, the stream is read
// back through a repartition topic named after the join's Named option, as
// a grouping is. Options: Named.
func JoinTable[K, V, VT, VR any](s Stream[K, V], t Table[K, VT], joiner func(K, V, VT) VR, opts ...Option) Stream[K, VR] {
	return streamTableJoin(s, t, joiner, false, opts)
}

// LeftJoinTable is JoinTable that also forwards a record whose key the
// table does not hold, joined with the zero value of VT (Go's stand-in
// for Kafka Streams' null: nil for pointers, maps, slices and interfaces),
// as Kafka Streams' KStream.leftJoin(KTable). As there (KIP-962), a record
// with a null key is not dropped but joined the same way; a record with a
// null value is dropped.
func LeftJoinTable[K, V, VT, VR any](s Stream[K, V], t Table[K, VT], joiner func(K, V, VT) VR, opts ...Option) Stream[K, VR] {
	return streamTableJoin(s, t, joiner, true, opts)
}

func streamTableJoin[K, V, VT, VR any](s Stream[K, V], t Table[K, VT], joiner func(K, V, VT) VR, left bool, opts []Option) Stream[K, VR] {
	b := s.b
	o := collect(opts)
	prefix := "stream-table-join"
	if left {
		prefix = "stream-table-left-join"
	}
	name := o.name
	if name == "" {
		name = b.generatedName(prefix)
		o.name = name
	}
	in := s
	if s.keyChanged {
		in = s.GroupByKey(Named(name)).input(name)
	}
	get := t.getter()
	var stores []string
	if get != nil {
		stores = get.stores
	}
	n := addProcessor(b, prefix, o, []*node{in.n}, stores, func() processor.Processor[K, V, K, VR] {
		return &streamTableJoinProcessor[K, V, VT, VR]{get: get, joiner: joiner, left: left}
	})
	if get == nil {
		b.errorf(n.name, "the table is not materialized: join a table from an aggregation or TableFrom, or one derived from those with Filter or MapTableValues")
	}
	if t.b != b {
		b.errorf(n.name, "the stream and the table come from different builders")
	}
	n.detail = "table: " + fmt.Sprint(stores)
	return derive[K, V, K, VR](in, n, false)
}

// streamTableJoinProcessor is Kafka Streams' KStreamKTableJoinProcessor
// over a non-versioned table.
type streamTableJoinProcessor[K, V, VT, VR any] struct {
	get    *valueGetter[K, VT]
	joiner func(K, V, VT) VR
	left   bool
	ctx    processor.Context[K, VR]
	lookup lookup[K, VT]
}

func (p *streamTableJoinProcessor[K, V, VT, VR]) Init(ctx processor.Context[K, VR]) error {
	get, err := p.get.open(ctx)
	if err != nil {
		return err
	}
	p.ctx, p.lookup = ctx, get
	return nil
}

func (p *streamTableJoinProcessor[K, V, VT, VR]) Process(r processor.Record[K, V]) error {
	switch {
	case r.ValueIsNull():
		drop(p.ctx, task.DropNullValue)
		return nil
	case r.KeyIsNull() && !p.left:
		drop(p.ctx, task.DropNullKey)
		return nil
	}
	var other VT
	found := false
	if !r.KeyIsNull() {
		v, _, ok, err := p.lookup(r.Key)
		if err != nil {
			return err
		}
		other, found = v, ok
	}
	if !found && !p.left {
		return nil
	}
	return p.ctx.Forward(processor.Record[K, VR]{
		Key: r.Key, NullKey: r.NullKey, Value: p.joiner(r.Key, r.Value, other),
		Timestamp: r.Timestamp, Headers: r.Headers,
	})
}

func (p *streamTableJoinProcessor[K, V, VT, VR]) Close() error { return nil }
