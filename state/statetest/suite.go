// Package statetest holds the conformance suite that every state.Backend
// runs, and benchmarks that measure backends on the same workloads.
//
// A backend's tests call RunBackendTests with a function that opens a new,
// empty backend:
//
//	func TestConformance(t *testing.T) {
//		statetest.RunBackendTests(t, func(t *testing.T) state.Backend {
//			return state.NewMemoryBackend()
//		})
//	}
//
// The suite checks the whole Backend contract as documented on
// state.Backend and state.Iterator: point reads and writes, batches, range
// bounds, range deletes (in batch order with other writes, through Apply
// and, where a backend has them, ApplyNoSync, ApplyAt and IngestRun),
// binary keys, snapshot iteration while writing, buffer ownership,
// read views used on another goroutine while the backend is written (run
// the suite with -race), and behaviour after Close. A backend that implements state.Sizer also
// runs the checks every size must pass (the Sizer test is skipped for one
// that does not), and so does one that implements state.OffsetRecorder.
// Properties that need more than one open, such as
// persistence across a reopen, and how exact a backend's size is, belong to
// the backend's own tests.
package statetest

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/eddystream/eddy/state"
)

// RunBackendTests runs the conformance suite against backends made by open.
// open must return a new, empty backend each time it is called; the suite
// closes every backend it opens.
func RunBackendTests(t *testing.T, open func(t *testing.T) state.Backend) {
	t.Helper()
	tests := []struct {
		name string
		run  func(t *testing.T, b state.Backend)
	}{
		{"GetMissing", testGetMissing},
		{"PutGetDelete", testPutGetDelete},
		{"EmptyBatch", testEmptyBatch},
		{"BatchLastWriteWins", testBatchLastWriteWins},
		{"BatchVisibleAtOnce", testBatchVisibleAtOnce},
		{"EmptyValueIsNotDelete", testEmptyValueIsNotDelete},
		{"BinaryKeys", testBinaryKeys},
		{"RangeBounds", testRangeBounds},
		{"RangeEmptyBackend", testRangeEmptyBackend},
		{"RangeBoundsCopied", testRangeBoundsCopied},
		{"IteratorClose", testIteratorClose},
		{"CallerReusesBuffers", testCallerReusesBuffers},
		{"LargeValue", testLargeValue},
		{"ManyKeys", testManyKeys},
		{"RangeWhileWriting", testRangeWhileWriting},
		{"UseAfterClose", testUseAfterClose},
		{"ReadViewWhileWriting", testReadViewWhileWriting},
		{"ReadViewClose", testReadViewClose},
		{"CloseStopsReadViews", testCloseStopsReadViews},
		{"CloseWhileReadingAView", testCloseWhileReadingAView},
		{"Sizer", testSizer},
		{"OffsetRecorder", testOffsetRecorder},
		{"RangeDelete", testRangeDelete},
		{"RangeDeleteBatchOrder", testRangeDeleteBatchOrder},
		{"RangeDeleteBounds", testRangeDeleteBounds},
		{"RangeDeleteSnapshots", testRangeDeleteSnapshots},
		{"RangeDeleteModel", testRangeDeleteModel},
		{"RangeDeleteOtherApplies", testRangeDeleteOtherApplies},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := open(t)
			t.Cleanup(func() {
				if err := b.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tt.run(t, b)
		})
	}
}

// kv is a key and value as the suite expects to read them back.
type kv struct{ key, value string }

func put(key, value string) state.Write {
	return state.Write{Key: []byte(key), Value: []byte(value)}
}

func del(key string) state.Write {
	return state.Write{Key: []byte(key), Delete: true}
}

func apply(t testing.TB, b state.Backend, batch ...state.Write) {
	t.Helper()
	if err := b.Apply(batch); err != nil {
		t.Fatalf("Apply: %v", err)
	}
}

// wantGet checks that key reads as want, or as absent when want is nil.
func wantGet(t testing.TB, b state.Backend, key string, want *string) {
	t.Helper()
	v, ok, err := b.Get([]byte(key))
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	switch {
	case want == nil && ok:
		t.Errorf("Get(%q) = %q, want absent", key, v)
	case want != nil && !ok:
		t.Errorf("Get(%q) is absent, want %q", key, *want)
	case want != nil && string(v) != *want:
		t.Errorf("Get(%q) = %q, want %q", key, v, *want)
	}
}

