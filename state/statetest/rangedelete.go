package statetest

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/eddystream/eddy/state"
)

// delRange is a range delete of [start, end) as the suite writes it; nil
// bounds are unbounded.
func delRange(start, end []byte) state.Write {
	return state.Write{Key: start, End: end, DeleteRange: true}
}

// bound is a bound of a range delete, for readable tables.
func bound(s string) []byte { return []byte(s) }

func testRangeDelete(t *testing.T, b state.Backend) {
	apply(t, b, put("a", "1"), put("b", "2"), put("c", "3"), put("d", "4"), put("e", "5"), put("f", "6"))
	apply(t, b, delRange(bound("b"), bound("e")))
	wantGet(t, b, "a", ptr("1"))
	for _, k := range []string{"b", "c", "d"} {
		wantGet(t, b, k, nil)
	}
	wantGet(t, b, "e", ptr("5")) // the end is exclusive
	wantRange(t, b, nil, nil, []kv{{"a", "1"}, {"e", "5"}, {"f", "6"}})
	wantRange(t, b, bound("b"), bound("e"), nil)

	// Bounds between keys, and a range holding no key.
	apply(t, b, delRange(bound("0"), bound("a\x00")), delRange(bound("b"), bound("d")))
	wantRange(t, b, nil, nil, []kv{{"e", "5"}, {"f", "6"}})

	// Written again, the keys come back.
	apply(t, b, put("c", "again"))
	wantRange(t, b, nil, nil, []kv{{"c", "again"}, {"e", "5"}, {"f", "6"}})
}

// testRangeDeleteBatchOrder checks that a batch mixing puts, deletes and
// range deletes applies them in order.
func testRangeDeleteBatchOrder(t *testing.T, b state.Backend) {
	apply(t, b, put("k1", "old"), put("k2", "old"), put("k3", "old"), put("k5", "old"))
	apply(t, b,
		put("k0", "before"),                // outside the range: stays
		put("k2", "before"),                // covered by the range delete after it: gone
		put("k4", "before"),                // new, covered after: gone
		delRange(bound("k1"), bound("k5")), // k1..k4, backend and batch alike
		put("k3", "after"),                 // after the range delete: survives
		del("k5"),
		put("k5", "after"),
		delRange(bound("k5"), bound("k6")), // a range delete after a put removes it
		put("k9", "last"),
	)
	wantGet(t, b, "k1", nil)
	wantGet(t, b, "k2", nil)
	wantGet(t, b, "k3", ptr("after"))
	wantGet(t, b, "k4", nil)
	wantGet(t, b, "k5", nil)
	wantRange(t, b, nil, nil, []kv{{"k0", "before"}, {"k3", "after"}, {"k9", "last"}})
}

// testRangeDeleteBounds checks range deletes with every kind of bound:
// empty and inverted ranges (no-ops), nil bounds (unbounded), binary keys,
// and an empty end (nothing is below the empty key).
func testRangeDeleteBounds(t *testing.T, b state.Backend) {
	var all []kv
	var batch []state.Write
	for i, k := range binaryKeys {
		v := fmt.Sprintf("v%d", i)
		all = append(all, kv{k, v})
		batch = append(batch, put(k, v))
	}
	idx := func(key string) int { return slices.Index(binaryKeys, key) }
	tests := []struct {
		name       string
		start, end []byte
		want       []kv // what is left of all
	}{
		{"start == end", bound("a"), bound("a"), all},
		{"inverted", bound("\xff"), bound("a"), all},
		{"empty end", nil, bound(""), all},
		{"empty start and end", bound(""), bound(""), all},
		{"between keys", bound("a\x00a"), bound("a\x00b"), all},
		{"one key", bound("a\x00"), bound("a\x00\x00"), slices.Delete(slices.Clone(all), idx("a\x00"), idx("a\x00")+1)},
		{"nil start", nil, bound("\x01"), all[idx("\x01"):]},
		{"empty start", bound(""), bound("\x00\x01"), all[idx("\x00\x01"):]},
		{"nil end", bound("\xff"), nil, all[:idx("\xff")]},
		{"prefix", bound("a"), bound("b"), slices.Concat(all[:idx("a")], all[idx("\x7f"):])},
		{"everything", nil, nil, nil},
	}
	for _, tt := range tests {
		apply(t, b, delRange(nil, nil))
		apply(t, b, batch...)
		apply(t, b, delRange(tt.start, tt.end))
		if got := collect(t, b, nil, nil); !slices.Equal(got, tt.want) {
			t.Errorf("%s: after a range delete of [%q, %q) the backend holds\n %q\nwant %q", tt.name, tt.start, tt.end, got, tt.want)
		}
	}
}

