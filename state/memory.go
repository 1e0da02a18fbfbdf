package state

import (
	"github.com/google/btree"
)

// NewMemoryBackend returns an empty Backend that keeps its data in memory,
// in a B-tree ordered by key. It implements Counter with an exact count.
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
}

var _ Counter = (*memoryBackend)(nil)

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
			m.tree.Delete(entry{key: w.Key})
			continue
		}
		m.tree.ReplaceOrInsert(newEntry(w.Key, w.Value))
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
	m.tree = nil
	return nil
}

// ApproximateCount returns the exact number of keys.
func (m *memoryBackend) ApproximateCount() (int64, error) {
	if m.tree == nil {
		return 0, ErrClosed
	}
	return int64(m.tree.Len()), nil
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