func ptr(s string) *string { return &s }

// collect drains [start, end) of b, checking that the iterator ends cleanly.
func collect(t testing.TB, b state.Backend, start, end []byte) []kv {
	t.Helper()
	it, err := b.Range(start, end)
	if err != nil {
		t.Fatalf("Range(%q, %q): %v", start, end, err)
	}
	var got []kv
	for it.Next() {
		got = append(got, kv{string(it.Key()), string(it.Value())})
	}
	if err := it.Err(); err != nil {
		t.Fatalf("Range(%q, %q): iterator error: %v", start, end, err)
	}
	if err := it.Close(); err != nil {
		t.Fatalf("Range(%q, %q): Close: %v", start, end, err)
	}
	return got
}

func wantRange(t testing.TB, b state.Backend, start, end []byte, want []kv) {
	t.Helper()
	got := collect(t, b, start, end)
	if !slices.Equal(got, want) {
		t.Errorf("Range(%q, %q)\n got %q\nwant %q", start, end, got, want)
	}
}

func testGetMissing(t *testing.T, b state.Backend) {
	v, ok, err := b.Get([]byte("missing"))
	if err != nil || ok || v != nil {
		t.Errorf("Get of a missing key = %q, %v, %v; want nil, false, nil", v, ok, err)
	}
}

func testPutGetDelete(t *testing.T, b state.Backend) {
	apply(t, b, put("a", "1"), put("b", "2"))
	wantGet(t, b, "a", ptr("1"))
	wantGet(t, b, "b", ptr("2"))

	apply(t, b, put("a", "one"))
	wantGet(t, b, "a", ptr("one"))

	apply(t, b, del("a"))
	wantGet(t, b, "a", nil)
	wantGet(t, b, "b", ptr("2"))

	apply(t, b, del("never-written"))
	wantGet(t, b, "never-written", nil)
	wantRange(t, b, nil, nil, []kv{{"b", "2"}})
}

func testEmptyBatch(t *testing.T, b state.Backend) {
	apply(t, b)
	apply(t, b, []state.Write{}...)
	wantRange(t, b, nil, nil, nil)
}

func testBatchLastWriteWins(t *testing.T, b state.Backend) {
	apply(t, b, put("old", "x"))
	apply(t, b,
		put("a", "1"), put("a", "2"), // overwritten in the batch
		put("b", "1"), del("b"), // put, then deleted
		del("c"), put("c", "3"), // deleted, then put
		del("old"), put("old", "y"), del("old"), // existing key, deleted last
	)
	wantGet(t, b, "a", ptr("2"))
	wantGet(t, b, "b", nil)
	wantGet(t, b, "c", ptr("3"))
	wantGet(t, b, "old", nil)
	wantRange(t, b, nil, nil, []kv{{"a", "2"}, {"c", "3"}})
}

// testBatchVisibleAtOnce checks the part of atomicity a live process can
// observe: an iterator opened before Apply sees none of the batch, one
// opened after sees all of it.
func testBatchVisibleAtOnce(t *testing.T, b state.Backend) {
	apply(t, b, put("k1", "old"), put("k3", "old"))
	before, err := b.Range(nil, nil)
	if err != nil {
		t.Fatalf("Range: %v", err)
	}
	defer before.Close()
	apply(t, b, put("k1", "new"), put("k2", "new"), del("k3"))

	var got []kv
	for before.Next() {
		got = append(got, kv{string(before.Key()), string(before.Value())})
	}
	if err := before.Err(); err != nil {
		t.Fatalf("iterator opened before Apply: %v", err)
	}
	if want := []kv{{"k1", "old"}, {"k3", "old"}}; !slices.Equal(got, want) {
		t.Errorf("iterator opened before Apply saw %q, want %q", got, want)
	}
	wantRange(t, b, nil, nil, []kv{{"k1", "new"}, {"k2", "new"}})
}

