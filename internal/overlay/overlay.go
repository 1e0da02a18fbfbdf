// Package overlay owns a task's transactional write buffer over its store
// backends: the layer that makes exactly-once hold for state.
//
// Under exactly-once processing a task's store writes belong to the open
// Kafka transaction, and a rebalance can abort that transaction at any
// time. So writes go to the Overlay, reads see the Overlay merged over the
// backend, and the engine drives it:
//
//  1. Records are processed; stores Put and Delete into the Overlay.
//  2. At commit, Overlay.Pending lists one write per changed key; the engine
//     sends them to the store's changelog inside the transaction.
//  3. If the transaction commits, Overlay.Commit applies the writes to the
//     backend in one atomic Apply, and the engine then writes the checkpoint.
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
// Backend
// and run over an Overlay, and layers compose. Its Apply buffers the batch
// like a series of Put and Delete calls, and its Close discards pending
// writes and closes the backend beneath.
//
// An Overlay is owned by one goroutine, like the task that holds it, and
// takes no locks. It copies the keys and values it is given, so callers may
// reuse their buffers.
type Overlay struct {
	backend state.Backend
	// pending holds one entry per written key, ordered by key; a tombstone
	// entry is a pending delete.
	pending *btree.BTreeG[kvtree.Entry]
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
// (a pending delete reads as absent), else the backend's value. The
// returned slice must not be modified.
func (o *Overlay) Get(key []byte) ([]byte, bool, error) {
	if o.closed {
		return nil, false, state.ErrClosed
	}
	if e, ok := o.pending.Get(kvtree.Entry{Key: key}); ok {
		if e.Tombstone() {
			return nil, false, nil
		}
		return e.Value, true, nil
	}
	return o.backend.Get(key)
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

// Apply buffers the batch as if each write were given to Put or Delete in
// order. It implements state.Backend; nothing reaches the backend until Commit.
func (o *Overlay) Apply(batch []state.Write) error {
	if o.closed {
		return state.ErrClosed
	}
	for _, w := range batch {
		if w.Delete {
			o.Delete(w.Key)
		} else {
			o.Put(w.Key, w.Value)
		}
	}
	return nil
}

// Len returns the number of pending writes: the number of distinct keys
// written since the last Commit or Discard.
func (o *Overlay) Len() int { return o.pending.Len() }

// Pending returns the pending writes in key order, one per key: the last
// write to each key since the last Commit or Discard. They are the records
// the engine sends to the changelog at commit. The slices in the Writes are
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

// Commit applies the pending writes to the backend in one atomic Apply and
// clears them. With nothing pending it does not call the backend. If Apply
// fails, the writes stay pending, so the engine can retry Commit or give up
// with Discard (and restore the store from its changelog).
func (o *Overlay) Commit() error {
	if o.closed {
		return state.ErrClosed
	}
	if o.pending.Len() == 0 {
		return nil
	}
	if err := o.backend.Apply(o.Pending()); err != nil {
		return fmt.Errorf("overlay: commit %d pending writes to the backend: %w", o.pending.Len(), err)
	}
	o.pending.Clear(false)
	return nil
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
	if o.pending.Len() == 0 {
		return nil
	}
	if err := rec.ApplyAt(o.Pending(), next, sync); err != nil {
		return fmt.Errorf("overlay: commit %d pending writes to the backend at changelog offset %d: %w", o.pending.Len(), next, err)
	}
	o.pending.Clear(false)
	return nil
}

// Discard drops the pending writes, as when the transaction they belong to
// aborts. Reads then see the backend alone.
func (o *Overlay) Discard() {
	o.pending.Clear(false)
}

// Range iterates [start, end) of the pending writes merged over the
// backend, in key order: a pending write replaces the backend's value of
// its key, and pending deletes are skipped. Like a state.Backend's, the iterator
// sees the Overlay as it was when Range was called.
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
	return &overlayView{pending: o.pending.Clone(), base: base, overlayClosed: o.shut}, nil
}

// overlayView is the state.ReadView of an Overlay.
type overlayView struct {
	pending       *btree.BTreeG[kvtree.Entry] // never written
	base          state.ReadView
	closed        bool
	overlayClosed *atomic.Bool
}

func (v *overlayView) stopped() bool { return v.closed || v.overlayClosed.Load() }

func (v *overlayView) Get(key []byte) ([]byte, bool, error) {
	if v.stopped() {
		return nil, false, state.ErrClosed
	}
	if e, ok := v.pending.Get(kvtree.Entry{Key: key}); ok {
		if e.Tombstone() {
			return nil, false, nil
		}
		return e.Value, true, nil
	}
	return v.base.Get(key)
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
	o.pending.Clear(false)
	if err := o.backend.Close(); err != nil {
		return fmt.Errorf("overlay: close the overlay's backend: %w", err)
	}
	return nil
}

// mergeIter merges an Overlay's pending writes (top) over an iterator of
// its backend (base). Both yield keys in ascending order, each key at most
// once, so the merge compares their current keys and yields the smaller;
// on a tie the top entry wins and the base entry is stepped past. A top
// tombstone is never yielded; it hides the base entry of its key.
//
// The iterators are advanced lazily, at the start of the following Next,
// because the base's Key and Value are only valid until its next Next and
// the merged iterator may be returning them.
type mergeIter struct {
	closed         func() bool // whether the Overlay or view is closed
	top            *kvtree.Iter
	base           state.Iterator
	topOK, baseOK  bool // whether top and base are positioned on an entry
	nextTop        bool // advance top before the next comparison
	nextBase       bool // advance base before the next comparison
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
			m.key, m.value = m.base.Key(), m.base.Value()
			m.nextBase = true
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
