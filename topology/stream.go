package topology

import (
	"github.com/eddystream/eddy/internal/task"
	"github.com/eddystream/eddy/processor"
	"github.com/eddystream/eddy/serde"
)

// Stream is an unbounded sequence of records with keys K and values V. A
// Stream is a handle to a node of its Builder's graph: operations add
// nodes downstream of it. The zero Stream is not usable.
type Stream[K, V any] struct {
	b          *Builder
	n          *node
	keys       serde.Serde[K]
	values     serde.Serde[V]
	keyChanged bool
}

// KeyValue is a key and a value, as FlatMap returns them.
type KeyValue[K, V any] struct {
	Key   K
	Value V
}

// KV returns a KeyValue.
func KV[K, V any](k K, v V) KeyValue[K, V] { return KeyValue[K, V]{Key: k, Value: v} }

// Source reads topic with the given serdes.
func Source[K, V any](b *Builder, topic string, keys serde.Serde[K], values serde.Serde[V], opts ...Option) Stream[K, V] {
	return SourceTopics(b, []string{topic}, keys, values, opts...)
}

// SourceTopics reads several topics into one stream. The topics must have
// the same number of partitions: partition p of each belongs to task p.
func SourceTopics[K, V any](b *Builder, topics []string, keys serde.Serde[K], values serde.Serde[V], opts ...Option) Stream[K, V] {
	o := collect(opts)
	n := b.addNode(kindSource, "source", o.name, nil)
	n.topics = append([]string(nil), topics...)
	if len(topics) == 0 {
		b.errorf(n.name, "a source needs at least one topic")
	}
	for _, topic := range topics {
		if topic == "" {
			b.errorf(n.name, "a source topic name is empty")
		}
	}
	if keys == nil || values == nil {
		b.errorf(n.name, "a source needs a key serde and a value serde")
	}
	for _, msg := range o.errs {
		b.errorf(n.name, "%s", msg)
	}
	n.instantiate = sourceInstantiate(n, o, keys, values)
	return Stream[K, V]{b: b, n: n, keys: keys, values: values}
}

// sourceInstantiate instantiates source n, stamping records as o says
// (WithTimestampExtractor, OnInvalidTimestamp).
func sourceInstantiate[K, V any](n *node, o options, keys serde.Serde[K], values serde.Serde[V]) func(*task.Task, func(string, bool) string, []any) any {
	return func(t *task.Task, topicName func(string, bool) string, kids []any) any {
		topics := make([]string, len(n.topics))
		for i, topic := range n.topics {
			topics[i] = topicName(topic, n.internal)
		}
		task.AddSource(t, n.name, topics, sourceTime(o, t), keys, values, downstreams[K, V](kids))
		return nil
	}
}

// downstreams converts child instances to the parent's output type. The
// DSL's typing guarantees the assertion.
func downstreams[K, V any](kids []any) []task.Downstream[K, V] {
	out := make([]task.Downstream[K, V], len(kids))
	for i, k := range kids {
		out[i] = k.(task.Downstream[K, V])
	}
	return out
}

// addProcessor adds a node running a processor from supplier.
func addProcessor[KIn, VIn, KOut, VOut any](b *Builder, prefix string, o options, parents []*node, stores []string, supplier processor.Supplier[KIn, VIn, KOut, VOut]) *node {
	n := b.addNode(kindProcessor, prefix, o.name, parents)
	n.stores = stores
	n.instantiate = func(t *task.Task, _ func(string, bool) string, kids []any) any {
		return task.NewProcessorNode(t, n.name, supplier(), downstreams[KOut, VOut](kids), stores)
	}
	return n
}

// derive returns a stream of new types below node n, keeping the serdes
// of s whose types did not change.
func derive[K, V, KR, VR any](s Stream[K, V], n *node, keyChanged bool) Stream[KR, VR] {
	out := Stream[KR, VR]{b: s.b, n: n, keyChanged: keyChanged}
	out.keys, _ = any(s.keys).(serde.Serde[KR])
	out.values, _ = any(s.values).(serde.Serde[VR])
	return out
}

// WithSerdes returns the stream with its serdes set, for sinks and
// repartition topics downstream. A nil serde leaves that one unchanged.
func (s Stream[K, V]) WithSerdes(keys serde.Serde[K], values serde.Serde[V]) Stream[K, V] {
	if keys != nil {
		s.keys = keys
	}
	if values != nil {
		s.values = values
	}
	return s
}

// Filter keeps the records for which pred returns true.
func (s Stream[K, V]) Filter(pred func(K, V) bool, opts ...Option) Stream[K, V] {
	return s.FilterWithMeta(func(k K, v V, _ Meta) bool { return pred(k, v) }, opts...)
}

// FilterNot drops the records for which pred returns true.
func (s Stream[K, V]) FilterNot(pred func(K, V) bool, opts ...Option) Stream[K, V] {
	return s.Filter(func(k K, v V) bool { return !pred(k, v) }, opts...)
}

