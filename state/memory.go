package state

import (
	"sync/atomic"

	"github.com/google/btree"

	"github.com/eddystream/eddy/internal/kvtree"
)

// NewMemoryBackend returns an empty Backend that keeps its data in memory,
// in a B-tree ordered by key. It implements Counter with an exact count and
// Sizer with the exact bytes of its keys and values.
//
// Nothing survives Close: a task on a memory backend restores its stores in
// full from their changelogs on every start, as Kafka Streams does for its
// in-memory stores.
//
// Range takes a copy-on-write snapshot of the tree in O(1), so an open
// iterator costs nothing until the tree is written; the first writes after
// it copy the B-tree nodes on their path, a few KiB each. ReadView takes
// the same snapshot, for another goroutine.
//
// A range delete walks the B-tree and deletes the keys of its range one by
// one: O(k log n) for k keys of the range among n, in chunks that bound
// its memory. Snapshots taken before it keep every key, as for any write.
func NewMemoryBackend() Backend {
	return &memoryBackend{tree: kvtree.New(), closed: new(atomic.Bool)}
}

// memoryBackend is the Backend returned by NewMemoryBackend. It stores
// entries with key and value in one allocation (see kvtree.NewEntry), which saves
// a heap object per key.
type memoryBackend struct {
	tree *btree.BTreeG[kvtree.Entry] // nil after Close
	// size is the bytes of the keys and values in tree, kept up to date by
	// Apply so that ApproximateSize need not walk the tree.
	size int64
	// closed is set by Close. Read views, used on other goroutines, share
	// it, so that they stop when the backend closes.
	closed *atomic.Bool
}

var (
	_ Counter = (*memoryBackend)(nil)
	_ Sizer   = (*memoryBackend)(nil)
)

func (m *memoryBackend) Get(key []byte) ([]byte, bool, error) {
	if m.tree == nil {
		return nil, false, ErrClosed
	}
	e, ok := m.tree.Get(kvtree.Entry{Key: key})
	if !ok {
		return nil, false, nil
	}
	return e.Value, true, nil
}

func (m *memoryBackend) Apply(batch []Write) error {
	if m.tree == nil {
		return ErrClosed
	}
	for _, w := range batch {
		if w.DeleteRange {
			kvtree.DeleteRange(m.tree, w.Key, w.End, func(old kvtree.Entry) { m.size -= old.Bytes() })
			continue
		}
		if w.Delete {
			if old, ok := m.tree.Delete(kvtree.Entry{Key: w.Key}); ok {
				m.size -= old.Bytes()
			}
			continue
		}
		e := kvtree.NewEntry(w.Key, w.Value)
		m.size += e.Bytes()
		if old, ok := m.tree.ReplaceOrInsert(e); ok {
			m.size -= old.Bytes()
		}
	}
	return nil
}

func (m *memoryBackend) Range(start, end []byte) (Iterator, error) {
	if m.tree == nil {
		return nil, ErrClosed
	}
	return &memoryIter{backend: m, it: kvtree.NewIter(m.tree.Clone(), start, end)}, nil
}

// Close drops the tree. Iterators still open stop with ErrClosed, although
// their snapshot could outlive the backend: a closed store must read as
// closed, whatever its backend.
func (m *memoryBackend) Close() error {
	m.tree, m.size = nil, 0
	m.closed.Store(true)
	return nil
}

// ReadView returns a copy-on-write clone of the tree, made in O(1). The
// clone and the live tree share their nodes until the owner writes: each
// write then copies the nodes on its path instead of changing them, so
// the view reads nodes that nothing writes, and needs no lock.
func (m *memoryBackend) ReadView() (ReadView, error) {
	if m.tree == nil {
		return nil, ErrClosed
	}
	return &memoryView{tree: m.tree.Clone(), backendClosed: m.closed}, nil
}

// memoryView is the ReadView of a memoryBackend.
type memoryView struct {
	tree          *btree.BTreeG[kvtree.Entry] // never written; nil after Close
	backendClosed *atomic.Bool
}

// usable returns ErrClosed if the view or its backend is closed.
func (v *memoryView) usable() error {
	if v.tree == nil || v.backendClosed.Load() {
		return ErrClosed
	}
	return nil
}

func (v *memoryView) Get(key []byte) ([]byte, bool, error) {
	if err := v.usable(); err != nil {
		return nil, false, err
	}
	e, ok := v.tree.Get(kvtree.Entry{Key: key})
	if !ok {
		return nil, false, nil
	}
	return e.Value, true, nil
}

func (v *memoryView) Range(start, end []byte) (Iterator, error) {
	if err := v.usable(); err != nil {
		return nil, err
	}
	// The view's tree never changes, so the iterator may walk it as is.
	return &memoryViewIter{view: v, it: kvtree.NewIter(v.tree, start, end)}, nil
}

func (v *memoryView) Close() error {
	v.tree = nil
	return nil
}

// memoryViewIter is the Iterator of a memoryView.
type memoryViewIter struct {
	view   *memoryView
	it     *kvtree.Iter
	err    error
	closed bool
}

func (i *memoryViewIter) Next() bool {
	if i.closed || i.err != nil {
		return false
	}
	if err := i.view.usable(); err != nil {
		i.err = err
		i.it.Release()
		return false
	}
	return i.it.Next()
}

func (i *memoryViewIter) Key() []byte   { return i.it.Cur().Key }
func (i *memoryViewIter) Value() []byte { return i.it.Cur().Value }
func (i *memoryViewIter) Err() error    { return i.err }

func (i *memoryViewIter) Close() error {
	i.closed = true
	i.it.Release()
	return nil
}

// ApproximateCount returns the exact number of keys.
func (m *memoryBackend) ApproximateCount() (int64, error) {
	if m.tree == nil {
		return 0, ErrClosed
	}
	return int64(m.tree.Len()), nil
}

// ApproximateSize returns the exact number of bytes in the keys and values
// held. It leaves out the B-tree's own overhead, at least 48 bytes a key on
// 64-bit machines (an entry's two slice headers in its node) plus the slack
// of part-full nodes, so a store of small keys and values takes noticeably
// more heap than it reports.
func (m *memoryBackend) ApproximateSize() (int64, error) {
	if m.tree == nil {
		return 0, ErrClosed
	}
	return m.size, nil
}

// memoryIter is the Iterator of a memoryBackend.
type memoryIter struct {
	backend *memoryBackend
	it      *kvtree.Iter
	err     error
	closed  bool
}

func (i *memoryIter) Next() bool {
	if i.closed || i.err != nil {
		return false
	}
	if i.backend.tree == nil {
		i.err = ErrClosed
		i.it.Release()
		return false
	}
	return i.it.Next()
}

func (i *memoryIter) Key() []byte   { return i.it.Cur().Key }
func (i *memoryIter) Value() []byte { return i.it.Cur().Value }
func (i *memoryIter) Err() error    { return i.err }

func (i *memoryIter) Close() error {
	i.closed = true
	i.it.Release()
	return nil
}
