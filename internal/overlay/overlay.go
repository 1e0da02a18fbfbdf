// Package overlay owns a task's transactional write buffer over its store
// backends: the layer that makes exactly-once hold for state.
//
// Under exactly-once processing a task's store writes belong to the open
// Kafka transaction, and a rebalance can abort that transaction at any
// time. So writes go to the Overlay, reads see the Overlay merged over the
// backend, and the engine drives it:
//
//  1. Records are processed; stores Put, Delete and DeleteRange into the
//     Overlay.
//  2. At commit, Overlay.Pending lists one write per changed key; the engine
//     sends them to the store's changelog inside the transaction. Range
//     deletes are not among them: they are not logged (see
//     state.RawStore.DeleteRange).
//  3. If the transaction commits, Overlay.Commit applies the range deletes
//     and the writes to the backend in one atomic Apply, and the engine then
//     writes the checkpoint.
//  4. If it aborts, Overlay.Discard drops them, so no update is applied twice.
package overlay

import (
	"bytes"
	"fmt"
	"sync/atomic"

	"github.com/google/btree"

	"github.com/eddystream/eddy/internal/kvtree"
	"github.com/eddystream/eddy/state"
)

// Overlay is a task's transactional write buffer over a Backend. Writes
// wait in the Overlay until the engine commits or discards them; reads see
// the pending writes merged over the backend. See the package documentation
// for how the engine drives it through a Kafka transaction.
//
// An Overlay is itself a state.Backend, so stores can be written against
// Backend and run over an Overlay, and layers compose. Its Apply buffers
// the batch like a series of Put, Delete and DeleteRange calls, and its
// Close discards pending writes and closes the backend beneath.
//
// An Overlay is owned by one goroutine, like the task that holds it, and
// takes no locks. It copies the keys and values it is given, so callers may
// reuse their buffers.
type Overlay struct {
	backend state.Backend
	// pending holds one entry per written key, ordered by key; a tombstone
	// entry is a pending delete.
	pending *btree.BTreeG[kvtree.Entry]
	// cleared holds the ranges deleted since the last Commit or Discard.
	// They hide the backend's keys; pending holds no key of them but those
	// written after the range delete, which read as written. Usually
	// empty, and then reads cost what they did before range deletes.
	cleared spans
	closed  bool
	// shut is closed as seen by read views, which other goroutines use.
	shut *atomic.Bool
}

var _ state.Backend = (*Overlay)(nil)

// New returns an Overlay with no pending writes over b. The caller
// may still read b directly, where it sees committed writes only; closing
// the Overlay closes b.
func New(b state.Backend) *Overlay {
	return &Overlay{backend: b, pending: kvtree.New(), shut: new(atomic.Bool)}
}

// Get returns the value of key: the pending write of key if there is one
// (a pending delete reads as absent), else nothing if a pending range
// delete covers key, else the backend's value. The returned slice must not
// be modified.
func (o *Overlay) Get(key []byte) ([]byte, bool, error) {
	if o.closed {
		return nil, false, state.ErrClosed
	}
	return get(o.pending, o.cleared, key, o.backend.Get)
}

// get reads key from pending writes and range deletes over a base.
func get(pending *btree.BTreeG[kvtree.Entry], cleared spans, key []byte, base func([]byte) ([]byte, bool, error)) ([]byte, bool, error) {
	if e, ok := pending.Get(kvtree.Entry{Key: key}); ok {
		if e.Tombstone() {
			return nil, false, nil
		}
		return e.Value, true, nil
	}
	if len(cleared) > 0 && cleared.covers(key) {
		return nil, false, nil
	}
	return base(key)
}

// Put buffers a write of value under key. A nil value stores an empty one;
// use Delete to remove a key. After Close, Put does nothing.
func (o *Overlay) Put(key, value []byte) {
	if o.closed {
		return
	}
	o.pending.ReplaceOrInsert(kvtree.NewEntry(key, value))
}

