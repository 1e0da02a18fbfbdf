package topology

import (
	"fmt"

	"github.com/eddystream/eddy/internal/task"
	"github.com/eddystream/eddy/processor"
	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/state"
)

// GlobalTable is a table of which every instance of the application keeps
// a full copy, read from every partition of its topic, as Kafka Streams'
// GlobalKTable. Create it with GlobalTableFrom; join streams with it
// through JoinGlobal and LeftJoinGlobal.
type GlobalTable[K, V any] struct {
	b      *Builder
	store  string
	keys   serde.Serde[K]
	values serde.Serde[V]
}

// StoreName is the name of the table's store, by which a processor of
// the Processor API can read it (as a state.KeyValueStore[K, V] whose
// Put and Delete return an error).
func (g GlobalTable[K, V]) StoreName() string { return g.store }

// globalDecl is a declared global store.
type globalDecl struct {
	name    string
	topic   string
	backend state.BackendSupplier // nil: the application's default
	typed   func(raw state.RawStore) any
}

// GlobalTableFrom reads topic as a global table, Kafka Streams'
// StreamsBuilder.globalTable: every instance materializes all of the
// topic's partitions in a key-value store of its own, outside every task,
// filled from the beginning of the topic (read_committed) before the
// instance processes any record, then kept up to date as the topic
// grows. A record with a null value (a tombstone) deletes its key; a
// record with a null key is skipped.
//
// The store holds the topic's keys and values as they are: it has no
// changelog (the topic is its log, as in Kafka Streams) and no
// timestamps. Records reach the store without going through the serdes;
// a lookup serializes its key with keys, so keys must serialize a key to
// the bytes the topic's producers write. A global table forwards nothing:
// it is read by joins and by processors.
//
// A persistent store (the default backend, or WithBackend with a
// persistent supplier) keeps its data across restarts with a checkpoint
// of the topic's offsets and reads only what was written since; an
// in-memory one reads the topic in full at every start.
//
// Options: StoreName (default a generated name), InMemory and
// WithBackend. WithoutLogging, WithChangelogConfig and WithCaching are
// refused by Build: a global store has no changelog and no cache.
func GlobalTableFrom[K, V any](b *Builder, topic string, keys serde.Serde[K], values serde.Serde[V], opts ...Option) GlobalTable[K, V] {
	o := collect(opts)
	name := o.store
	if name == "" {
		name = b.generatedName("global-store")
	}
	g := GlobalTable[K, V]{b: b, store: name, keys: keys, values: values}
	for _, msg := range o.errs {
		b.errorf(name, "%s", msg)
	}
	switch {
	case topic == "":
		b.errorf(name, "a global table needs a source topic name")
	case keys == nil || values == nil:
		b.errorf(name, "a global table needs a key serde and a value serde")
	case o.noLogging || o.changelog != nil || o.cached:
		b.errorf(name, "a global table has no changelog and no cache: drop WithoutLogging, WithChangelogConfig and WithCaching")
	}
	if b.globals == nil {
		b.globals = map[string]*globalDecl{}
	}
	if _, dup := b.globals[name]; dup {
		b.errorf(name, "a global store with this name is already declared")
		return g
	}
	b.globals[name] = &globalDecl{name: name, topic: topic, backend: o.backend, typed: func(raw state.RawStore) any {
		return readOnlyStore[K, V]{state.NewKeyValueStore(name, topic, raw, keys, values)}
	}}
	b.globalOrder = append(b.globalOrder, name)
	return g
}

// globalErrors are Build's checks of the global stores against the rest
// of the graph: a topic is read once, a store name used once.
func (b *Builder) globalErrors(sources map[string]string) []error {
	var errs []error
	topics := map[string]string{}
	for _, name := range b.globalOrder {
		g := b.globals[name]
		if _, dup := b.stores[name]; dup {
			errs = append(errs, &NodeError{Node: name, Msg: "a store with this name is already declared"})
		}
		if src, dup := sources[g.topic]; dup {
			errs = append(errs, &NodeError{Node: name, Msg: fmt.Sprintf("topic %q is already read by source %q: a topic is either a global table's or read by the sub-topologies", g.topic, src)})
		}
		if other, dup := topics[g.topic]; dup {
			errs = append(errs, &NodeError{Node: name, Msg: fmt.Sprintf("topic %q is already read by global table %q", g.topic, other)})
		}
		topics[g.topic] = name
	}
	return errs
}

// globalSpecs returns the runtime form of the global stores, for the
// engine and eddytest (through task.GlobalsOf). Global topics are user
// topics: appID does not change their names.
func (t *Topology) globalSpecs() []task.GlobalSpec {
	out := make([]task.GlobalSpec, 0, len(t.globalOrder))
	for _, name := range t.globalOrder {
		g := t.globals[name]
		out = append(out, task.GlobalSpec{Name: g.name, Topic: g.topic, Supplier: g.backend, Typed: g.typed})
	}
	return out
}

// describeGlobals is Describe's section on global stores.
func (t *Topology) describeGlobals() string {
	if len(t.globalOrder) == 0 {
		return ""
	}
	s := "  Global stores\n"
	for _, name := range t.globalOrder {
		g := t.globals[name]
		backend := "default backend"
		if g.backend != nil {
			backend = g.backend.Name()
		}
		s += fmt.Sprintf("    %s: global key-value store of topic %s, %s, no changelog\n", g.name, g.topic, backend)
	}
	return s
}

