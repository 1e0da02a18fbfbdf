// Package pebblestore is the persistent state.Backend of eddy, on Pebble
// (github.com/cockroachdb/pebble/v2), the LSM key-value engine of
// CockroachDB. It plays the part RocksDB plays in Kafka Streams, in pure Go.
//
// Each task store is one Pebble database in a directory of its own, opened
// with Open and closed with Close. A process may host dozens of them, so
// the defaults are small (see DefaultMemTableSize and DefaultCacheSize) and
// WithCache lets all of them share one block cache. The engine opens them
// through a Supplier (NewSupplier), the state.BackendSupplier whose stores
// share one block cache; eddy's default for stores declared without a
// backend of their own. Pebble's log messages
// go to slog (WithLogger), at Debug level unless they report errors.
//
// Apply is durable when it returns: its batch is committed with an fsync of
// Pebble's write-ahead log, because the engine writes a checkpoint of the
// changelog offsets right after it, and a checkpoint must never claim data
// the store could lose in a crash.
//
// A store also implements state.OffsetRecorder: ApplyAt writes the
// changelog offset the store has reached in the same Pebble batch as the
// data, so that a crash that loses the tail of the WAL loses the offset
// with it, and the store can tell that it is behind a checkpoint file
// written later (the idea of Kafka Streams' KIP-1035). The offset lives
// outside the user's key space: every user key is stored behind a tag
// byte, and the store's metadata behind another. A format marker, written
// when the store is created, tells this layout from the one before it;
// Open reports a store without it as state.ErrCorruptStore, so that a
// store written by an older eddy is wiped and restored, never misread.
//
// ReadView gives another goroutine a Pebble snapshot to read while the
// task writes; Close closes the views still open.
//
// A store that cannot be trusted is reported as state.ErrCorruptStore, from
// Open or from the first read that meets the damage. Stores are caches of
// their changelogs, so the answer is Destroy and a restore, never a repair.
package pebblestore
