// Package kvtree owns the in-memory ordered map under eddy's memory
// backend (package state) and the task's overlay (internal/overlay): a
// B-tree of byte keys and values with O(1) copy-on-write snapshots, and an
// iterator over a snapshot.
package kvtree

import (
	"bytes"

	"github.com/google/btree"
)

// treeDegree is the B-tree degree of the in-memory trees: nodes hold up to
// 2*treeDegree-1 entries. On the statetest benchmarks degrees 16 to 64
// measured alike for writes, reads and scans, while 8 took half as much
// heap again per key; 32 sits in the middle of the flat part.
const treeDegree = 32

// iterChunk is how many entries an Iter copies out of the tree per walk.
// Each walk costs one descent from the root, so larger chunks amortize it.
const iterChunk = 64

// Entry is one key of a tree made by New. Key and value share one
// allocation (see NewEntry) and are never modified once the Entry is in a
// tree, which is what lets Get hand out the stored slice and lets iterators
// keep entries of a snapshot after the tree has moved on.
//
// A nil value marks a tombstone: a pending delete in an overlay. Stored
// values are never nil, even when empty, because NewEntry slices them out
// of a non-nil buffer. The memory backend never stores tombstones.
type Entry struct {
	Key, Value []byte
}

// NewEntry copies key and value into a single allocation.
func NewEntry(key, value []byte) Entry {
	buf := make([]byte, len(key)+len(value))
	n := copy(buf, key)
	copy(buf[n:], value)
	return Entry{Key: buf[:n:n], Value: buf[n:]}
}

// Bytes returns the length of e's key and value together.
func (e Entry) Bytes() int64 { return int64(len(e.Key) + len(e.Value)) }

// NewTombstone copies key into an Entry that marks it deleted.
func NewTombstone(key []byte) Entry {
	return Entry{Key: CloneBound(key)}
}

// Tombstone reports whether e marks a deleted key.
func (e Entry) Tombstone() bool { return e.Value == nil }

func lessEntry(a, b Entry) bool { return bytes.Compare(a.Key, b.Key) < 0 }

// New returns an empty B-tree of entries ordered by key.
func New() *btree.BTreeG[Entry] {
	return btree.NewG(treeDegree, lessEntry)
}

// Iter walks [start, end) of a B-tree snapshot, tombstones included.
//
// The tree it walks must not change: callers hand it a Clone, which is O(1)
// and copy-on-write, so the live tree can take writes while the iterator is
// open without either seeing the other's changes. Walking a B-tree is
// callback based, so the iterator copies entries out a chunk at a time and
// resumes each chunk just after the last key it returned.
type Iter struct {
	tree     *btree.BTreeG[Entry]
	start    []byte // the first chunk starts here; nil means the first key
	end      []byte // exclusive; nil means no upper bound
	buf      []Entry
	pos      int
	started  bool
	drained  bool // the tree holds nothing after buf
	resumeAt []byte
}

// NewIter returns an iterator over [start, end) of snapshot. The bounds
// are copied.
func NewIter(snapshot *btree.BTreeG[Entry], start, end []byte) *Iter {
	it := &Iter{tree: snapshot, end: CloneBound(end), start: CloneBound(start)}
	if end != nil && bytes.Compare(start, end) >= 0 { // a nil start compares as the empty key, the least
		it.drained = true
		it.started = true
	}
	return it
}

// CloneBound copies b, keeping nil (an unbounded range bound) distinct from
// empty.
func CloneBound(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}

// Next advances to the next Entry; Cur is valid only after it returns true.
func (it *Iter) Next() bool {
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

// Cur returns the Entry the iterator is positioned on.
func (it *Iter) Cur() Entry { return it.buf[it.pos] }

// fill copies the next chunk of entries into buf.
func (it *Iter) fill() {
	it.buf, it.pos = it.buf[:0], 0
	resuming, full := it.started, false
	visit := func(e Entry) bool {
		if it.end != nil && bytes.Compare(e.Key, it.end) >= 0 {
			return false
		}
		if resuming && bytes.Equal(e.Key, it.resumeAt) {
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
		it.tree.AscendGreaterOrEqual(Entry{Key: it.resumeAt}, visit)
	case it.start != nil:
		it.tree.AscendGreaterOrEqual(Entry{Key: it.start}, visit)
	default:
		it.tree.Ascend(visit)
	}
	it.started = true
	it.drained = !full
	if len(it.buf) > 0 {
		it.resumeAt = it.buf[len(it.buf)-1].Key
	}
}

// Release drops the snapshot so that its nodes can be collected.
func (it *Iter) Release() {
	it.tree, it.buf, it.drained = nil, nil, true
}

// deleteChunk is how many keys DeleteRange collects per walk of the tree
// before it deletes them: it bounds the memory a range delete of many keys
// takes, at the cost of one descent from the root per chunk.
const deleteChunk = 256

// DeleteRange deletes every entry of tree with a key in [start, end),
// tombstones included, and calls removed, if not nil, with each entry it
// deleted, in key order. A nil start is the least key; a nil end means no
// upper bound; a range with start >= end is empty.
//
// google/btree has no range delete, so DeleteRange walks the range a
// chunk of keys at a time and deletes each: O(k log n) for k keys of the
// range in a tree of n, with no allocation per key beyond the chunk. Each
// delete follows the tree's copy-on-write rules, so snapshots (Clone) taken
// before it, and iterators over them, still see every key.
func DeleteRange(tree *btree.BTreeG[Entry], start, end []byte, removed func(Entry)) {
	if end != nil && bytes.Compare(start, end) >= 0 { // a nil start compares as the empty key, the least
		return
	}
	chunk := make([]Entry, 0, deleteChunk)
	from := start
	for {
		chunk = chunk[:0]
		visit := func(e Entry) bool {
			if end != nil && bytes.Compare(e.Key, end) >= 0 {
				return false
			}
			chunk = append(chunk, e)
			return len(chunk) < deleteChunk
		}
		if from == nil {
			tree.Ascend(visit)
		} else {
			tree.AscendGreaterOrEqual(Entry{Key: from}, visit)
		}
		for _, e := range chunk {
			tree.Delete(e)
			if removed != nil {
				removed(e)
			}
		}
		if len(chunk) < deleteChunk {
			return
		}
		// The chunk's keys are gone, so the next walk starts at the last of
		// them and finds the key after it first.
		from = chunk[len(chunk)-1].Key
	}
}
