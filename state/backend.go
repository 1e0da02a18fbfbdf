package state

// Backend is the physical layer under every store: an ordered map from byte
// keys to byte values. Keys order by bytes.Compare. A Backend is owned by one
// task goroutine and need not be safe for concurrent use, except that Close
// may follow any call.
//
// Typed stores, changelog logging and the transactional overlay are layers
// above a Backend; a Backend knows nothing of Kafka.
type Backend interface {
	// Get returns the value stored under key. ok is false when the key is
	// absent. The returned slice must not be modified and is valid only until
	// the next call that writes to the backend.
	Get(key []byte) (value []byte, ok bool, err error)
	// Apply writes a batch atomically: after a crash either all of the batch
	// or none of it is visible. A Write with Delete set removes its key; a
	// Write with DeleteRange set removes every key in [Key, End) (see
	// Write); any other Write stores Value, and a nil or empty Value is
	// stored as a present key with a zero-length value. The writes take
	// effect in batch order: when several touch one key, the last one wins,
	// so a put after a range delete that covers its key survives, and a
	// range delete after a put removes it. Every Backend supports range
	// deletes, natively or by deleting the range's keys one by one.
	// Persistent backends make the batch durable before Apply returns. Apply
	// copies what it keeps: the caller may reuse the batch's buffers as soon
	// as Apply returns.
	Apply(batch []Write) error
	// Range iterates keys in [start, end) in ascending order. A nil start
	// means from the first key; a nil end means to the last; a range with
	// start >= end is empty. The Iterator sees the backend as it was when
	// Range was called: writes applied while it is open are not visible to
	// it, and do not disturb it. Range copies the bounds, so the caller may
	// reuse them at once.
	Range(start, end []byte) (Iterator, error)
	// ReadView returns a consistent, read-only view of the backend as it is
	// now, for a reader on another goroutine (an interactive query) while
	// the owner keeps writing. ReadView itself is called by the owner, like
	// every method of the Backend; the view it returns may then be used by
	// any goroutine, concurrently with the owner's calls. See ReadView.
	ReadView() (ReadView, error)
	// Close releases the backend's resources. Persistent backends keep their
	// data on disk. Iterators and read views still open stop: their Next
	// returns false and their Err, or the view's Get and Range, return
	// ErrClosed. Close is idempotent; every other method returns ErrClosed
	// after it.
	Close() error
}

// ReadView is a read-only snapshot of a Backend, made by Backend.ReadView:
// it sees every write applied before it was made and none applied after,
// however long it lives. A view and its iterators belong to one goroutine
// at a time, which need not be the backend owner's: the backend may be
// written, and read, concurrently with them. Get and Range behave as the
// Backend's do, except that the slices they return stay valid until the
// view is closed.
//
// A view pins the data it sees (a persistent backend keeps files it could
// otherwise delete; the in-memory backend copies the B-tree nodes the owner
// writes to while the view is open), so close it when the read is done.
// Closing the backend closes its views.
type ReadView interface {
	Get(key []byte) (value []byte, ok bool, err error)
	Range(start, end []byte) (Iterator, error)
	// Close releases the view. It is idempotent; Get and Range return
	// ErrClosed after it.
	Close() error
}

// Write is one change in a batch given to Backend.Apply: a put of Value
// under Key, a delete of Key (Delete set), or a range delete of the keys
// in [Key, End) (DeleteRange set). Set at most one of Delete and
// DeleteRange.
//
// A range delete removes every key k with Key <= k < End, in one
// operation, whatever the number of keys: window and session stores drop
// a whole time segment when it expires. Its bounds read as Range's: a nil
// Key is the least key (as the empty key is), a nil End means no upper
// bound, and a range with Key >= End (End not nil) is empty, which makes
// the write a no-op. Value is ignored.
type Write struct {
	Key   []byte
	Value []byte
	// End is the exclusive upper bound of a range delete; only DeleteRange
	// reads it.
	End []byte
	// Delete makes the Write remove Key.
	Delete bool
	// DeleteRange makes the Write remove every key in [Key, End).
	DeleteRange bool
}