func testEmptyValueIsNotDelete(t *testing.T, b state.Backend) {
	apply(t, b,
		state.Write{Key: []byte("empty"), Value: []byte{}},
		state.Write{Key: []byte("nil"), Value: nil},
		put("gone", "x"),
	)
	apply(t, b, del("gone"))
	for _, key := range []string{"empty", "nil"} {
		v, ok, err := b.Get([]byte(key))
		if err != nil || !ok || len(v) != 0 {
			t.Errorf("Get(%q) = %q, %v, %v; want a present, zero-length value", key, v, ok, err)
		}
	}
	wantGet(t, b, "gone", nil)
	wantRange(t, b, nil, nil, []kv{{"empty", ""}, {"nil", ""}})
}

// binaryKeys are keys that trip up code treating keys as strings or
// C strings: empty, NUL bytes, 0xff bytes, and prefixes of each other. They
// are listed in bytes.Compare order.
var binaryKeys = []string{
	"",
	"\x00",
	"\x00\x00",
	"\x00\x01",
	"\x00\xff",
	"\x01",
	"a",
	"a\x00",
	"a\x00b",
	"ab",
	"a\xff",
	"\x7f",
	"\x80",
	"\xfe\xff",
	"\xff",
	"\xff\x00",
	"\xff\xff",
	"\xff\xff\xff",
}

func testBinaryKeys(t *testing.T, b state.Backend) {
	if !slices.IsSortedFunc(binaryKeys, func(a, b string) int { return bytes.Compare([]byte(a), []byte(b)) }) {
		t.Fatal("binaryKeys is not sorted")
	}
	var batch []state.Write
	var all []kv
	for i, k := range binaryKeys {
		v := fmt.Sprintf("v%d\x00\xff", i)
		all = append(all, kv{k, v})
	}
	for _, i := range rand.Perm(len(all)) {
		batch = append(batch, put(all[i].key, all[i].value))
	}
	apply(t, b, batch...)

	for _, e := range all {
		wantGet(t, b, e.key, ptr(e.value))
	}
	wantRange(t, b, nil, nil, all)
	// Every pair of keys as bounds, and each key against the open ends.
	for i, start := range binaryKeys {
		wantRange(t, b, []byte(start), nil, all[i:])
		wantRange(t, b, nil, []byte(start), all[:i])
		for j := i; j < len(binaryKeys); j++ {
			wantRange(t, b, []byte(start), []byte(binaryKeys[j]), all[i:j])
		}
	}

	apply(t, b, del(""), del("\x00"), del("\xff\xff\xff"))
	wantRange(t, b, nil, nil, all[2:len(all)-1])
}

func testRangeBounds(t *testing.T, b state.Backend) {
	apply(t, b, put("b", "1"), put("d", "2"), put("f", "3"))
	all := []kv{{"b", "1"}, {"d", "2"}, {"f", "3"}}
	tests := []struct {
		start, end string
		nilStart   bool
		nilEnd     bool
		want       []kv
	}{
		{nilStart: true, nilEnd: true, want: all},
		{start: "", nilEnd: true, want: all}, // empty, not nil: the least key
		{start: "b", nilEnd: true, want: all},
		{start: "c", nilEnd: true, want: all[1:]},
		{start: "f", nilEnd: true, want: all[2:]},
		{start: "g", nilEnd: true},
		{nilStart: true, end: ""}, // nothing is less than the empty key
		{nilStart: true, end: "b"},
		{nilStart: true, end: "c", want: all[:1]},
		{nilStart: true, end: "f", want: all[:2]},
		{nilStart: true, end: "z", want: all},
		{start: "b", end: "f", want: all[:2]},
		{start: "a", end: "e", want: all[:2]},
		{start: "c", end: "e", want: all[1:2]},
		{start: "d", end: "d"},     // start == end
		{start: "f", end: "b"},     // start > end
		{start: "c", end: "c\x00"}, // between keys
		{start: "d", end: "d\x00", want: all[1:2]},
		{start: "", end: ""},
	}
	for _, tt := range tests {
		var start, end []byte
		if !tt.nilStart {
			start = []byte(tt.start)
		}
		if !tt.nilEnd {
			end = []byte(tt.end)
		}
		wantRange(t, b, start, end, tt.want)
	}
}

func testRangeEmptyBackend(t *testing.T, b state.Backend) {
	wantRange(t, b, nil, nil, nil)
	wantRange(t, b, []byte("a"), []byte("z"), nil)
	apply(t, b, put("a", "1"), del("a"))
	wantRange(t, b, nil, nil, nil)
}

