package changelog

import (
	"bytes"
	"cmp"
	"errors"
	"slices"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddystream/eddy/state"
)

const (
	// DefaultRunBytes is the memory a StoreTarget buffers records in when it
	// is created without WithRunBytes.
	DefaultRunBytes = 16 << 20
	// maxRunBytes keeps the offsets of a run's entries within 32 bits.
	maxRunBytes = 1 << 30
	// minIngestBytes is the size under which a run is applied as a batch
	// rather than ingested: a file per small run, as an incremental restore
	// of a few records would make, would pile small files up in L0.
	minIngestBytes = 1 << 20
	// runEntrySize is the memory a runEntry takes, counted against the
	// run's bound along with the keys and values.
	runEntrySize = 12
)

// StoreTarget is a RestoreTarget that restores into a state.Backend, a
// changelog record with a nil value becoming a delete.
//
// If the backend is a state.RunIngester (a Pebble store), the target
// buffers the records it is given, copied, in up to WithRunBytes of memory.
// When the buffer is full, and in Sync, it sorts the records by key, keeps
// the last write of each key, and hands the result to the backend as one
// run, which the backend writes straight into a file of its own instead of
// inserting every record into its memtable and flushing that again. Each
// run is newer than the runs and writes before it, so the store ends as if
// the records had been applied one by one, in full and incremental
// restores alike. A run under 1 MiB (the last one of a short incremental
// restore, typically) is applied as one batch instead.
//
// Otherwise, if the backend is a state.BulkApplier, each batch of records
// becomes one batch of writes applied without an fsync; and if it is
// neither, one batch applied with Backend.Apply.
//
// Records buffered are not in the backend until Sync, which makes them
// and every write before them durable and frees the buffer. A Restorer
// calls it at the end of each successful restore (StoreTarget is a
// Syncer); anyone else feeding a StoreTarget must call it before writing a
// checkpoint that claims the data, and before reading the store.
//
// A StoreTarget is used by one restore at a time (the Restorer calls a
// target from one goroutine); it reuses its buffers between batches.
type StoreTarget struct {
	b     state.Backend
	bulk  state.BulkApplier
	ing   state.RunIngester // nil when runs are off
	batch []state.Write

	// runBytes bounds len(arena) plus runEntrySize per entry.
	runBytes int
	// arena holds the keys and values of the run, each value right after
	// its key; entries index them in the order the records came.
	arena   []byte
	entries []runEntry
}

// runEntry is one buffered record: its key is arena[off:off+klen], its
// value the vlen bytes after the key, or a tombstone when vlen is -1.
type runEntry struct {
	off, klen uint32
	vlen      int32
}

var _ RestoreTarget = (*StoreTarget)(nil)

// StoreTargetOption configures a StoreTarget; pass options to
// NewStoreTarget.
type StoreTargetOption func(*StoreTarget)

// WithRunBytes sets the memory in bytes in which a StoreTarget buffers
// records for a backend that is a state.RunIngester: the keys and values
// copied, plus 12 bytes a record. A run holds at least one record, however
// large. Zero or less turns runs off: the target applies each batch as it
// comes. Sizes above 1 GiB are taken as 1 GiB. Memory counts for every
// target whose restore has not been synced yet: a task restoring three
// stores can hold three runs at once.
//
// Larger runs make fewer files for the backend to compact; once a store's
// changelog fits in one run, a larger bound gains nothing. Kafka Streams
// has no equivalent: it restores through RocksDB's write path.
//
// Default: DefaultRunBytes (16 MiB).
func WithRunBytes(n int) StoreTargetOption {
	return func(t *StoreTarget) { t.runBytes = min(max(n, 0), maxRunBytes) }
}

// NewStoreTarget returns a target that restores into b.
func NewStoreTarget(b state.Backend, opts ...StoreTargetOption) *StoreTarget {
	t := &StoreTarget{b: b, runBytes: DefaultRunBytes}
	for _, opt := range opts {
		opt(t)
	}
	t.bulk, _ = b.(state.BulkApplier)
	if ing, ok := b.(state.RunIngester); ok && t.runBytes > 0 {
		t.ing = ing
	}
	return t
}

// Wipe drops the buffered records and deletes every key, in batches. A
// restore wipes only when the store's checkpoint turned out to be older
// than the changelog's log start.
func (t *StoreTarget) Wipe() error {
	t.resetRun()
	for {
		it, err := t.b.Range(nil, nil)
		if err != nil {
			return err
		}
		batch := t.batch[:0]
		for len(batch) < 10_000 && it.Next() {
			batch = append(batch, state.Write{Key: append([]byte(nil), it.Key()...), Delete: true})
		}
		err = errors.Join(it.Err(), it.Close())
		if err != nil || len(batch) == 0 {
			return err
		}
		if err := t.apply(batch); err != nil {
			return err
		}
	}
}

