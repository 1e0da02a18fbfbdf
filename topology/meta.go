package topology

import (
	"time"

	"github.com/eddystream/eddy/processor"
)

// Meta is what a DSL callback of a ...WithMeta operation knows of the
// record it is called for besides its key and value: Kafka Streams'
// record context (timestamp, headers, topic, partition, offset), without
// the Processor API. It is read-only: the operation's output records keep
// the input's timestamp and headers; to change them, use Process.
type Meta struct {
	// Timestamp is the record's timestamp: its source's (see Timestamps
	// in the package doc), or an aggregate's.
	Timestamp time.Time
	// Headers are the record's headers. They are shared with the record:
	// do not change them.
	Headers []processor.Header
	// Origin is the input record whose processing led to this call: its
	// topic, partition and offset. HasOrigin is false for a record a
	// punctuator forwarded.
	Origin    processor.Origin
	HasOrigin bool
}

// metaOf returns the Meta of r, processed under ctx.
func metaOf[KOut, VOut, K, V any](ctx processor.Context[KOut, VOut], r processor.Record[K, V]) Meta {
	m := Meta{Timestamp: r.Timestamp, Headers: r.Headers}
	m.Origin, m.HasOrigin = ctx.Origin()
	return m
}

// FilterWithMeta is Stream.Filter with the record's Meta.
func (s Stream[K, V]) FilterWithMeta(pred func(K, V, Meta) bool, opts ...Option) Stream[K, V] {
	n := addProcessor(s.b, "filter", collect(opts), []*node{s.n}, nil, processor.Func(func(ctx processor.Context[K, V], r processor.Record[K, V]) error {
		if pred(r.Key, r.Value, metaOf(ctx, r)) {
			return ctx.Forward(r)
		}
		return nil
	}))
	return derive[K, V, K, V](s, n, s.keyChanged)
}

// PeekWithMeta is Stream.Peek with the record's Meta.
func (s Stream[K, V]) PeekWithMeta(fn func(K, V, Meta), opts ...Option) Stream[K, V] {
	n := addProcessor(s.b, "peek", collect(opts), []*node{s.n}, nil, processor.Func(func(ctx processor.Context[K, V], r processor.Record[K, V]) error {
		fn(r.Key, r.Value, metaOf(ctx, r))
		return ctx.Forward(r)
	}))
	return derive[K, V, K, V](s, n, s.keyChanged)
}

// ForeachWithMeta is Stream.Foreach with the record's Meta.
func (s Stream[K, V]) ForeachWithMeta(fn func(K, V, Meta), opts ...Option) {
	addProcessor(s.b, "foreach", collect(opts), []*node{s.n}, nil, processor.Func(func(ctx processor.Context[K, V], r processor.Record[K, V]) error {
		fn(r.Key, r.Value, metaOf(ctx, r))
		return nil
	}))
}

// MapWithMeta is Map with the record's Meta. Grouping the result
// repartitions it.
func MapWithMeta[K, V, KR, VR any](s Stream[K, V], fn func(K, V, Meta) (KR, VR), opts ...Option) Stream[KR, VR] {
	n := addProcessor(s.b, "map", collect(opts), []*node{s.n}, nil, processor.Func(func(ctx processor.Context[KR, VR], r processor.Record[K, V]) error {
		k, v := fn(r.Key, r.Value, metaOf(ctx, r))
		return ctx.Forward(processor.Record[KR, VR]{Key: k, Value: v, Timestamp: r.Timestamp, Headers: r.Headers})
	}))
	return derive[K, V, KR, VR](s, n, true)
}

// MapValuesWithMeta is MapValues with the record's key (read-only) and
// Meta, Kafka Streams' mapValues with a ValueMapperWithKey and the record
// context. It keeps the key: no repartitioning.
func MapValuesWithMeta[K, V, VR any](s Stream[K, V], fn func(K, V, Meta) VR, opts ...Option) Stream[K, VR] {
	n := addProcessor(s.b, "mapvalues", collect(opts), []*node{s.n}, nil, processor.Func(func(ctx processor.Context[K, VR], r processor.Record[K, V]) error {
		return ctx.Forward(processor.Record[K, VR]{Key: r.Key, NullKey: r.NullKey, Value: fn(r.Key, r.Value, metaOf(ctx, r)), Timestamp: r.Timestamp, Headers: r.Headers})
	}))
	return derive[K, V, K, VR](s, n, s.keyChanged)
}

// FlatMapWithMeta is FlatMap with the record's Meta. Grouping the result
// repartitions it.
func FlatMapWithMeta[K, V, KR, VR any](s Stream[K, V], fn func(K, V, Meta) []KeyValue[KR, VR], opts ...Option) Stream[KR, VR] {
	n := addProcessor(s.b, "flatmap", collect(opts), []*node{s.n}, nil, processor.Func(func(ctx processor.Context[KR, VR], r processor.Record[K, V]) error {
		for _, kv := range fn(r.Key, r.Value, metaOf(ctx, r)) {
			if err := ctx.Forward(processor.Record[KR, VR]{Key: kv.Key, Value: kv.Value, Timestamp: r.Timestamp, Headers: r.Headers}); err != nil {
				return err
			}
		}
		return nil
	}))
	return derive[K, V, KR, VR](s, n, true)
}

// FlatMapValuesWithMeta is FlatMapValues with the record's key
// (read-only) and Meta. It keeps the key: no repartitioning.
func FlatMapValuesWithMeta[K, V, VR any](s Stream[K, V], fn func(K, V, Meta) []VR, opts ...Option) Stream[K, VR] {
	n := addProcessor(s.b, "flatmapvalues", collect(opts), []*node{s.n}, nil, processor.Func(func(ctx processor.Context[K, VR], r processor.Record[K, V]) error {
		for _, v := range fn(r.Key, r.Value, metaOf(ctx, r)) {
			if err := ctx.Forward(processor.Record[K, VR]{Key: r.Key, NullKey: r.NullKey, Value: v, Timestamp: r.Timestamp, Headers: r.Headers}); err != nil {
				return err
			}
		}
		return nil
	}))
	return derive[K, V, K, VR](s, n, s.keyChanged)
}