func testRangeBoundsCopied(t *testing.T, b state.Backend) {
	apply(t, b, put("a", "1"), put("b", "2"), put("c", "3"), put("d", "4"))
	start, end := []byte("b"), []byte("d")
	it, err := b.Range(start, end)
	if err != nil {
		t.Fatalf("Range: %v", err)
	}
	defer it.Close()
	start[0], end[0] = 'a', 'z' // the caller reuses its buffers
	var got []kv
	for it.Next() {
		got = append(got, kv{string(it.Key()), string(it.Value())})
	}
	if want := []kv{{"b", "2"}, {"c", "3"}}; !slices.Equal(got, want) {
		t.Errorf("after the caller changed the bounds, the iterator saw %q, want %q", got, want)
	}
}

func testIteratorClose(t *testing.T, b state.Backend) {
	apply(t, b, put("a", "1"), put("b", "2"), put("c", "3"))

	unused, err := b.Range(nil, nil)
	if err != nil {
		t.Fatalf("Range: %v", err)
	}
	if err := unused.Close(); err != nil {
		t.Errorf("Close of an iterator never advanced: %v", err)
	}
	if unused.Next() {
		t.Error("Next after Close returned true")
	}

	it, err := b.Range(nil, nil)
	if err != nil {
		t.Fatalf("Range: %v", err)
	}
	if !it.Next() || string(it.Key()) != "a" {
		t.Fatalf("first Next did not reach key a (err %v)", it.Err())
	}
	if err := it.Close(); err != nil {
		t.Errorf("Close mid-range: %v", err)
	}
	if it.Next() {
		t.Error("Next after Close returned true")
	}
	if err := it.Err(); err != nil {
		t.Errorf("Err after the caller's Close = %v, want nil", err)
	}
	if err := it.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	exhausted, err := b.Range(nil, nil)
	if err != nil {
		t.Fatalf("Range: %v", err)
	}
	for exhausted.Next() {
	}
	if exhausted.Next() {
		t.Error("Next after the end returned true")
	}
	if err := exhausted.Err(); err != nil {
		t.Errorf("Err after the end = %v", err)
	}
	if err := exhausted.Close(); err != nil {
		t.Errorf("Close after the end: %v", err)
	}

	// The backend is still usable once its iterators are closed.
	apply(t, b, put("d", "4"))
	wantRange(t, b, []byte("c"), nil, []kv{{"c", "3"}, {"d", "4"}})
}

func testCallerReusesBuffers(t *testing.T, b state.Backend) {
	key, value := []byte("key-1"), []byte("value-1")
	batch := []state.Write{{Key: key, Value: value}}
	apply(t, b, batch...)
	copy(key, "key-2")
	copy(value, "value-2")
	apply(t, b, batch...)
	copy(key, "XXXXX")
	copy(value, "XXXXXXX")

	wantGet(t, b, "key-1", ptr("value-1"))
	wantGet(t, b, "key-2", ptr("value-2"))
	wantRange(t, b, nil, nil, []kv{{"key-1", "value-1"}, {"key-2", "value-2"}})

	// A value read back stays intact across later writes to other keys.
	v, _, err := b.Get([]byte("key-1"))
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	held := string(v)
	apply(t, b, put("key-3", "value-3"))
	if string(v) != held {
		t.Errorf("Get's value changed from %q to %q after a write to another key", held, v)
	}
}

func testLargeValue(t *testing.T, b state.Backend) {
	large := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	apply(t, b, state.Write{Key: []byte("large"), Value: large}, put("small", "s"))
	v, ok, err := b.Get([]byte("large"))
	if err != nil || !ok || !bytes.Equal(v, large) {
		t.Fatalf("Get of a 1 MiB value: ok %v, err %v, equal %v", ok, err, bytes.Equal(v, large))
	}
	wantRange(t, b, []byte("small"), nil, []kv{{"small", "s"}})
}

