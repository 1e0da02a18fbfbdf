// Package state owns eddy's stores as their users and their implementers
// see them: the typed stores processors use, how a store is declared, and
// the interfaces a storage backend implements.
//
// For processors: KeyValue returns a store of a processor context as a
// KeyValueStore, an ordered, typed key-value store over serdes; Window
// returns a WindowStore, values per key and time window, and Session a
// SessionStore, values per key and session, as Kafka Streams' WindowStore
// and SessionStore. Window and session stores keep their records for a
// retention counted in stream time (the largest window start, or session
// end, written), in segments of half the retention (at least a minute)
// that are dropped whole, with one range deletion, once expired; reads
// never return an expired window, and writes to one are ignored.
//
// For declaring stores (see the store options of package topology): a
// store has a StoreKind (key-value, window or session; a versioned
// key-value kind may come later), a BackendSupplier that
// makes its backend, and, if it is logged, a ChangelogConfig for its
// changelog topic. InMemory returns the supplier of in-memory backends;
// the pebblestore sub-package supplies persistent backends on Pebble (a
// sub-package, so that a program that keeps its state in memory need not
// link Pebble).
//
// For backend implementers: a Backend is an ordered map from byte keys to
// byte values with atomic batches of puts, deletes and range deletes (see
// Write), owned by one task goroutine, that gives
// consistent ReadViews to other goroutines. Backends report corruption as
// ErrCorruptStore and use after Close as ErrClosed. Optional interfaces
// let the engine do more with a backend that has them: Counter and Sizer
// for metrics, BulkApplier and RunIngester for fast restores, and
// OffsetRecorder to keep the changelog offset in the store itself. Package
// statetest holds the conformance suite every Backend and BackendSupplier
// runs.
//
// The transactional write buffer between a task's stores and their
// backends, which makes exactly-once hold for state, is the engine's own
// (internal/overlay), as is the logging of writes to changelog topics:
// stores reach their backends only through the interfaces here.
package state
