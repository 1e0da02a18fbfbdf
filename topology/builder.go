package topology

import (
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/eddystream/eddy/internal/task"
	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/state"
)

// Builder collects the nodes of a topology. Use the package functions and
// the methods of Stream, GroupedStream and Table to add nodes, then Build.
// A Builder is not safe for concurrent use.
type Builder struct {
	nodes  []*node
	byName map[string]*node
	stores map[string]*storeDecl
	// storeOrder keeps declaration order for deterministic output.
	storeOrder []string
	errs       []error
	seq        int
	built      bool
	// globals are the global stores (GlobalTableFrom), outside every
	// sub-topology; globalOrder keeps their declaration order.
	globals     map[string]*globalDecl
	globalOrder []string
}

// NewBuilder returns an empty Builder.
func NewBuilder() *Builder {
	return &Builder{byName: make(map[string]*node), stores: make(map[string]*storeDecl)}
}

type nodeKind int

const (
	kindSource nodeKind = iota
	kindProcessor
	kindSink
)

// node is one vertex of the graph. Its instantiate function captures the
// node's types; it receives the task-local instances of the node's
// children (each a task.Downstream of this node's output types) and
// returns this node's instance.
type node struct {
	name     string
	kind     nodeKind
	parents  []*node
	children []*node
	stores   []string

	// Sources: the topics read. Sinks: the fixed topic, if any.
	topics   []string
	internal bool // the topic is an internal repartition topic (a name suffix)
	// repartitionPartitions overrides a repartition topic's partition count.
	repartitionPartitions int

	instantiate func(t *task.Task, topicName func(string, bool) string, kids []any) any
	sub         int
	// detail is what Describe adds to the node's line: its windows, join
	// windows, emit strategy.
	detail string
}

// Option configures one operation.
type Option func(*options)

type options struct {
	name       string
	store      string
	backend    state.BackendSupplier
	noLogging  bool
	changelog  *state.ChangelogConfig
	cached     bool
	partitions int
	retention  time.Duration
	// assumePartitioned: see AssumePartitioned.
	assumePartitioned bool
	// Sources: how records are stamped.
	extractor TimestampExtractor
	onInvalid InvalidTimestampHandler
	// errs are the problems with the options themselves, reported by
	// Build against the node or store they configure.
	errs []string
}

// Named names the operation's node. Names must be unique in a topology;
// they appear in Describe, in errors, and in internal topic names.
func Named(name string) Option { return func(o *options) { o.name = name } }

// StoreName names the store an aggregation materializes into (default: a
// generated name). It also names the changelog topic, and the repartition
// topic when the grouping is not Named.
func StoreName(name string) Option { return func(o *options) { o.store = name } }

// InMemory keeps a store in memory instead of on disk; it is
// WithBackend(state.InMemory()). An in-memory store is restored in full
// from its changelog whenever its task starts. Kafka Streams' equivalent is
// Materialized.as(Stores.inMemoryKeyValueStore(name)).
func InMemory() Option { return WithBackend(state.InMemory()) }

// WithBackend sets the supplier of a store's backend: state.InMemory(),
// a pebblestore.Supplier with options of its own, or a supplier you
// implement. When InMemory and WithBackend are both given, the last wins.
// Kafka Streams' equivalent is Materialized.as(KeyValueBytesStoreSupplier).
//
// Default: the application's persistent supplier, Pebble on a block cache
// that all of the process's stores share (Kafka Streams' default is
// RocksDB).
func WithBackend(s state.BackendSupplier) Option {
	return func(o *options) {
		if s == nil {
			o.errs = append(o.errs, "WithBackend: the supplier is nil; pass state.InMemory() or a pebblestore.Supplier")
			return
		}
		o.backend = s
	}
}

// WithoutLogging turns off the changelog of a store. Its state is then
// lost when the task moves or the process restarts; use it only for state
// that can be rebuilt. Kafka Streams' equivalent is
// Materialized.withLoggingDisabled.
//
// Default: logged, to the changelog topic
// "<application-id>-<store>-changelog".
func WithoutLogging() Option { return func(o *options) { o.noLogging = true } }

