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

// Sizer is implemented by backends that can report their approximate size
// in bytes, for a store-size metric. Check for it with a type assertion on
// a Backend. Like the other Backend methods, ApproximateSize is called from
// the goroutine that owns the backend, and it returns ErrClosed after Close.
//
// What the figure measures depends on the backend, and each implementation
// documents it: the in-memory backend counts the bytes of its keys and
// values, a persistent backend the bytes its data takes on disk. It must be
// cheap enough to call on every metrics scrape.
type Sizer interface {
	ApproximateSize() (bytes int64, err error)
}