// Peek calls fn for every record and forwards it unchanged.
func (s Stream[K, V]) Peek(fn func(K, V), opts ...Option) Stream[K, V] {
	return s.PeekWithMeta(func(k K, v V, _ Meta) { fn(k, v) }, opts...)
}

// Foreach calls fn for every record. It ends the stream.
func (s Stream[K, V]) Foreach(fn func(K, V), opts ...Option) {
	s.ForeachWithMeta(func(k K, v V, _ Meta) { fn(k, v) }, opts...)
}

// Merge combines s and other into one stream. Both must belong to the same
// Builder.
func (s Stream[K, V]) Merge(other Stream[K, V], opts ...Option) Stream[K, V] {
	if other.b != s.b {
		s.b.errorf(collect(opts).name, "merge: the streams come from different builders")
	}
	n := addProcessor(s.b, "merge", collect(opts), []*node{s.n, other.n}, nil, processor.Func(func(ctx processor.Context[K, V], r processor.Record[K, V]) error {
		return ctx.Forward(r)
	}))
	out := derive[K, V, K, V](s, n, s.keyChanged || other.keyChanged)
	if out.keys == nil {
		out.keys = other.keys
	}
	if out.values == nil {
		out.values = other.values
	}
	return out
}

// To writes the stream to topic with the stream's serdes. The producer
// partitions records by key (murmur2, as Kafka's default partitioner).
func (s Stream[K, V]) To(topic string, opts ...Option) {
	o := collect(opts)
	n := s.sink(o)
	n.topics = []string{topic}
	if topic == "" {
		s.b.errorf(n.name, "a sink needs a topic: give To a topic name, or use ToFunc")
	}
	n.instantiate = sinkInstantiate(n, func(processor.Record[K, V]) string { return topic }, s.keys, s.values)
}

// ToFunc writes each record to the topic chooser returns for it. The
// topics must exist.
func (s Stream[K, V]) ToFunc(chooser func(processor.Record[K, V]) string, opts ...Option) {
	n := s.sink(collect(opts))
	if chooser == nil {
		s.b.errorf(n.name, "a sink needs a topic: the topic chooser is nil")
	}
	n.instantiate = sinkInstantiate(n, task.TopicChooser[K, V](chooser), s.keys, s.values)
}

func (s Stream[K, V]) sink(o options) *node {
	n := s.b.addNode(kindSink, "sink", o.name, []*node{s.n})
	if s.keys == nil || s.values == nil {
		s.b.errorf(n.name, "a sink needs a key serde and a value serde: set them with WithSerdes")
	}
	return n
}

func sinkInstantiate[K, V any](n *node, chooser task.TopicChooser[K, V], keys serde.Serde[K], values serde.Serde[V]) func(*task.Task, func(string, bool) string, []any) any {
	return func(t *task.Task, _ func(string, bool) string, _ []any) any {
		return task.NewSink(t, n.name, chooser, keys, values)
	}
}

// Splitter routes each record of a stream to the first branch whose
// predicate matches. Create it with Stream.Split.
type Splitter[K, V any] struct {
	s      Stream[K, V]
	prefix string
	names  []string
	preds  []func(K, V) bool
}

// Split starts splitting s into named branches. The Named option is the
// prefix of the branches' names.
func (s Stream[K, V]) Split(opts ...Option) *Splitter[K, V] {
	return &Splitter[K, V]{s: s, prefix: collect(opts).name}
}

// Branch adds a branch for the records pred matches (and no earlier branch
// did).
func (sp *Splitter[K, V]) Branch(name string, pred func(K, V) bool) *Splitter[K, V] {
	sp.names = append(sp.names, sp.prefix+name)
	sp.preds = append(sp.preds, pred)
	return sp
}

// Default ends the split with a branch for the records no branch matched
// and returns all branches by their prefixed names.
func (sp *Splitter[K, V]) Default(name string) map[string]Stream[K, V] {
	return sp.build(sp.prefix+name, true)
}

// NoDefault ends the split, dropping records no branch matched.
func (sp *Splitter[K, V]) NoDefault() map[string]Stream[K, V] {
	return sp.build("", false)
}

func (sp *Splitter[K, V]) build(defaultName string, withDefault bool) map[string]Stream[K, V] {
	s := sp.s
	names := append([]string(nil), sp.names...)
	preds := append([]func(K, V) bool(nil), sp.preds...)
	split := addProcessor(s.b, "split", options{name: sp.prefix + "split"}, []*node{s.n}, nil, processor.Func(func(ctx processor.Context[K, V], r processor.Record[K, V]) error {
		for i, pred := range preds {
			if pred(r.Key, r.Value) {
				return ctx.ForwardTo(names[i], r)
			}
		}
		if withDefault {
			return ctx.ForwardTo(defaultName, r)
		}
		return nil
	}))
	out := make(map[string]Stream[K, V], len(names)+1)
	all := names
	if withDefault {
		all = append(all, defaultName)
	}
	for _, name := range all {
		// Each branch is a pass-through node carrying the branch's name, so
		// that ForwardTo can address it.
		n := addProcessor(s.b, "branch", options{name: name}, []*node{split}, nil, processor.Func(func(ctx processor.Context[K, V], r processor.Record[K, V]) error {
			return ctx.Forward(r)
		}))
		out[name] = derive[K, V, K, V](s, n, s.keyChanged)
	}
	return out
}