// Iterator walks a range of a Backend. Call Next before the first Key.
// Key and Value are valid until the next call to Next, and must not be
// modified. Always Close an Iterator: a persistent backend pins resources
// for it.
type Iterator interface {
	// Next moves to the next key and reports whether there is one. It
	// returns false at the end of the range, on error, and after Close.
	Next() bool
	Key() []byte
	Value() []byte
	// Err reports an error that ended the iteration early. It is nil when
	// the range was exhausted or the iterator was closed by its caller.
	Err() error
	// Close releases the iterator. It is idempotent.
	Close() error
}

// BulkApplier is implemented by persistent backends that can apply batches
// without making each one durable before it returns, for bulk loads such as
// restoring from a changelog, where an fsync per batch would dominate.
// Check for it with a type assertion on a Backend.
//
// ApplyNoSync is Apply without the durability promise: each batch is still
// atomic, and after a crash the backend holds a prefix of the batches
// applied (never part of one). Sync makes every batch applied so far
// durable; call it before recording anywhere that the data is on disk (a
// checkpoint).
type BulkApplier interface {
	ApplyNoSync(batch []Write) error
	Sync() error
}

// RunIngester is implemented by persistent backends that can add a sorted
// run of writes straight to their files, bypassing the write-ahead log and
// the memtable, for bulk loads such as restoring from a changelog, where
// inserting every write into the memtable and flushing it again dominates.
// Check for it with a type assertion on a Backend; a RunIngester is also a
// BulkApplier.
//
// IngestRun adds the n writes write(0) to write(n-1) as one batch that is
// newer than every write applied before it, including those of
// ApplyNoSync: a write in the run replaces an earlier value of its key, and
// a Write with Delete set removes an earlier value, wherever that value is.
// The keys must be in strictly increasing order (bytes.Compare), each key
// at most once; a run out of order fails IngestRun with nothing applied.
// A run may hold puts and deletes only: a Write with DeleteRange set fails
// IngestRun with nothing applied (apply range deletes with Apply or
// ApplyNoSync).
// IngestRun may call write more than once for an index, and from several
// goroutines at once; the slices of the writes it returns must stay valid
// and unchanged until IngestRun returns, which keeps none of them. The run is atomic, and durable when IngestRun returns, together
// with every batch applied before it: after a crash the backend holds a
// prefix of the batches and runs applied. An empty run is a no-op.
//
// Each run becomes a few files, which the backend merges with its other
// files later, in the background: feed it runs of many megabytes, not small
// batches.
type RunIngester interface {
	BulkApplier
	IngestRun(n int, write func(i int) Write) error
}

// OffsetRecorder is implemented by persistent backends that can record,
// atomically with the data, how far into its changelog a store's state
// reaches, as Kafka Streams' KIP-1035 keeps the changelog offsets in the
// store itself. A checkpoint file written after the data can then be
// checked against the store: after a crash that lost the tail of the
// store's write-ahead log, the store's recorded offset is older than the
// checkpoint's, and the engine restores the tail instead of trusting the
// file. Check for it with a type assertion on a Backend.
type OffsetRecorder interface {
	// ApplyAt applies batch, as Apply does, and records next (the changelog
	// offset after the last record the store's state reflects) in the same
	// atomic batch. With sync it is durable when ApplyAt returns; without,
	// after the next Sync (see BulkApplier) or synced write. An empty batch
	// records next alone, as a restore does when it has applied a
	// changelog up to its end.
	ApplyAt(batch []Write, next int64, sync bool) error
	// RecordedOffset returns the offset the last ApplyAt recorded that
	// survives; ok is false if none was ever recorded.
	RecordedOffset() (next int64, ok bool, err error)
}
