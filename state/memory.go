package state

import (
	"github.com/google/btree"
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
// it copy the B-tree nodes on their path, a few KiB each.
func NewMemoryBackend() Backend {
	return &memoryBackend{tree: newTree()}
}

// memoryBackend is the Backend returned by NewMemoryBackend. It stores
// entries with key and value in one allocation (see newEntry), which saves
// a heap object per key.
type memoryBackend struct {
	tree *btree.BTreeG[entry] // nil after Close
	// size is the bytes of the keys and values in tree, kept up to date by
	// Apply so that ApproximateSize need not walk the tree.
	size int64
}

var (
	_ Counter = (*memoryBackend)(nil)
	_ Sizer   = (*memoryBackend)(nil)
)

func (m *memoryBackend) Get(key []byte) ([]byte, bool, error) {
	if m.tree == nil {
		return nil, false, ErrClosed
	}
	e, ok := m.tree.Get(entry{key: key})
	if !ok {
		return nil, false, nil
	}
	return e.value, true, nil
}

func (m *memoryBackend) Apply(batch []Write) error {
	if m.tree == nil {
		return ErrClosed
	}
	for _, w := range batch {
		if w.Delete {
			if old, ok := m.tree.Delete(entry{key: w.Key}); ok {
				m.size -= old.bytes()
			}
			continue
		}
		e := newEntry(w.Key, w.Value)
		m.size += e.bytes()
		if old, ok := m.tree.ReplaceOrInsert(e); ok {
			m.size -= old.bytes()
		}
	}
	return nil
}

func (m *memoryBackend) Range(start, end []byte) (Iterator, error) {
	if m.tree == nil {
		return nil, ErrClosed
	}
	return &memoryIter{backend: m, it: newTreeIter(m.tree.Clone(), start, end)}, nil
}

// Close drops the tree. Iterators still open stop with ErrClosed, although
// their snapshot could outlive the backend: a closed store must read as
// closed, whatever its backend.
func (m *memoryBackend) Close() error {
	m.tree, m.size = nil, 0
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
	it      *treeIter
	err     error
	closed  bool
}

func (i *memoryIter) Next() bool {
	if i.closed || i.err != nil {
		return false
	}
	if i.backend.tree == nil {
		i.err = ErrClosed
		i.it.release()
		return false
	}
	return i.it.next()
}

func (i *memoryIter) Key() []byte   { return i.it.cur().key }
func (i *memoryIter) Value() []byte { return i.it.cur().value }
func (i *memoryIter) Err() error    { return i.err }

func (i *memoryIter) Close() error {
	i.closed = true
	i.it.release()
	return nil
}
