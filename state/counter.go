package state

// Counter is implemented by backends that can tell how many keys they hold,
// for a store-entries metric. Check for it with a type assertion on a
// Backend. Like the other Backend methods, ApproximateCount is called from
// the goroutine that owns the backend.
//
// The in-memory backend's count is exact. A persistent backend may return an
// estimate that drifts with overwrites and deletes not yet compacted away,
// as Kafka Streams' approximateNumEntries does on RocksDB; each
// implementation documents how far its figure can be trusted.
type Counter interface {
	ApproximateCount() (int64, error)
}
