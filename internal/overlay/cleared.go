package overlay

import (
	"bytes"
	"slices"

	"github.com/eddystream/eddy/internal/kvtree"
	"github.com/eddystream/eddy/state"
)

// span is a key range [start, end) deleted in the open interval. start is
// never nil (the least key is the empty one); a nil end means no upper
// bound.
type span struct{ start, end []byte }

// endsBefore reports whether every key of s is below key.
func (s span) endsBefore(key []byte) bool { return s.end != nil && bytes.Compare(s.end, key) <= 0 }

// spans are the ranges deleted in the open interval, sorted by start,
// disjoint and not touching: adding a range merges it with those it meets.
// A spans value is never modified once made (with merges rebuilds it), so
// iterators and read views keep the one they were opened with while the
// Overlay moves on.
type spans []span

// covers reports whether a range of s holds key: a binary search for the
// last range starting at or below key.
func (s spans) covers(key []byte) bool {
	i, found := slices.BinarySearchFunc(s, key, func(sp span, k []byte) int { return bytes.Compare(sp.start, k) })
	if found {
		return true
	}
	return i > 0 && !s[i-1].endsBefore(key)
}

// with returns s with [start, end) added, merged with every range it
// overlaps or touches. The range must not be empty. s is left unchanged.
func (s spans) with(start, end []byte) spans {
	add := span{start: append([]byte{}, start...), end: kvtree.CloneBound(end)}
	out := make(spans, 0, len(s)+1)
	i := 0
	for ; i < len(s) && s[i].end != nil && bytes.Compare(s[i].end, add.start) < 0; i++ {
		out = append(out, s[i]) // wholly below add, not touching it
	}
	for ; i < len(s) && (add.end == nil || bytes.Compare(s[i].start, add.end) <= 0); i++ {
		// s[i] overlaps or touches add: widen add to cover it.
		if bytes.Compare(s[i].start, add.start) < 0 {
			add.start = s[i].start
		}
		if add.end != nil && (s[i].end == nil || bytes.Compare(s[i].end, add.end) > 0) {
			add.end = s[i].end
		}
	}
	out = append(out, add)
	return append(out, s[i:]...)
}

// writes returns the range deletes of s as Writes.
func (s spans) writes() []state.Write {
	out := make([]state.Write, len(s))
	for i, sp := range s {
		out[i] = state.Write{Key: sp.start, End: sp.end, DeleteRange: true}
	}
	return out
}
