// Package task owns the I/O-free core of a task: the instantiated processor
// graph of one sub-topology for one partition, its input queues, stream time,
// punctuation, and its stores' transactional overlays.
//
// A Task takes records (Add) and clock ticks (Punctuate) and produces
// effects through its Output function: records for sink topics and, when the
// driver asks at commit time (FlushChangelog), one changelog record per key
// written since the last commit. It never talks to Kafka and never reads a
// clock. The engine drives it against real brokers; eddytest drives the very
// same code in memory.
//
// The commit protocol a driver follows:
//
//  1. FlushChangelog: pending store writes become changelog records.
//  2. The driver makes outputs and changelog records durable (flush the
//     producer, or commit the transaction) and commits Offsets.
//  3. CommitStores: the overlays are applied to the backends. A driver that
//     failed in step 2 calls AbortStores instead and rewinds its input.
package task