// Delete buffers the removal of key. The delete is kept, and committed,
// even if the backend does not hold key, so that the changelog records it
// too: the Overlay does not read the backend to find out. After Close,
// Delete does nothing.
func (o *Overlay) Delete(key []byte) {
	if o.closed {
		return
	}
	o.pending.ReplaceOrInsert(kvtree.NewTombstone(key))
}

// DeleteRange buffers the removal of every key in [start, end): from then
// on reads see none of the range's keys, those of the backend and those
// written earlier in the interval alike, until they are written again. A
// nil start is the least key, a nil end means no upper bound, and a range
// with start >= end (end not nil) is empty: DeleteRange then does nothing.
// After Close, DeleteRange does nothing.
//
// The Overlay drops the pending writes of the range, at O(log n) a key, and
// keeps the range; Commit applies it before the writes that follow it. It
// does not read the backend, so a range delete costs the same whatever the
// backend holds; until Commit, reads that land in the range step over the
// backend's keys there. Pending lists no range delete: a range delete is
// not for the changelog.
func (o *Overlay) DeleteRange(start, end []byte) {
	if o.closed || (end != nil && bytes.Compare(start, end) >= 0) { // a nil start compares as the empty key, the least
		return
	}
	kvtree.DeleteRange(o.pending, start, end, nil)
	o.cleared = o.cleared.with(start, end)
}

// Apply buffers the batch as if each write were given to Put, Delete or
// DeleteRange in order. It implements state.Backend; nothing reaches the
// backend until Commit.
func (o *Overlay) Apply(batch []state.Write) error {
	if o.closed {
		return state.ErrClosed
	}
	for _, w := range batch {
		switch {
		case w.DeleteRange:
			o.DeleteRange(w.Key, w.End)
		case w.Delete:
			o.Delete(w.Key)
		default:
			o.Put(w.Key, w.Value)
		}
	}
	return nil
}

// Len returns the number of pending writes: the number of distinct keys
// written since the last Commit or Discard. Range deletes are not counted.
func (o *Overlay) Len() int { return o.pending.Len() }

// Pending returns the pending writes in key order, one per key: the last
// write to each key since the last Commit or Discard. They are the records
// the engine sends to the changelog at commit. Range deletes are not among
// them, and a key written before a range delete that covers it is not
// either, unless written again after it. The slices in the Writes are
// the Overlay's own and must not be modified; they are never reused, so
// they stay valid after Commit and Discard (a producer may hold them until
// its records are acknowledged).
func (o *Overlay) Pending() []state.Write {
	if o.pending.Len() == 0 {
		return nil
	}
	writes := make([]state.Write, 0, o.pending.Len())
	o.pending.Ascend(func(e kvtree.Entry) bool {
		writes = append(writes, state.Write{Key: e.Key, Value: e.Value, Delete: e.Tombstone()})
		return true
	})
	return writes
}

// Commit applies the pending range deletes and writes to the backend in
// one atomic Apply and clears them. With nothing pending it does not call
// the backend. If Apply fails, the writes stay pending, so the engine can
// retry Commit or give up with Discard (and restore the store from its
// changelog).
//
// The batch holds the range deletes first, merged where they meet, and then
// the writes in key order. That applies them as they were made: a write
// pending in a deleted range was made after the range delete, since the
// range delete dropped those made before it.
func (o *Overlay) Commit() error {
	if o.closed {
		return state.ErrClosed
	}
	if o.empty() {
		return nil
	}
	if err := o.backend.Apply(o.batch()); err != nil {
		return fmt.Errorf("overlay: commit %s to the backend: %w", o.describe(), err)
	}
	o.clear()
	return nil
}

// empty reports whether nothing is pending.
func (o *Overlay) empty() bool { return o.pending.Len() == 0 && len(o.cleared) == 0 }

