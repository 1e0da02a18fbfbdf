// Package changelog (internal) owns what the engine keeps about a store
// outside the store itself and only the engine uses: the task checkpoint
// file that says how much of a store's changelog topic the local store
// already holds, and the restore that brings a store up to date from its
// changelog (plans, the Fetch loop, the store target). The names a user
// sees, the changelog topic's name and configs and the restore listener
// with its event types, live in the public package
// github.com/eddystream/eddy/changelog; TopicPartition, RestoreResult and
// RestoreListener here are aliases of those.
//
// # Checkpoints
//
// A task's checkpoint file maps each changelog partition of its stores to
// the next changelog offset to restore from: the offset after the last one
// the local store already reflects. WriteCheckpoint replaces the file
// atomically and durably. ReadCheckpoint trusts nothing it cannot verify: a
// missing file matches fs.ErrNotExist, and a damaged, truncated or foreign
// file matches ErrCorruptCheckpoint, after which the store must be restored
// in full. The format, "eddy-checkpoint v1", is plain text with a CRC-32C
// trailer; see WriteCheckpoint.
//
// # Restoring
//
// A Restorer reads a changelog partition with read_committed isolation and
// applies it to a RestoreTarget. The driver loop for one store is:
//
//  1. Read the task's checkpoint. Use its offset for the store's changelog
//     partition, or NoCheckpoint if there is no file, the file is corrupt, or
//     it has no entry for the partition.
//  2. Call Restorer.Restore (or Restorer.RestoreAll for many stores at once).
//     It lists the partition's log start offset and its last stable offset,
//     the end of committed data, and plans with PlanRestore: from the
//     checkpoint to the end, or, when there is no usable checkpoint, from the
//     log start after calling the target's Reset.
//  3. If Restore fails with ErrCheckpointAhead, the changelog holds less than
//     the store already does (the topic was recreated or the broker lost
//     data). Wipe the store, delete the checkpoint and restore again with
//     NoCheckpoint.
//  4. Write RestoreResult.EndOffset into the checkpoint for the partition.
//
// Restore is complete when the next offset to read reaches the end offset,
// not when a record with the last offset arrives: the last offsets of a
// changelog may be transaction markers, records of aborted transactions, or
// gaps left by compaction, none of which a reader ever sees. The Restorer
// therefore fetches with raw Fetch requests and franz-go's
// kgo.ProcessFetchPartition, which reports the next offset to fetch past
// everything it skipped; a kgo consumer does not expose that position.
package changelog
