// Package pebblestore is the persistent state.Backend of eddy, on Pebble
// (github.com/cockroachdb/pebble/v2), the LSM key-value engine of
// CockroachDB. It plays the part RocksDB plays in Kafka Streams, in pure Go.
//
// Each task store is one Pebble database in a directory of its own, opened
// with Open and closed with Close. A process may host dozens of them, so
// the defaults are small (see DefaultMemTableSize and DefaultCacheSize) and
// WithCache lets all of them share one block cache. Pebble's log messages
// go to slog (WithLogger), at Debug level unless they report errors.
//
// Apply is durable when it returns: its batch is committed with an fsync of
// Pebble's write-ahead log, because the engine writes a checkpoint of the
// changelog offsets right after it, and a checkpoint must never claim data
// the store could lose in a crash.
//
// ReadView gives another goroutine a Pebble snapshot to read while the
// task writes; Close closes the views still open.
//
// A store that cannot be trusted is reported as state.ErrCorruptStore, from
// Open or from the first read that meets the damage. Stores are caches of
// their changelogs, so the answer is Destroy and a restore, never a repair.
package pebblestore
