package kvtree

import (
	"fmt"
	"slices"
	"testing"
)

func keysOf(it *Iter) []string {
	var out []string
	for it.Next() {
		out = append(out, string(it.Cur().Key))
	}
	return out
}

// TestDeleteRange deletes ranges spanning several chunks, and checks what
// is left, what the callback saw, and that a snapshot taken before still
// holds every key.
func TestDeleteRange(t *testing.T) {
	const n = 1000
	var all []string
	for i := range n {
		all = append(all, fmt.Sprintf("k%04d", i))
	}
	tests := []struct {
		name       string
		start, end []byte
		from, to   int // the indexes of all deleted: [from, to)
	}{
		{"several chunks", []byte("k0100"), []byte("k0700"), 100, 700},
		{"exactly one chunk", []byte("k0000"), []byte(fmt.Sprintf("k%04d", deleteChunk)), 0, deleteChunk},
		{"nil start", nil, []byte("k0003"), 0, 3},
		{"nil end", []byte("k0990"), nil, 990, n},
		{"everything", nil, nil, 0, n},
		{"between keys", []byte("k0001a"), []byte("k0001b"), 0, 0},
		{"inverted", []byte("k0500"), []byte("k0100"), 0, 0},
		{"start == end", []byte("k0500"), []byte("k0500"), 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tree := New()
			for _, k := range all {
				tree.ReplaceOrInsert(NewEntry([]byte(k), []byte("v")))
			}
			tree.ReplaceOrInsert(NewTombstone([]byte("k0100x"))) // tombstones go too
			snapshot := tree.Clone()
			var removed []string
			DeleteRange(tree, tt.start, tt.end, func(e Entry) { removed = append(removed, string(e.Key)) })

			want := slices.Concat(all[:tt.from], all[tt.to:])
			wantRemoved := slices.Clone(all[tt.from:tt.to])
			if tt.from <= 100 && 100 < tt.to {
				wantRemoved = slices.Insert(wantRemoved, 100-tt.from+1, "k0100x")
			} else {
				want = slices.Insert(want, slices.Index(want, "k0100")+1, "k0100x")
			}
			if got := keysOf(NewIter(tree, nil, nil)); !slices.Equal(got, want) {
				t.Errorf("the tree holds %d keys, want %d", len(got), len(want))
			}
			if !slices.Equal(removed, wantRemoved) {
				t.Errorf("removed was called with %d keys (%q...), want %d", len(removed), removed[:min(3, len(removed))], len(wantRemoved))
			}
			if got := keysOf(NewIter(snapshot, nil, nil)); len(got) != n+1 {
				t.Errorf("a snapshot taken before the range delete holds %d keys, want %d", len(got), n+1)
			}
		})
	}
}