// WithChangelogConfig sets how a store's changelog topic is created: its
// cleanup policy, retention and other topic configs (see
// state.ChangelogConfig for each default and what is checked). Build fails
// if the settings do not suit the store, or if WithoutLogging is given too.
// Kafka Streams' equivalent is Materialized.withLoggingEnabled(config).
//
// Default: the zero state.ChangelogConfig, a compacted topic for a
// key-value store.
func WithChangelogConfig(c state.ChangelogConfig) Option {
	c.Configs = maps.Clone(c.Configs) // the caller may change its map later
	return func(o *options) { o.changelog = &c }
}

// WithCaching declares whether a store has a record cache in front of it,
// which in Kafka Streams absorbs repeated updates of a key between commits
// and forwards only the last (Materialized.withCachingEnabled and
// withCachingDisabled). eddy has no record cache yet: the setting is
// recorded with the store and changes nothing, and every update is
// forwarded and logged as it happens.
//
// Default: false.
func WithCaching(enabled bool) Option { return func(o *options) { o.cached = enabled } }

// WithRetention sets how long, in stream time, a windowed aggregation's
// store keeps a window after its start (a session after its end), as
// Kafka Streams' Materialized.withRetention: long enough for interactive
// queries to read windows that have closed. It may not be shorter than
// the windows' size plus their grace period.
//
// Default: the size plus the grace period (for sessions: the inactivity
// gap plus the grace period), as in Kafka Streams.
func WithRetention(d time.Duration) Option {
	return func(o *options) {
		if d <= 0 || d%time.Millisecond != 0 {
			o.errs = append(o.errs, fmt.Sprintf("WithRetention(%v): the retention must be a positive whole number of milliseconds", d))
			return
		}
		o.retention = d
	}
}

// AssumePartitioned tells Process or ProcessValues with stores that its
// input is partitioned by its current key although an upstream operation
// (Map, SelectKey, FlatMap, Process) may have changed the key: the key
// change keeps every record in its key's partition. Without it, Build
// fails for such a processor, where Kafka Streams silently reads the
// stream as it is (and may split a key's state across tasks); with it,
// the stream is read as it is, and ProcessValues' output counts as
// partitioned by its key.
func AssumePartitioned() Option { return func(o *options) { o.assumePartitioned = true } }

// WithPartitions sets the partition count of the repartition topic a
// grouping creates (default: the partition count of the sub-topology that
// writes it).
func WithPartitions(n int) Option { return func(o *options) { o.partitions = n } }

func collect(opts []Option) options {
	var o options
	for _, fn := range opts {
		fn(&o)
	}
	return o
}

// addNode registers a node with the given or a generated name.
func (b *Builder) addNode(kind nodeKind, prefix, name string, parents []*node) *node {
	if name == "" {
		name = fmt.Sprintf("%s-%04d", prefix, b.seq)
	}
	b.seq++
	n := &node{name: name, kind: kind, parents: parents}
	if _, dup := b.byName[name]; dup {
		b.errorf(name, "the name is used by another node: give each operation a unique name")
	} else {
		b.byName[name] = n
	}
	for _, p := range parents {
		p.children = append(p.children, n)
	}
	b.nodes = append(b.nodes, n)
	return n
}

// NodeError is a Build error about one node of the graph.
type NodeError struct {
	Node string
	Msg  string
}

func (e *NodeError) Error() string { return fmt.Sprintf("topology: node %q: %s", e.Node, e.Msg) }

func (b *Builder) errorf(nodeName, format string, args ...any) {
	b.errs = append(b.errs, &NodeError{Node: nodeName, Msg: fmt.Sprintf(format, args...)})
}

// ErrBuilt is returned when a Builder is used after Build.
var ErrBuilt = errors.New("topology: the builder was already built; start a new Builder")

// storeDecl is a declared store.
type storeDecl struct {
	name string
	kind state.StoreKind
	// retention is a window or session store's (zero for key-value).
	retention time.Duration
	backend   state.BackendSupplier // nil: the application's default
	logged    bool
	// changelog is how the changelog topic is created, if logged.
	changelog state.ChangelogConfig
	cached    bool
	// timestamped says that the store keeps a timestamp with each value
	// (see timestampedStore), as the stores of DSL aggregations do.
	timestamped bool
	typed       func(raw state.RawStore, topic string) any
	users       []*node
}