// Map transforms every record into a new key and value. Grouping the
// result repartitions it.
func Map[K, V, KR, VR any](s Stream[K, V], fn func(K, V) (KR, VR), opts ...Option) Stream[KR, VR] {
	return MapWithMeta(s, func(k K, v V, _ Meta) (KR, VR) { return fn(k, v) }, opts...)
}

// MapValues transforms every value, keeping the key (no repartitioning).
func MapValues[K, V, VR any](s Stream[K, V], fn func(V) VR, opts ...Option) Stream[K, VR] {
	return MapValuesWithMeta(s, func(_ K, v V, _ Meta) VR { return fn(v) }, opts...)
}

// FlatMap transforms every record into zero or more records. Grouping the
// result repartitions it.
func FlatMap[K, V, KR, VR any](s Stream[K, V], fn func(K, V) []KeyValue[KR, VR], opts ...Option) Stream[KR, VR] {
	return FlatMapWithMeta(s, func(k K, v V, _ Meta) []KeyValue[KR, VR] { return fn(k, v) }, opts...)
}

// FlatMapValues transforms every value into zero or more values with the
// same key.
func FlatMapValues[K, V, VR any](s Stream[K, V], fn func(V) []VR, opts ...Option) Stream[K, VR] {
	return FlatMapValuesWithMeta(s, func(_ K, v V, _ Meta) []VR { return fn(v) }, opts...)
}

// SelectKey gives every record a new key computed from it. Grouping the
// result repartitions it.
func SelectKey[K, V, KR any](s Stream[K, V], fn func(K, V) KR, opts ...Option) Stream[KR, V] {
	n := addProcessor(s.b, "selectkey", collect(opts), []*node{s.n}, nil, processor.Func(func(ctx processor.Context[KR, V], r processor.Record[K, V]) error {
		return ctx.Forward(processor.Record[KR, V]{Key: fn(r.Key, r.Value), Value: r.Value, NullValue: r.NullValue, Timestamp: r.Timestamp, Headers: r.Headers})
	}))
	return derive[K, V, KR, V](s, n, true)
}

// Process runs a Processor API processor on every record. stores names the
// stores (declared with AddKeyValueStore) the processor may use. The
// processor may change keys, so grouping the result repartitions it.
func Process[K, V, KR, VR any](s Stream[K, V], supplier processor.Supplier[K, V, KR, VR], stores []string, opts ...Option) Stream[KR, VR] {
	o := collect(opts)
	n := addProcessor(s.b, "process", o, []*node{s.n}, stores, supplier)
	checkPartitioned(s, n, stores, o)
	return derive[K, V, KR, VR](s, n, true)
}

// checkPartitioned fails the Build when node n, a processor with stores,
// reads a stream whose key an upstream operation may have changed, with no
// repartition in between: its store would hold a key's state in several
// tasks. Kafka Streams reads such a stream as it is, silently; eddy asks
// for a Repartition, or for AssumePartitioned when the user knows the key
// change keeps each record in its key's partition.
func checkPartitioned[K, V any](s Stream[K, V], n *node, stores []string, o options) {
	if s.keyChanged && len(stores) > 0 && !o.assumePartitioned {
		s.b.errorf(n.name, "a processor with stores reads a stream whose key may have changed upstream (Map, SelectKey, FlatMap, Process), so one key's records may be in several partitions and its state in several tasks: add Repartition before it, or pass AssumePartitioned if the key change keeps every record in its key's partition")
	}
}

// Repartition writes the stream to an internal repartition topic,
// "<application-id>-<name>-repartition", and reads it back in a new
// sub-topology, so that every record of a key is in the partition the
// key's hash picks: Kafka Streams' KStream.repartition. It repartitions
// whether or not the key changed, and keeps records with a null key or
// value (the producer's partitioner places a null key). The stream's
// serdes are written with (set them with WithSerdes before). Options:
// Named (the topic's name; default generated), WithPartitions (the
// topic's partition count; default that of the sub-topology writing it).
func (s Stream[K, V]) Repartition(opts ...Option) Stream[K, V] {
	o := collect(opts)
	name := o.name
	if name == "" {
		name = s.b.generatedName("repartition")
	}
	return repartitionThrough(s, name, o.partitions, false, "Repartition")
}

// ProcessValues is Process for a processor that keeps every record's key,
// so grouping the result does not repartition. The processor must forward
// records with the key it received (as Kafka Streams' FixedKeyProcessor).
func ProcessValues[K, V, VR any](s Stream[K, V], supplier processor.Supplier[K, V, K, VR], stores []string, opts ...Option) Stream[K, VR] {
	o := collect(opts)
	n := addProcessor(s.b, "processvalues", o, []*node{s.n}, stores, supplier)
	checkPartitioned(s, n, stores, o)
	return derive[K, V, K, VR](s, n, s.keyChanged && !o.assumePartitioned)
}