// JoinGlobal joins each record of the stream with the global table's
// value of the key keyMapper maps the record to, as Kafka Streams'
// KStream.join(GlobalKTable, KeyValueMapper, ValueJoiner): a record whose
// mapped key the table does not hold yields nothing. The result keeps the
// stream record's key, timestamp and headers. The stream need not be
// co-partitioned with the table, and a key change upstream needs no
// repartition topic: every instance holds the whole table.
//
// A record with a null value, or whose mapped key is null (keyMapper
// returns the nil of a pointer, slice, map or interface type), is dropped
// and counted (reasons null_value, null_key); a record with a null key is
// joined like any other, since the mapper may read the value. The lookup reads the table
// as the instance's copy holds it at that moment, which may be ahead of
// or behind the stream record's time. Options: Named.
func JoinGlobal[K, V, KG, VG, VR any](s Stream[K, V], g GlobalTable[KG, VG], keyMapper func(K, V) KG, joiner func(K, V, VG) VR, opts ...Option) Stream[K, VR] {
	return streamGlobalJoin(s, g, keyMapper, joiner, false, opts)
}

// LeftJoinGlobal is JoinGlobal that also forwards a record whose mapped
// key the table does not hold, joined with the zero value of VG (Go's
// stand-in for Kafka Streams' null), as Kafka Streams'
// KStream.leftJoin(GlobalKTable, KeyValueMapper, ValueJoiner). As there, a
// record with a null key is joined (with the zero value when its mapped
// key is null), a record with a non-null key whose mapped key is null is
// dropped (reason null_key), and a record with a null value is dropped.
func LeftJoinGlobal[K, V, KG, VG, VR any](s Stream[K, V], g GlobalTable[KG, VG], keyMapper func(K, V) KG, joiner func(K, V, VG) VR, opts ...Option) Stream[K, VR] {
	return streamGlobalJoin(s, g, keyMapper, joiner, true, opts)
}

func streamGlobalJoin[K, V, KG, VG, VR any](s Stream[K, V], g GlobalTable[KG, VG], keyMapper func(K, V) KG, joiner func(K, V, VG) VR, left bool, opts []Option) Stream[K, VR] {
	b := s.b
	o := collect(opts)
	prefix := "stream-global-join"
	if left {
		prefix = "stream-global-left-join"
	}
	store := g.store
	n := addProcessor(b, prefix, o, []*node{s.n}, nil, func() processor.Processor[K, V, K, VR] {
		return &globalJoinProcessor[K, V, KG, VG, VR]{store: store, keyMapper: keyMapper, joiner: joiner, left: left}
	})
	switch {
	case g.b != b:
		b.errorf(n.name, "the stream and the global table come from different builders")
	case keyMapper == nil || joiner == nil:
		b.errorf(n.name, "a global join needs a key mapper and a joiner")
	}
	n.detail = "global store: " + store
	// The output keeps the stream's key, and its partitioning with it.
	return derive[K, V, K, VR](s, n, s.keyChanged)
}

// globalJoinProcessor is Kafka Streams' KStreamKTableJoinProcessor with a
// key mapper over a global table's store (KStreamGlobalKTableJoin).
type globalJoinProcessor[K, V, KG, VG, VR any] struct {
	store     string
	keyMapper func(K, V) KG
	joiner    func(K, V, VG) VR
	left      bool
	ctx       processor.Context[K, VR]
	kv        state.KeyValueStore[KG, VG]
}

func (p *globalJoinProcessor[K, V, KG, VG, VR]) Init(ctx processor.Context[K, VR]) error {
	s, err := ctx.Store(p.store)
	if err != nil {
		return err
	}
	kv, ok := s.(state.KeyValueStore[KG, VG])
	if !ok {
		return fmt.Errorf("store %q is a %T, not the global table's store", p.store, s)
	}
	p.ctx, p.kv = ctx, kv
	return nil
}

func (p *globalJoinProcessor[K, V, KG, VG, VR]) Process(r processor.Record[K, V]) error {
	if r.ValueIsNull() {
		drop(p.ctx, task.DropNullValue)
		return nil
	}
	mapped := p.keyMapper(r.Key, r.Value)
	// A mapped key is null as a record's key is (KeyIsNull).
	mappedNull := processor.Record[KG, struct{}]{Key: mapped}.KeyIsNull()
	if mappedNull && !(p.left && r.KeyIsNull()) {
		drop(p.ctx, task.DropNullKey)
		return nil
	}
	var other VG
	found := false
	if !mappedNull {
		v, ok, err := p.kv.Get(mapped)
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

func (p *globalJoinProcessor[K, V, KG, VG, VR]) Close() error { return nil }

// readOnlyStore is a global store as processors see it: the topic's
// records alone change it (as in Kafka Streams, where a global store is
// read-only outside its update task).
type readOnlyStore[K, V any] struct {
	state.KeyValueStore[K, V]
}

func (s readOnlyStore[K, V]) Put(K, V) error { return s.readOnly() }

func (s readOnlyStore[K, V]) Delete(K) error { return s.readOnly() }

func (s readOnlyStore[K, V]) readOnly() error {
	return fmt.Errorf("global store %q is read-only: only the records of its topic change it", s.Name())
}