func testManyKeys(t *testing.T, b state.Backend) {
	const n = 10_000
	rng := rand.New(rand.NewPCG(1, 2))
	model := make(map[string]string, n)
	for len(model) < n {
		k := make([]byte, 1+rng.IntN(12))
		for i := range k {
			k[i] = byte(rng.UintN(256))
		}
		model[string(k)] = fmt.Sprintf("v%d", len(model))
	}
	keys := make([]string, 0, n)
	for k := range model {
		keys = append(keys, k) // map order: random
	}
	for i := 0; i < n; i += 500 {
		batch := make([]state.Write, 0, 500)
		for _, k := range keys[i:min(i+500, n)] {
			batch = append(batch, put(k, model[k]))
		}
		apply(t, b, batch...)
	}
	// Delete a tenth of the keys.
	var deletes []state.Write
	for _, k := range keys[:n/10] {
		deletes = append(deletes, del(k))
		delete(model, k)
	}
	apply(t, b, deletes...)

	sorted := make([]kv, 0, len(model))
	for k, v := range model {
		sorted = append(sorted, kv{k, v})
	}
	slices.SortFunc(sorted, func(a, b kv) int { return bytes.Compare([]byte(a.key), []byte(b.key)) })

	got := collect(t, b, nil, nil)
	if len(got) != len(sorted) {
		t.Fatalf("Range over %d keys returned %d", len(sorted), len(got))
	}
	if !slices.Equal(got, sorted) {
		for i := range got {
			if got[i] != sorted[i] {
				t.Fatalf("Range: entry %d is %q, want %q", i, got[i], sorted[i])
			}
		}
	}
	for range 20 {
		i := rng.IntN(len(sorted))
		j := i + rng.IntN(len(sorted)-i)
		wantRange(t, b, []byte(sorted[i].key), []byte(sorted[j].key), sorted[i:j])
	}
	for _, k := range keys[:200] {
		wantGet(t, b, k, nil)
	}
	for _, e := range sorted[:200] {
		wantGet(t, b, e.key, ptr(e.value))
	}
}

// testRangeWhileWriting writes ahead of, behind and at an iterator's
// position while it is open, and checks that it sees the backend as it was
// when Range was called.
func testRangeWhileWriting(t *testing.T, b state.Backend) {
	const n = 1000
	var batch []state.Write
	var snapshot []kv
	for i := range n {
		k, v := fmt.Sprintf("k%05d", i*2), fmt.Sprintf("v%d", i)
		batch = append(batch, put(k, v))
		snapshot = append(snapshot, kv{k, v})
	}
	apply(t, b, batch...)

	it, err := b.Range(nil, nil)
	if err != nil {
		t.Fatalf("Range: %v", err)
	}
	defer it.Close()
	var got []kv
	for i := 0; it.Next(); i++ {
		got = append(got, kv{string(it.Key()), string(it.Value())})
		if i%50 != 0 {
			continue
		}
		var writes []state.Write
		for j := range 20 {
			writes = append(writes,
				put(fmt.Sprintf("k%05d", (i+j)*2+1), "inserted"), // new keys around the position
				put(fmt.Sprintf("k%05d", (i+j)*2), "overwritten"),
			)
		}
		writes = append(writes, del(fmt.Sprintf("k%05d", (i+100)*2)), del(string(it.Key())))
		apply(t, b, writes...)
	}
	if err := it.Err(); err != nil {
		t.Fatalf("iterator failed while the backend was written: %v", err)
	}
	if !slices.Equal(got, snapshot) {
		t.Errorf("iterator saw writes made after Range: got %d entries, want the %d present at Range", len(got), len(snapshot))
	}
	// And a new iterator sees the writes.
	wantGet(t, b, "k00001", ptr("inserted"))
	wantGet(t, b, "k00000", nil)
}

func testUseAfterClose(t *testing.T, b state.Backend) {
	apply(t, b, put("a", "1"), put("b", "2"))
	open, err := b.Range(nil, nil)
	if err != nil {
		t.Fatalf("Range: %v", err)
	}
	if !open.Next() {
		t.Fatalf("Next on a non-empty range returned false (err %v)", open.Err())
	}
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if open.Next() {
		t.Error("Next of an iterator whose backend was closed returned true")
	}
	if err := open.Err(); !errors.Is(err, state.ErrClosed) {
		t.Errorf("Err of an iterator whose backend was closed = %v, want ErrClosed", err)
	}
	if err := open.Close(); err != nil {
		t.Errorf("Close of an iterator whose backend was closed: %v", err)
	}

	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, _, err := b.Get([]byte("a")); !errors.Is(err, state.ErrClosed) {
		t.Errorf("Get after Close: err = %v, want ErrClosed", err)
	}
	if err := b.Apply([]state.Write{put("c", "3")}); !errors.Is(err, state.ErrClosed) {
		t.Errorf("Apply after Close: err = %v, want ErrClosed", err)
	}
	if _, err := b.Range(nil, nil); !errors.Is(err, state.ErrClosed) {
		t.Errorf("Range after Close: err = %v, want ErrClosed", err)
	}
	if _, err := b.ReadView(); !errors.Is(err, state.ErrClosed) {
		t.Errorf("ReadView after Close: err = %v, want ErrClosed", err)
	}
}

