// Package state owns eddy's store interfaces and the backends beneath them.
//
// The bottom layer is the Backend: an ordered map from byte keys to byte
// values with atomic batches, owned by one task goroutine. Two backends ship
// with eddy: the in-memory backend from NewMemoryBackend, and a persistent
// backend on Pebble in the pebblestore sub-package (a sub-package, so that a
// program that keeps its state in memory does not link Pebble).
//
// Above a backend sits the Overlay, the per-task transactional write buffer
// that makes exactly-once hold for state. Under exactly-once processing a
// task's store writes belong to the open Kafka transaction, and a rebalance
// can abort that transaction at any time. So writes go to the Overlay, reads
// see the Overlay merged over the backend, and the engine drives it:
//
//  1. Records are processed; stores Put and Delete into the Overlay.
//  2. At commit, Overlay.Pending lists one write per changed key; the engine
//     sends them to the store's changelog inside the transaction.
//  3. If the transaction commits, Overlay.Commit applies the writes to the
//     backend in one atomic Apply, and the engine then writes the checkpoint.
//  4. If it aborts, Overlay.Discard drops them, so no update is applied twice.
//
// Stores of typed keys and values, built over serdes, and the logging of
// their writes to changelog topics are layers above these; they reach the
// backend only through the interfaces here.
//
// Backends report corruption as ErrCorruptStore and use after Close as
// ErrClosed; those that can count their keys implement Counter. Package
// statetest holds the conformance suite that every Backend implementation
// runs.
package state