// testRangeDeleteSnapshots checks that a range delete leaves alone what
// iterators and read views opened before it see, and that ones opened after
// it see the keys gone.
func testRangeDeleteSnapshots(t *testing.T, b state.Backend) {
	var batch []state.Write
	var snapshot []kv
	for i := range 600 {
		k := fmt.Sprintf("k%04d", i)
		batch = append(batch, put(k, "v"))
		snapshot = append(snapshot, kv{k, "v"})
	}
	apply(t, b, batch...)
	it, err := b.Range(nil, nil)
	if err != nil {
		t.Fatalf("Range: %v", err)
	}
	defer it.Close()
	// Part of the range is read before the delete, part after.
	var got []kv
	for range 10 {
		if !it.Next() {
			t.Fatalf("the iterator ended early (err %v)", it.Err())
		}
		got = append(got, kv{string(it.Key()), string(it.Value())})
	}
	v := readView(t, b)
	defer v.Close()

	apply(t, b, delRange(bound("k0005"), bound("k0500")))

	for it.Next() {
		got = append(got, kv{string(it.Key()), string(it.Value())})
	}
	if err := it.Err(); err != nil {
		t.Fatalf("iterator opened before the range delete: %v", err)
	}
	if !slices.Equal(got, snapshot) {
		t.Errorf("an iterator opened before the range delete saw %d keys, want the %d present at Range", len(got), len(snapshot))
	}
	viewed, err := viewRange(v, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(viewed, snapshot) {
		t.Errorf("a view opened before the range delete holds %d keys, want the %d present when it was made", len(viewed), len(snapshot))
	}
	if val, ok, err := v.Get([]byte("k0100")); err != nil || !ok || string(val) != "v" {
		t.Errorf("view Get(k0100) = %q, %v, %v; want v", val, ok, err)
	}

	want := slices.Concat(snapshot[:5], snapshot[500:])
	wantRange(t, b, nil, nil, want)
	after := readView(t, b)
	defer after.Close()
	if viewed, err := viewRange(after, nil, nil); err != nil || !slices.Equal(viewed, want) {
		t.Errorf("a view opened after the range delete holds %d keys (err %v), want %d", len(viewed), err, len(want))
	}
}

// testRangeDeleteModel applies random batches of puts, deletes and range
// deletes and checks the backend against a map after each.
func testRangeDeleteModel(t *testing.T, b state.Backend) {
	rng := rand.New(rand.NewPCG(3, 4))
	key := func() []byte { return fmt.Appendf(nil, "%03d", rng.IntN(300)) }
	var model []kv
	for round := range 60 {
		var batch []state.Write
		for range 1 + rng.IntN(40) {
			switch r := rng.IntN(10); {
			case r < 6:
				batch = append(batch, state.Write{Key: key(), Value: fmt.Appendf(nil, "r%d", round)})
			case r < 8:
				batch = append(batch, state.Write{Key: key(), Delete: true})
			default:
				start, end := key(), key() // sometimes inverted or empty
				if rng.IntN(10) == 0 {
					end = nil
				}
				batch = append(batch, delRange(start, end))
			}
		}
		apply(t, b, batch...)
		model = applyModel(model, batch)
		if got := collect(t, b, nil, nil); !slices.Equal(got, model) {
			t.Fatalf("round %d: the backend holds\n %q\nwant %q", round, got, model)
		}
	}
}

// testRangeDeleteOtherApplies checks range deletes through the other ways
// into a backend, for a backend that has them: ApplyNoSync, ApplyAt, and
// IngestRun, which may reject a run holding one but must then apply
// nothing.
func testRangeDeleteOtherApplies(t *testing.T, b state.Backend) {
	bulk, isBulk := b.(state.BulkApplier)
	rec, isRec := b.(state.OffsetRecorder)
	ing, isIng := b.(state.RunIngester)
	if !isBulk && !isRec && !isIng {
		t.Skip("the backend implements none of state.BulkApplier, state.OffsetRecorder and state.RunIngester")
	}
	apply(t, b, put("a", "1"), put("b", "2"), put("c", "3"), put("d", "4"))
	if isBulk {
		if err := bulk.ApplyNoSync([]state.Write{delRange(bound("a"), bound("b")), put("e", "5")}); err != nil {
			t.Fatalf("ApplyNoSync: %v", err)
		}
		if err := bulk.Sync(); err != nil {
			t.Fatalf("Sync: %v", err)
		}
		wantRange(t, b, nil, nil, []kv{{"b", "2"}, {"c", "3"}, {"d", "4"}, {"e", "5"}})
	}
	apply(t, b, put("a", "1"))
	if isRec {
		if err := rec.ApplyAt([]state.Write{put("b", "two"), delRange(bound("b"), bound("d"))}, 9, true); err != nil {
			t.Fatalf("ApplyAt: %v", err)
		}
		if next, ok, err := rec.RecordedOffset(); err != nil || !ok || next != 9 {
			t.Errorf("RecordedOffset = %d, %v, %v; want 9", next, ok, err)
		}
		// The recorded offset is not a key the range delete could reach.
		apply(t, b, delRange(nil, nil), put("a", "1"))
		if next, ok, err := rec.RecordedOffset(); err != nil || !ok || next != 9 {
			t.Errorf("after a range delete of every key, RecordedOffset = %d, %v, %v; want 9", next, ok, err)
		}
	}
	if isIng {
		before := collect(t, b, nil, nil)
		run := []state.Write{put("b", "run"), delRange(bound("c"), bound("z")), put("zz", "run")}
		err := ing.IngestRun(len(run), func(i int) state.Write { return run[i] })
		after := collect(t, b, nil, nil)
		switch want := applyModel(before, run); {
		case errors.Is(err, state.ErrClosed):
			t.Fatalf("IngestRun: %v", err)
		case err != nil && !slices.Equal(after, before):
			t.Errorf("IngestRun of a run with a range delete failed (%v) but changed the backend from %q to %q", err, before, after)
		case err == nil && !slices.Equal(after, want):
			t.Errorf("IngestRun of a run with a range delete left %q, want %q", after, want)
		}
	}
}

// applyModel returns what a backend holding the sorted entries of before
// holds after batch.
func applyModel(before []kv, batch []state.Write) []kv {
	m := map[string]string{}
	for _, e := range before {
		m[e.key] = e.value
	}
	for _, w := range batch {
		switch {
		case w.DeleteRange:
			maps.DeleteFunc(m, func(k string, _ string) bool {
				return bytes.Compare([]byte(k), w.Key) >= 0 && (w.End == nil || bytes.Compare([]byte(k), w.End) < 0)
			})
		case w.Delete:
			delete(m, string(w.Key))
		default:
			m[string(w.Key)] = string(w.Value)
		}
	}
	after := make([]kv, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		after = append(after, kv{k, m[k]})
	}
	return after
}