// declareStore declares a store and returns it, or nil if the name is
// taken.
func (b *Builder) declareStore(name string, o options, typed func(raw state.RawStore, topic string) any) *storeDecl {
	return b.declareStoreOf(name, o, state.KindKeyValue, 0, typed)
}

// additionalChangelogRetention is what a window or session store's
// changelog keeps beyond the store's retention: Kafka Streams'
// windowstore.changelog.additional.retention.ms default, one day, so that
// clocks that drift between brokers and the application, or a restore
// that starts late, find every record the store still keeps.
const additionalChangelogRetention = 24 * time.Hour

// declareStoreOf declares a store of kind and returns it, or nil if the
// name is taken. A window or session store keeps its records for
// retention: its changelog, unless configured otherwise, is
// "compact,delete" with that retention plus a day.
func (b *Builder) declareStoreOf(name string, o options, kind state.StoreKind, retention time.Duration, typed func(raw state.RawStore, topic string) any) *storeDecl {
	if _, dup := b.stores[name]; dup {
		b.errorf(name, "a store with this name is already declared")
		return nil
	}
	for _, msg := range o.errs {
		b.errorf(name, "%s", msg)
	}
	decl := &storeDecl{name: name, kind: kind, retention: retention, backend: o.backend, logged: !o.noLogging, cached: o.cached, typed: typed}
	if o.changelog != nil {
		decl.changelog = *o.changelog
		if o.noLogging {
			b.errorf(name, "WithChangelogConfig and WithoutLogging contradict each other: a store without logging has no changelog")
		}
	}
	if kind != state.KindKeyValue && decl.changelog.Retention == 0 && (decl.changelog.CleanupPolicy == "" || strings.Contains(decl.changelog.CleanupPolicy, "delete")) {
		decl.changelog.Retention = (retention + additionalChangelogRetention).Round(time.Millisecond)
	}
	if decl.logged {
		if _, err := decl.changelog.TopicConfigs(decl.kind); err != nil {
			b.errorf(name, "%v", err)
		}
	}
	b.stores[name] = decl
	b.storeOrder = append(b.storeOrder, name)
	return decl
}

// describe is the store's line in Describe: name, kind, backend and
// changelog.
func (d *storeDecl) describe(app string) string {
	backend := "default backend"
	if d.backend != nil {
		backend = d.backend.Name()
	}
	logged := "not logged"
	if d.logged {
		logged = "changelog " + ChangelogTopic(app, d.name)
		if c, err := d.changelog.TopicConfigs(d.kind); err == nil {
			logged += " (" + c["cleanup.policy"]
			if ms, ok := c["retention.ms"]; ok {
				logged += ", retention.ms " + ms
			}
			logged += ")"
		}
	}
	return fmt.Sprintf("%s: %v store, %s, %s", d.name, d.kind, backend, logged)
}

// StoreOption configures a store declared with AddKeyValueStore.
type StoreOption = Option

// AddKeyValueStore declares a key-value store that processors added with
// Process or ProcessValues can use by naming it. Options: InMemory,
// WithBackend, WithoutLogging, WithChangelogConfig, WithCaching. Processors
// get it as a state.KeyValueStore[K, V].
func AddKeyValueStore[K, V any](b *Builder, name string, keys serde.Serde[K], values serde.Serde[V], opts ...StoreOption) {
	if keys == nil || values == nil {
		b.errorf(name, "store needs a key serde and a value serde")
		return
	}
	b.declareStore(name, collect(opts), func(raw state.RawStore, topic string) any {
		return state.NewKeyValueStore(name, topic, raw, keys, values)
	})
}

// generatedName returns a fresh generated name with prefix.
func (b *Builder) generatedName(prefix string) string {
	name := fmt.Sprintf("%s-%04d", prefix, b.seq)
	b.seq++
	return name
}
