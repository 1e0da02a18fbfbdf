package changelog

import "time"

// RestoreListener hears of the progress of the restores of changelog
// partitions into stores, for metrics. Its methods are called from the
// restoring goroutines, several at once when restores run concurrently,
// and must not block. Kafka Streams: StateRestoreListener.
type RestoreListener interface {
	// OnRestoreStart is called when a restore of tp has planned to read
	// offsets [from, end). It is called again if the restore starts over.
	OnRestoreStart(tp TopicPartition, from, end int64)
	// OnBatchRestored is called after each batch of records is applied:
	// next is the next offset to read, records the number applied.
	OnBatchRestored(tp TopicPartition, next int64, records int)
	// OnRestoreEnd is called when a restore of tp has finished, with its
	// result; err is nil after a success.
	OnRestoreEnd(tp TopicPartition, res RestoreResult, err error)
}

// RestoreResult reports what a restore did.
type RestoreResult struct {
	// Partition is the changelog partition restored.
	Partition TopicPartition
	// StartOffset is the offset the restore started reading at: the
	// checkpoint, or the log start for a full restore.
	StartOffset int64
	// EndOffset is the offset the store is restored up to, exclusive: the
	// offset to write into the checkpoint.
	EndOffset int64
	// Full is true if the store was wiped before reading.
	Full bool
	// Records counts the records applied, tombstones included.
	Records int64
	// Duration is how long the restore took.
	Duration time.Duration
}