// readView calls b.ReadView, failing the test on an error.
func readView(t testing.TB, b state.Backend) state.ReadView {
	t.Helper()
	v, err := b.ReadView()
	if err != nil {
		t.Fatalf("ReadView: %v", err)
	}
	return v
}

// viewRange drains [start, end) of v; it is safe to call from any
// goroutine, and reports a failure as an error, not with t.Fatal.
func viewRange(v state.ReadView, start, end []byte) ([]kv, error) {
	it, err := v.Range(start, end)
	if err != nil {
		return nil, fmt.Errorf("Range(%q, %q): %w", start, end, err)
	}
	var got []kv
	for it.Next() {
		got = append(got, kv{string(it.Key()), string(it.Value())})
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("Range(%q, %q): iterator: %w", start, end, err)
	}
	return got, it.Close()
}

// testReadViewWhileWriting reads a view on another goroutine while the
// owner overwrites, deletes and inserts keys, and checks that every read
// of the view sees the backend as it was when the view was made. Under
// -race it also checks that the view shares nothing unsynchronized with
// the backend.
func testReadViewWhileWriting(t *testing.T, b state.Backend) {
	const n = 2000
	var batch []state.Write
	var snapshot []kv
	for i := range n {
		k := fmt.Sprintf("k%05d", i)
		batch = append(batch, put(k, "v0"))
		snapshot = append(snapshot, kv{k, "v0"})
	}
	apply(t, b, batch...)
	v := readView(t, b)

	started, writing := make(chan struct{}), make(chan struct{})
	readerDone := make(chan struct{})
	passes := 0
	go func() {
		defer close(readerDone)
		defer v.Close()
		for pass := 0; ; pass++ {
			got, err := viewRange(v, nil, nil)
			if err != nil {
				t.Errorf("pass %d over the view: %v", pass, err)
				return
			}
			if !slices.Equal(got, snapshot) {
				t.Errorf("pass %d over the view saw %d entries that differ from the %d present when it was made", pass, len(got), len(snapshot))
				return
			}
			for j := range 50 {
				i := (pass*50 + j) * 7 % n
				val, ok, err := v.Get([]byte(fmt.Sprintf("k%05d", i)))
				if err != nil || !ok || string(val) != "v0" {
					t.Errorf("pass %d: view Get(k%05d) = %q, %v, %v; want v0", pass, i, val, ok, err)
					return
				}
				if _, ok, err := v.Get([]byte(fmt.Sprintf("new%05d", i))); err != nil || ok {
					t.Errorf("pass %d: view Get(new%05d) = %v, %v; want absent", pass, i, ok, err)
					return
				}
			}
			passes = pass + 1
			if pass == 0 {
				close(started)
			}
			select {
			case <-writing:
				if pass > 0 { // at least one whole pass after the last write
					return
				}
			default:
			}
		}
	}()

	select {
	case <-started:
	case <-readerDone:
		t.Fatal("the reader stopped before its first pass ended")
	}
	for round := 1; round <= 40; round++ {
		var writes []state.Write
		for i := round % 7; i < n; i += 7 {
			writes = append(writes, put(fmt.Sprintf("k%05d", i), fmt.Sprintf("v%d", round)))
		}
		for i := round; i < n; i += 97 {
			writes = append(writes, del(fmt.Sprintf("k%05d", i)), put(fmt.Sprintf("new%05d", i), "inserted"))
		}
		apply(t, b, writes...)
		// The owner's own reads go on too.
		wantGet(t, b, fmt.Sprintf("new%05d", round), ptr("inserted"))
	}
	close(writing)
	<-readerDone
	if passes < 2 {
		t.Errorf("the reader made %d passes, want at least 2", passes)
	}

	// A view made now sees the writes.
	after := readView(t, b)
	defer after.Close()
	val, ok, err := after.Get([]byte("new00001"))
	if err != nil || !ok || string(val) != "inserted" {
		t.Errorf("a new view: Get(new00001) = %q, %v, %v; want inserted", val, ok, err)
	}
	if _, ok, err := after.Get([]byte("k00040")); err != nil || ok {
		t.Errorf("a new view: Get(k00040) = %v, %v; want absent (deleted last in round 40)", ok, err)
	}
}

