package task

import (
	"time"

	"github.com/eddystream/eddy/state"
)

// Spec is a sub-topology as the runtime needs it: what it reads, which
// stores it owns, and how to instantiate its processors for one task.
// The topology package builds Specs; they are immutable and shared by all
// tasks of the sub-topology.
type Spec struct {
	// ID is the sub-topology id, the first half of every task id.
	ID int
	// SourceTopics are the topics the sub-topology reads, all
	// co-partitioned.
	SourceTopics []string
	// Stores are the stores the sub-topology owns.
	Stores []StoreSpec
	// Build creates fresh processor instances for task t and registers them
	// with t (AddNode, AddSource). It is called once per task.
	Build func(t *Task) error
}

// StoreSpec describes one store of a sub-topology.
type StoreSpec struct {
	Name string
	// ChangelogTopic is the topic the store is logged to, or "" for a
	// store that is not logged (and so not fault tolerant).
	ChangelogTopic string
	// Changelog is how ChangelogTopic is created (cleanup policy,
	// retention, other configs); unused when ChangelogTopic is "". The
	// topology validated it for Kind.
	Changelog state.ChangelogConfig
	// Cached is whether the store was declared with a record cache. There
	// is no record cache yet: the flag is carried so that declarations
	// need not change when one comes, and changes nothing today.
	Cached bool
	// Timestamped says that each value of the store starts with its
	// timestamp: 8 bytes, big-endian Unix milliseconds, negative for none
	// (the stores of DSL aggregations). A changelog record of such a value
	// keeps the prefix and is stamped with the timestamp, as Kafka
	// Streams stamps a timestamped store's changelog records, so that a
	// restore, which copies the bytes, keeps it.
	Timestamped bool
	// Kind is the store's shape: key-value, window or session.
	Kind state.StoreKind
	// Retention is how long a window or session store keeps its records,
	// in stream time: where records reach its backend without the typed
	// store (restores, standbys), the engine drops its expired segments
	// with state.ExpireSegments. Zero for key-value stores.
	Retention time.Duration
	// Supplier makes the store's backend; nil means the application's
	// default persistent supplier (Pebble unless configured otherwise).
	Supplier state.BackendSupplier
	// Typed wraps the store's raw view in its typed form (for example a
	// state.KeyValueStore[K, V]); that value is what processors get from
	// Context.Store.
	Typed func(raw state.RawStore) any
}
