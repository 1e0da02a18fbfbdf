package state

import (
	"testing"
	"time"
)

// ExpireSegments drops what a replica or a restore copied in that the
// store no longer keeps, judged by the latest segment it holds, and keeps
// the metadata. (An internal test: the records are laid out as a replay
// copies them, past the store's expiry.)
func TestExpireSegments(t *testing.T) {
	b := NewMemoryBackend()
	retention := 2 * time.Minute // segments of a minute
	var batch []Write
	for seg := int64(0); seg < 6; seg++ {
		batch = append(batch, Write{Key: segmentKey(seg, []byte("k"), seg*60_000), Value: []byte("v")})
	}
	batch = append(batch, Write{Key: metaKey("m"), Value: []byte("x")})
	if err := b.Apply(batch); err != nil {
		t.Fatal(err)
	}
	dropped, err := ExpireSegments(b, retention)
	if err != nil || !dropped {
		t.Fatalf("ExpireSegments = %v, %v; want segments dropped", dropped, err)
	}
	// The latest segment is 5 (300 s): the segments before the one of
	// 300 s - 2 min (segment 3) go.
	var segs []int64
	it, err := b.Range(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for it.Next() {
		segs = append(segs, readTime(it.Key()))
	}
	it.Close()
	if len(segs) != 4 || segs[0] != 3 || segs[2] != 5 || segs[3] != metaSegment {
		t.Fatalf("segments left: %v, want 3, 4, 5 and the metadata's", segs)
	}
	if dropped, err := ExpireSegments(b, retention); err != nil || dropped {
		t.Fatalf("a second ExpireSegments dropped again (%v, %v)", dropped, err)
	}
}