// batch returns what Commit applies: the range deletes, then the writes.
func (o *Overlay) batch() []state.Write {
	if len(o.cleared) == 0 {
		return o.Pending()
	}
	return append(o.cleared.writes(), o.Pending()...)
}

// describe names what is pending, for errors.
func (o *Overlay) describe() string {
	if len(o.cleared) == 0 {
		return fmt.Sprintf("%d pending writes", o.pending.Len())
	}
	return fmt.Sprintf("%d pending writes and %d range deletes", o.pending.Len(), len(o.cleared))
}

// clear drops what is pending.
func (o *Overlay) clear() {
	o.pending.Clear(false)
	o.cleared = nil
}

// CommitAt is Commit for a backend that records its changelog offset with
// its data (state.OffsetRecorder): the pending writes and next, the
// changelog offset after them, go to the backend in one atomic ApplyAt,
// made durable before it returns only if sync is set. Over any other
// backend it is Commit.
func (o *Overlay) CommitAt(next int64, sync bool) error {
	rec, ok := o.backend.(state.OffsetRecorder)
	if !ok {
		return o.Commit()
	}
	if o.closed {
		return state.ErrClosed
	}
	if o.empty() {
		return nil
	}
	if err := rec.ApplyAt(o.batch(), next, sync); err != nil {
		return fmt.Errorf("overlay: commit %s to the backend at changelog offset %d: %w", o.describe(), next, err)
	}
	o.clear()
	return nil
}

// Discard drops the pending writes and range deletes, as when the
// transaction they belong to aborts. Reads then see the backend alone.
func (o *Overlay) Discard() {
	o.clear()
}

// Range iterates [start, end) of the pending writes merged over the
// backend, in key order: a pending write replaces the backend's value of
// its key, pending deletes are skipped, and so are the backend's keys in
// pending range deletes. Like a state.Backend's, the iterator sees the
// Overlay as it was when Range was called.
func (o *Overlay) Range(start, end []byte) (state.Iterator, error) {
	if o.closed {
		return nil, state.ErrClosed
	}
	base, err := o.backend.Range(start, end)
	if err != nil {
		return nil, err
	}
	return &mergeIter{
		closed:  func() bool { return o.closed },
		top:     kvtree.NewIter(o.pending.Clone(), start, end),
		base:    base,
		cleared: o.cleared,
		nextTop: true, nextBase: true,
	}, nil
}

// ReadView returns a view of the Overlay as it is now: the pending writes
// merged over a read view of the backend. Interactive queries under
// exactly-once must not see writes that may yet be discarded: they take
// their views from the backend, not from the Overlay.
func (o *Overlay) ReadView() (state.ReadView, error) {
	if o.closed {
		return nil, state.ErrClosed
	}
	base, err := o.backend.ReadView()
	if err != nil {
		return nil, err
	}
	// The clone is copy-on-write, like the memory backend's views: the
	// Overlay's later writes, and Clear, leave its nodes alone.
	return &overlayView{pending: o.pending.Clone(), cleared: o.cleared, base: base, overlayClosed: o.shut}, nil
}

// overlayView is the state.ReadView of an Overlay.
type overlayView struct {
	pending       *btree.BTreeG[kvtree.Entry] // never written
	cleared       spans                       // never written either
	base          state.ReadView
	closed        bool
	overlayClosed *atomic.Bool
}

func (v *overlayView) stopped() bool { return v.closed || v.overlayClosed.Load() }

func (v *overlayView) Get(key []byte) ([]byte, bool, error) {
	if v.stopped() {
		return nil, false, state.ErrClosed
	}
	return get(v.pending, v.cleared, key, v.base.Get)
}

func (v *overlayView) Range(start, end []byte) (state.Iterator, error) {
	if v.stopped() {
		return nil, state.ErrClosed
	}
	base, err := v.base.Range(start, end)
	if err != nil {
		return nil, err
	}
	return &mergeIter{
		closed:  v.stopped,
		top:     kvtree.NewIter(v.pending, start, end),
		base:    base,
		cleared: v.cleared,
		nextTop: true, nextBase: true,
	}, nil
}