// ApplyBatch buffers the records in the run, ingesting the run first
// whenever it is full, or, with runs off, writes them as one batch.
func (t *StoreTarget) ApplyBatch(recs []*kgo.Record) error {
	if t.ing != nil {
		for _, r := range recs {
			if err := t.add(r.Key, r.Value); err != nil {
				return err
			}
		}
		return nil
	}
	batch := t.batch[:0]
	for _, r := range recs {
		batch = append(batch, state.Write{Key: r.Key, Value: r.Value, Delete: r.Value == nil})
	}
	err := t.apply(batch)
	clear(batch) // drop the references to the records
	t.batch = batch[:0]
	return err
}

func (t *StoreTarget) apply(batch []state.Write) error {
	if t.bulk != nil {
		return t.bulk.ApplyNoSync(batch)
	}
	return t.b.Apply(batch)
}

// add copies a record into the run, flushing the run first if the record
// would take it over its bound.
func (t *StoreTarget) add(key, value []byte) error {
	size := len(key) + len(value)
	if len(t.entries) > 0 && t.runSize()+size+runEntrySize > t.runBytes {
		if err := t.flushRun(); err != nil {
			return err
		}
	}
	e := runEntry{off: uint32(len(t.arena)), klen: uint32(len(key)), vlen: int32(len(value))}
	if value == nil {
		e.vlen = -1
	}
	t.arena = grow(t.arena, size, t.runBytes)
	t.arena = append(append(t.arena, key...), value...)
	t.entries = append(grow(t.entries, 1, t.runBytes/runEntrySize), e)
	return nil
}

// grow returns s with room for n more elements, growing it to at most
// limit elements unless more are needed, so that a run's buffers stay
// within its bound instead of doubling past it.
func grow[S ~[]E, E any](s S, n, limit int) S {
	need := len(s) + n
	if need <= cap(s) {
		return s
	}
	c := max(min(2*cap(s), limit), need, 1024)
	g := make(S, len(s), c)
	copy(g, s)
	return g
}

func (t *StoreTarget) runSize() int { return len(t.arena) + runEntrySize*len(t.entries) }

// flushRun writes the buffered run to the backend and empties the buffer.
func (t *StoreTarget) flushRun() error {
	if len(t.entries) == 0 {
		return nil
	}
	small := t.runSize() < min(minIngestBytes, t.runBytes/4)
	// Sorting by key and then by arrival puts the last write of each key
	// at the end of its group (the offsets in the arena grow with arrival);
	// keeping only that one leaves the keys strictly increasing.
	slices.SortFunc(t.entries, func(a, b runEntry) int {
		if c := bytes.Compare(t.key(a), t.key(b)); c != 0 {
			return c
		}
		return cmp.Compare(a.off, b.off)
	})
	es := t.entries
	last := es[:0]
	for i, e := range es {
		if i+1 == len(es) || !bytes.Equal(t.key(e), t.key(es[i+1])) {
			last = append(last, e)
		}
	}
	var err error
	if small {
		batch := t.batch[:0]
		for _, e := range last {
			batch = append(batch, t.write(e))
		}
		err = t.apply(batch)
		clear(batch)
		t.batch = batch[:0]
	} else {
		err = t.ing.IngestRun(len(last), func(i int) state.Write { return t.write(last[i]) })
	}
	t.resetRun()
	return err
}

// write returns the write of a buffered record. It only reads the run, so
// a RunIngester may call it from several goroutines.
func (t *StoreTarget) write(e runEntry) state.Write {
	w := state.Write{Key: t.key(e), Delete: e.vlen < 0}
	if !w.Delete {
		start := e.off + e.klen
		end := start + uint32(e.vlen)
		w.Value = t.arena[start:end:end]
	}
	return w
}

func (t *StoreTarget) key(e runEntry) []byte {
	return t.arena[e.off : e.off+e.klen : e.off+e.klen]
}

func (t *StoreTarget) resetRun() {
	t.arena, t.entries = t.arena[:0], t.entries[:0]
}

// Sync writes the buffered run to the backend and makes what the target
// applied durable, then frees the run's buffers. It is a no-op for a
// backend that is not a state.BulkApplier (its Apply is durable already).
func (t *StoreTarget) Sync() error {
	if err := t.flushRun(); err != nil {
		return err
	}
	t.arena, t.entries, t.batch = nil, nil, nil
	if t.bulk == nil {
		return nil
	}
	return t.bulk.Sync()
}
