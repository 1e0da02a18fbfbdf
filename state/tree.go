package state

import (
	"bytes"

	"github.com/google/btree"
)

// treeDegree is the B-tree degree of the in-memory trees: nodes hold up to
// 2*treeDegree-1 entries. On the statetest benchmarks degrees 16 to 64
// measured alike for writes, reads and scans, while 8 took half as much
// heap again per key; 32 sits in the middle of the flat part.
const treeDegree = 32

// iterChunk is how many entries a treeIter copies out of the tree per walk.
// Each walk costs one descent from the root, so larger chunks amortize it.
const iterChunk = 64

// entry is one key of a tree made by newTree. Key and value share one
// allocation (see newEntry) and are never modified once the entry is in a
// tree, which is what lets Get hand out the stored slice and lets iterators
// keep entries of a snapshot after the tree has moved on.
//
// A nil value marks a tombstone: a pending delete in an Overlay. Stored
// values are never nil, even when empty, because newEntry slices them out
// of a non-nil buffer. The memory backend never stores tombstones.
type entry struct {
	key, value []byte
}

// newEntry copies key and value into a single allocation.
func newEntry(key, value []byte) entry {
	buf := make([]byte, len(key)+len(value))
	n := copy(buf, key)
	copy(buf[n:], value)
	return entry{key: buf[:n:n], value: buf[n:]}
}

// bytes returns the length of e's key and value together.
func (e entry) bytes() int64 { return int64(len(e.key) + len(e.value)) }

// newTombstone copies key into an entry that marks it deleted.
func newTombstone(key []byte) entry {
	return entry{key: cloneBound(key)}
}

// tombstone reports whether e marks a deleted key.
func (e entry) tombstone() bool { return e.value == nil }

func lessEntry(a, b entry) bool { return bytes.Compare(a.key, b.key) < 0 }

// newTree returns an empty B-tree of entries ordered by key.
func newTree() *btree.BTreeG[entry] {
	return btree.NewG(treeDegree, lessEntry)
}

// treeIter walks [start, end) of a B-tree snapshot, tombstones included.
//
// The tree it walks must not change: callers hand it a Clone, which is O(1)
// and copy-on-write, so the live tree can take writes while the iterator is
// open without either seeing the other's changes. Walking a B-tree is
// callback based, so the iterator copies entries out a chunk at a time and
// resumes each chunk just after the last key it returned.
type treeIter struct {
	tree     *btree.BTreeG[entry]
	start    []byte // the first chunk starts here; nil means the first key
	end      []byte // exclusive; nil means no upper bound
	buf      []entry
	pos      int
	started  bool
	drained  bool // the tree holds nothing after buf
	resumeAt []byte
}

// newTreeIter returns an iterator over [start, end) of snapshot. The bounds
// are copied.
func newTreeIter(snapshot *btree.BTreeG[entry], start, end []byte) *treeIter {
	it := &treeIter{tree: snapshot, end: cloneBound(end), start: cloneBound(start)}
	if end != nil && bytes.Compare(start, end) >= 0 { // a nil start compares as the empty key, the least
		it.drained = true
		it.started = true
	}
	return it
}

// cloneBound copies b, keeping nil (an unbounded range bound) distinct from
// empty.
func cloneBound(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}

// next advances to the next entry; cur is valid only after it returns true.
func (it *treeIter) next() bool {
	if it.pos+1 < len(it.buf) {
		it.pos++
		return true
	}
	if it.drained {
		it.buf, it.pos = nil, 0
		return false
	}
	it.fill()
	return len(it.buf) > 0
}

// cur returns the entry the iterator is positioned on.
func (it *treeIter) cur() entry { return it.buf[it.pos] }

// fill copies the next chunk of entries into buf.
func (it *treeIter) fill() {
	it.buf, it.pos = it.buf[:0], 0
	resuming, full := it.started, false
	visit := func(e entry) bool {
		if it.end != nil && bytes.Compare(e.key, it.end) >= 0 {
			return false
		}
		if resuming && bytes.Equal(e.key, it.resumeAt) {
			return true // returned at the end of the previous chunk
		}
		it.buf = append(it.buf, e)
		if len(it.buf) == iterChunk {
			full = true
			return false
		}
		return true
	}
	switch {
	case resuming:
		it.tree.AscendGreaterOrEqual(entry{key: it.resumeAt}, visit)
	case it.start != nil:
		it.tree.AscendGreaterOrEqual(entry{key: it.start}, visit)
	default:
		it.tree.Ascend(visit)
	}
	it.started = true
	it.drained = !full
	if len(it.buf) > 0 {
		it.resumeAt = it.buf[len(it.buf)-1].key
	}
}

// release drops the snapshot so that its nodes can be collected.
func (it *treeIter) release() {
	it.tree, it.buf, it.drained = nil, nil, true
}