func (v *overlayView) Close() error {
	v.closed = true
	return v.base.Close()
}

// Close discards the pending writes and closes the backend beneath.
// Iterators still open stop with state.ErrClosed. Close is idempotent.
func (o *Overlay) Close() error {
	if o.closed {
		return nil
	}
	o.closed = true
	o.shut.Store(true)
	o.clear()
	if err := o.backend.Close(); err != nil {
		return fmt.Errorf("overlay: close the overlay's backend: %w", err)
	}
	return nil
}

// mergeIter merges an Overlay's pending writes (top) over an iterator of
// its backend (base). Both yield keys in ascending order, each key at most
// once, so the merge compares their current keys and yields the smaller;
// on a tie the top entry wins and the base entry is stepped past. A top
// tombstone is never yielded; it hides the base entry of its key. A base
// entry in a range of cleared is skipped too; top entries never are (the
// Overlay holds none in a cleared range but those written after the range
// delete).
//
// The iterators are advanced lazily, at the start of the following Next,
// because the base's Key and Value are only valid until its next Next and
// the merged iterator may be returning them.
type mergeIter struct {
	closed         func() bool // whether the Overlay or view is closed
	top            *kvtree.Iter
	base           state.Iterator
	cleared        spans // the range deletes hiding base entries
	ci             int   // cleared[ci:] are the ranges not wholly below the base key
	topOK, baseOK  bool  // whether top and base are positioned on an entry
	nextTop        bool  // advance top before the next comparison
	nextBase       bool  // advance base before the next comparison
	key, value     []byte
	err            error
	done, finished bool // done: closed by its user
}

func (m *mergeIter) Next() bool {
	if m.done || m.finished || m.err != nil {
		return false
	}
	if m.closed() {
		m.err = state.ErrClosed
		return false
	}
	for {
		if m.nextTop {
			m.topOK, m.nextTop = m.top.Next(), false
		}
		if m.nextBase {
			m.baseOK, m.nextBase = m.base.Next(), false
			if !m.baseOK {
				if err := m.base.Err(); err != nil {
					m.err = err
					return false
				}
			}
		}
		var cmp int
		switch {
		case !m.topOK && !m.baseOK:
			m.finished = true
			return false
		case !m.topOK:
			cmp = 1 // only base is left
		case !m.baseOK:
			cmp = -1 // only top is left
		default:
			cmp = bytes.Compare(m.top.Cur().Key, m.base.Key())
		}
		if cmp > 0 {
			m.nextBase = true
			if len(m.cleared) > 0 && m.baseCleared() {
				continue
			}
			m.key, m.value = m.base.Key(), m.base.Value()
			return true
		}
		top := m.top.Cur()
		m.nextTop = true
		m.nextBase = cmp == 0
		if top.Tombstone() {
			continue
		}
		m.key, m.value = top.Key, top.Value
		return true
	}
}

// baseCleared reports whether a range of cleared holds the base's key. The
// keys ascend, so the ranges wholly below one are below every later one,
// and a walk of the iterator steps through cleared once.
func (m *mergeIter) baseCleared() bool {
	key := m.base.Key()
	for m.ci < len(m.cleared) && m.cleared[m.ci].endsBefore(key) {
		m.ci++
	}
	return m.ci < len(m.cleared) && bytes.Compare(m.cleared[m.ci].start, key) <= 0
}

func (m *mergeIter) Key() []byte   { return m.key }
func (m *mergeIter) Value() []byte { return m.value }
func (m *mergeIter) Err() error    { return m.err }

func (m *mergeIter) Close() error {
	if m.done {
		return nil
	}
	m.done = true
	m.top.Release()
	m.key, m.value = nil, nil
	if err := m.base.Close(); err != nil {
		return fmt.Errorf("overlay: close the overlay's backend iterator: %w", err)
	}
	return nil
}