func testReadViewClose(t *testing.T, b state.Backend) {
	apply(t, b, put("a", "1"), put("b", "2"), put("c", "3"))
	v := readView(t, b)
	got, err := viewRange(v, []byte("b"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := []kv{{"b", "2"}, {"c", "3"}}; !slices.Equal(got, want) {
		t.Errorf("view Range(b, nil) = %q, want %q", got, want)
	}
	if got, err := viewRange(v, []byte("c"), []byte("a")); err != nil || len(got) != 0 {
		t.Errorf("view Range(c, a) = %q, %v; want empty", got, err)
	}
	val, ok, err := v.Get([]byte("a"))
	if err != nil || !ok || string(val) != "1" {
		t.Fatalf("view Get(a) = %q, %v, %v", val, ok, err)
	}
	open, err := v.Range(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !open.Next() {
		t.Fatalf("Next on a non-empty view range returned false (err %v)", open.Err())
	}
	if err := v.Close(); err != nil {
		t.Fatalf("view Close: %v", err)
	}
	if string(val) != "1" {
		t.Errorf("a value read from the view changed to %q when the view closed", val)
	}
	if open.Next() {
		t.Error("an iterator of a closed view returned another key")
	}
	if err := open.Close(); err != nil {
		t.Errorf("Close of an iterator of a closed view: %v", err)
	}
	if err := v.Close(); err != nil {
		t.Errorf("second view Close: %v", err)
	}
	if _, _, err := v.Get([]byte("a")); !errors.Is(err, state.ErrClosed) {
		t.Errorf("view Get after Close: err = %v, want ErrClosed", err)
	}
	if _, err := v.Range(nil, nil); !errors.Is(err, state.ErrClosed) {
		t.Errorf("view Range after Close: err = %v, want ErrClosed", err)
	}
	// The backend is unaffected.
	apply(t, b, put("d", "4"))
	wantRange(t, b, nil, nil, []kv{{"a", "1"}, {"b", "2"}, {"c", "3"}, {"d", "4"}})
}

func testCloseStopsReadViews(t *testing.T, b state.Backend) {
	apply(t, b, put("a", "1"), put("b", "2"))
	v := readView(t, b)
	it, err := v.Range(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !it.Next() {
		t.Fatalf("Next on a non-empty view range returned false (err %v)", it.Err())
	}
	// The reader may be on another goroutine when the owner closes the
	// backend.
	closed := make(chan error)
	go func() { closed <- b.Close() }()
	if err := <-closed; err != nil {
		t.Fatalf("Close with a view open: %v", err)
	}
	if it.Next() {
		t.Error("Next of a view iterator whose backend was closed returned true")
	}
	if err := it.Err(); !errors.Is(err, state.ErrClosed) {
		t.Errorf("Err of a view iterator whose backend was closed = %v, want ErrClosed", err)
	}
	if _, _, err := v.Get([]byte("a")); !errors.Is(err, state.ErrClosed) {
		t.Errorf("view Get after the backend closed: err = %v, want ErrClosed", err)
	}
	if _, err := v.Range(nil, nil); !errors.Is(err, state.ErrClosed) {
		t.Errorf("view Range after the backend closed: err = %v, want ErrClosed", err)
	}
	if err := it.Close(); err != nil {
		t.Errorf("Close of the view iterator: %v", err)
	}
	if err := v.Close(); err != nil {
		t.Errorf("Close of a view whose backend was closed: %v", err)
	}
}

// testSizer checks what every state.Sizer must do, however approximate: a
// size is never negative, grows when data is written, and reads ErrClosed
// after Close.
func testSizer(t *testing.T, b state.Backend) {
	sizer, ok := b.(state.Sizer)
	if !ok {
		t.Skip("the backend does not implement state.Sizer")
	}
	size := func(when string) int64 {
		t.Helper()
		n, err := sizer.ApproximateSize()
		if err != nil {
			t.Fatalf("%s: ApproximateSize: %v", when, err)
		}
		if n < 0 {
			t.Fatalf("%s: ApproximateSize = %d, want >= 0", when, n)
		}
		return n
	}
	empty := size("empty")

	value := string(bytes.Repeat([]byte("v"), 100))
	var batch []state.Write
	for i := range 100 {
		batch = append(batch, put(fmt.Sprintf("k%03d", i), value))
	}
	apply(t, b, batch...)
	if full := size("after 100 puts of 100 bytes"); full <= empty {
		t.Errorf("ApproximateSize after writing 10 KB = %d, want more than the empty backend's %d", full, empty)
	}

	for i := range batch {
		batch[i] = del(string(batch[i].Key))
	}
	apply(t, b, batch...)
	size("after deleting every key")

	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := sizer.ApproximateSize(); !errors.Is(err, state.ErrClosed) {
		t.Errorf("ApproximateSize after Close: err = %v, want ErrClosed", err)
	}
}

// testOffsetRecorder checks what every state.OffsetRecorder must do within
// one open: ApplyAt applies its batch and records its offset, an empty
// batch records the offset alone, and the offset is not one of the
// backend's keys.
func testOffsetRecorder(t *testing.T, b state.Backend) {
	rec, ok := b.(state.OffsetRecorder)
	if !ok {
		t.Skip("the backend does not implement state.OffsetRecorder")
	}
	recorded := func(want int64, wantOK bool) {
		t.Helper()
		next, ok, err := rec.RecordedOffset()
		if err != nil || ok != wantOK || next != want {
			t.Fatalf("RecordedOffset = %d, %v, %v; want %d, %v", next, ok, err, want, wantOK)
		}
	}
	recorded(0, false)
	if err := rec.ApplyAt([]state.Write{put("a", "1"), put("b", "2")}, 5, true); err != nil {
		t.Fatalf("ApplyAt: %v", err)
	}
	recorded(5, true)
	if err := rec.ApplyAt(nil, 7, false); err != nil {
		t.Fatalf("ApplyAt of an empty batch: %v", err)
	}
	recorded(7, true)
	if err := rec.ApplyAt([]state.Write{del("a")}, 8, true); err != nil {
		t.Fatalf("ApplyAt: %v", err)
	}
	recorded(8, true)
	wantRange(t, b, nil, nil, []kv{{"b", "2"}})
	v := readView(t, b)
	defer v.Close()
	if got, err := viewRange(v, nil, nil); err != nil || !slices.Equal(got, []kv{{"b", "2"}}) {
		t.Errorf("a read view holds %q (err %v), want only the key b", got, err)
	}
}

// testCloseWhileReadingAView closes the backend while another goroutine
// reads a view of it: the reader sees the snapshot's data until its calls
// fail with ErrClosed, never anything else (and, under -race, no race).
func testCloseWhileReadingAView(t *testing.T, b state.Backend) {
	var batch []state.Write
	for i := range 500 {
		batch = append(batch, put(fmt.Sprintf("k%03d", i), "v"))
	}
	apply(t, b, batch...)
	v := readView(t, b)
	defer v.Close()
	reading := make(chan struct{})
	result := make(chan error, 1)
	go func() {
		for pass := 0; ; pass++ {
			if pass == 1 {
				close(reading)
			}
			it, err := v.Range(nil, nil)
			if err != nil {
				result <- err
				return
			}
			n := 0
			for it.Next() {
				if string(it.Value()) != "v" {
					result <- fmt.Errorf("key %q has value %q, want v", it.Key(), it.Value())
					return
				}
				n++
			}
			err = it.Err()
			it.Close()
			if err != nil {
				result <- err
				return
			}
			if n != len(batch) {
				result <- fmt.Errorf("a pass that ended without an error saw %d keys, want %d", n, len(batch))
				return
			}
			if _, _, err := v.Get([]byte("k007")); err != nil {
				result <- err
				return
			}
		}
	}()
	<-reading
	if err := b.Close(); err != nil {
		t.Fatalf("Close while a view is read: %v", err)
	}
	if err := <-result; !errors.Is(err, state.ErrClosed) {
		t.Errorf("the reader stopped with %v, want ErrClosed", err)
	}
}
