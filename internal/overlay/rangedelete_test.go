package overlay_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/eddystream/eddy/internal/overlay"
	"github.com/eddystream/eddy/state"
)

func kw(key, value string) state.Write { return state.Write{Key: []byte(key), Value: []byte(value)} }

// TestOverlayDeleteRangeHidesKeys: a range delete hides the range's keys
// held only by the backend and those written earlier in the interval; keys
// written after it read as written; the backend is untouched until Commit.
func TestOverlayDeleteRangeHidesKeys(t *testing.T) {
	backend := state.NewMemoryBackend()
	mustApply(t, backend, kw("a", "1"), kw("b", "2"), kw("c", "3"), kw("d", "4"), kw("e", "5"))
	o := overlay.New(backend)
	defer o.Close()
	o.Put([]byte("b2"), []byte("early")) // pending, then covered
	o.Delete([]byte("c"))                // a pending delete, then covered
	o.Put([]byte("e"), []byte("55"))     // outside the range
	before, err := o.Range(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer before.Close()

	o.DeleteRange([]byte("b"), []byte("d"))
	o.Put([]byte("c"), []byte("late")) // after the range delete: visible

	for key, want := range map[string]string{"a": "1", "c": "late", "d": "4", "e": "55"} {
		if v, ok := mustGet(t, o, key); !ok || v != want {
			t.Errorf("Get(%q) = %q, %v; want %q", key, v, ok, want)
		}
	}
	for _, key := range []string{"b", "b2"} {
		if v, ok := mustGet(t, o, key); ok {
			t.Errorf("Get(%q) = %q; want absent, in the deleted range", key, v)
		}
	}
	if got, want := dump(t, o, nil, nil), []string{"a=1", "c=late", "d=4", "e=55"}; !slices.Equal(got, want) {
		t.Errorf("Range = %q, want %q", got, want)
	}
	if got, want := dump(t, o, []byte("b"), []byte("c\x00")), []string{"c=late"}; !slices.Equal(got, want) {
		t.Errorf("Range(b, c\\x00) = %q, want %q", got, want)
	}
	// An iterator opened before the range delete sees the Overlay as it was.
	var got []string
	for before.Next() {
		got = append(got, string(before.Key())+"="+string(before.Value()))
	}
	if want := []string{"a=1", "b=2", "b2=early", "d=4", "e=55"}; !slices.Equal(got, want) {
		t.Errorf("an iterator opened before the range delete saw %q, want %q", got, want)
	}
	if got, want := dump(t, backend, nil, nil), []string{"a=1", "b=2", "c=3", "d=4", "e=5"}; !slices.Equal(got, want) {
		t.Errorf("backend before Commit = %q, want %q", got, want)
	}

	// Pending lists the point writes only: not the range delete, and not
	// the writes it covered.
	var pending []string
	for _, w := range o.Pending() {
		pending = append(pending, string(w.Key)+"="+string(w.Value))
	}
	if want := []string{"c=late", "e=55"}; !slices.Equal(pending, want) {
		t.Errorf("Pending = %q, want %q", pending, want)
	}
}

// TestOverlayDeleteRangeUnbounded covers nil bounds and ranges that merge.
func TestOverlayDeleteRangeUnbounded(t *testing.T) {
	backend := state.NewMemoryBackend()
	mustApply(t, backend, kw("", "0"), kw("a", "1"), kw("m", "2"), kw("x", "3"), kw("\xff", "4"))
	o := overlay.New(backend)
	defer o.Close()
	o.DeleteRange(nil, []byte("a\x00"))
	if got, want := dump(t, o, nil, nil), []string{"m=2", "x=3", "\xff=4"}; !slices.Equal(got, want) {
		t.Errorf("after DeleteRange(nil, a\\x00): %q, want %q", got, want)
	}
	o.DeleteRange([]byte("x"), nil)
	o.DeleteRange([]byte("n"), []byte("m")) // inverted: nothing
	o.DeleteRange([]byte("m"), []byte("m")) // empty: nothing
	if got, want := dump(t, o, nil, nil), []string{"m=2"}; !slices.Equal(got, want) {
		t.Errorf("after DeleteRange(x, nil): %q, want %q", got, want)
	}
	o.DeleteRange([]byte("a"), []byte("y")) // meets both ranges: one range of everything
	o.Put([]byte("q"), []byte("new"))
	if got, want := dump(t, o, nil, nil), []string{"q=new"}; !slices.Equal(got, want) {
		t.Errorf("after DeleteRange(a, y): %q, want %q", got, want)
	}
	if err := o.Commit(); err != nil {
		t.Fatal(err)
	}
	if got, want := dump(t, backend, nil, nil), []string{"q=new"}; !slices.Equal(got, want) {
		t.Errorf("backend after Commit: %q, want %q", got, want)
	}
}

// recordingBackend records the batches it is given, by Apply or ApplyAt.
type recordingBackend struct {
	state.Backend
	batches [][]state.Write
	offsets []int64
}

func (r *recordingBackend) Apply(batch []state.Write) error {
	r.batches = append(r.batches, slices.Clone(batch))
	return r.Backend.Apply(batch)
}

func (r *recordingBackend) ApplyAt(batch []state.Write, next int64, sync bool) error {
	r.offsets = append(r.offsets, next)
	return r.Apply(batch)
}

func (r *recordingBackend) RecordedOffset() (int64, bool, error) {
	if len(r.offsets) == 0 {
		return 0, false, nil
	}
	return r.offsets[len(r.offsets)-1], true, nil
}

func describe(batch []state.Write) []string {
	var out []string
	for _, w := range batch {
		switch {
		case w.DeleteRange:
			out = append(out, "range "+string(w.Key)+".."+string(w.End))
		case w.Delete:
			out = append(out, "delete "+string(w.Key))
		default:
			out = append(out, "put "+string(w.Key)+"="+string(w.Value))
		}
	}
	return out
}

// TestOverlayCommitAppliesRangeDeletes: Commit and CommitAt give the
// backend the range deletes and the writes in one batch that applies them
// as they were made; a range delete alone is committed too; Discard drops
// range deletes.
func TestOverlayCommitAppliesRangeDeletes(t *testing.T) {
	for _, at := range []bool{false, true} {
		name := "Commit"
		if at {
			name = "CommitAt"
		}
		t.Run(name, func(t *testing.T) {
			backend := &recordingBackend{Backend: state.NewMemoryBackend()}
			mustApply(t, backend.Backend, kw("s1/a", "old"), kw("s1/b", "old"), kw("s2/a", "old"), kw("s3/a", "old"))
			o := overlay.New(backend)
			defer o.Close()
			commit := func() {
				t.Helper()
				var err error
				if at {
					err = o.CommitAt(int64(10+len(backend.batches)), true)
				} else {
					err = o.Commit()
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			o.Put([]byte("s1/a"), []byte("gone"))
			o.DeleteRange([]byte("s2/"), []byte("s3/"))
			o.DeleteRange([]byte("s1/"), []byte("s2/")) // meets the first: merged
			o.Put([]byte("s1/c"), []byte("new"))
			o.Delete([]byte("s3/a"))
			commit()
			want := []string{"range s1/..s3/", "put s1/c=new", "delete s3/a"}
			if len(backend.batches) != 1 || !slices.Equal(describe(backend.batches[0]), want) {
				t.Fatalf("the backend was given %v, want one batch %q", backend.batches, want)
			}
			if got, want := dump(t, backend.Backend, nil, nil), []string{"s1/c=new"}; !slices.Equal(got, want) {
				t.Errorf("backend after commit: %q, want %q", got, want)
			}
			if at && !slices.Equal(backend.offsets, []int64{10}) {
				t.Errorf("ApplyAt offsets %v, want [10]", backend.offsets)
			}

			// A range delete alone is something to commit.
			o.DeleteRange([]byte("s1/"), []byte("s2/"))
			commit()
			if len(backend.batches) != 2 || !slices.Equal(describe(backend.batches[1]), []string{"range s1/..s2/"}) {
				t.Fatalf("the backend was given %v, want a second batch with the range delete alone", backend.batches)
			}
			if got := dump(t, o, nil, nil); got != nil {
				t.Errorf("after the second commit the overlay reads %q, want nothing", got)
			}

			// Discarded, a range delete hides nothing and is not committed.
			mustApply(t, backend.Backend, kw("s4/a", "v"))
			o.DeleteRange(nil, nil)
			if got := dump(t, o, nil, nil); got != nil {
				t.Errorf("after DeleteRange(nil, nil) the overlay reads %q, want nothing", got)
			}
			o.Discard()
			if got, want := dump(t, o, nil, nil), []string{"s4/a=v"}; !slices.Equal(got, want) {
				t.Errorf("after Discard the overlay reads %q, want %q", got, want)
			}
			commit()
			if len(backend.batches) != 2 {
				t.Errorf("a commit after Discard gave the backend a batch: %v", backend.batches[2:])
			}
		})
	}
}

func TestOverlayCommitFailureKeepsRangeDeletes(t *testing.T) {
	backend := &failingBackend{Backend: state.NewMemoryBackend(), fail: true}
	mustApply(t, backend.Backend, kw("a", "1"), kw("b", "2"))
	o := overlay.New(backend)
	defer o.Close()
	o.DeleteRange([]byte("a"), []byte("b"))
	if err := o.Commit(); !errors.Is(err, errDiskFull) {
		t.Fatalf("Commit = %v, want the backend's error", err)
	}
	if got, want := dump(t, o, nil, nil), []string{"b=2"}; !slices.Equal(got, want) {
		t.Errorf("after a failed Commit the overlay reads %q, want %q", got, want)
	}
	backend.fail = false
	if err := o.Commit(); err != nil {
		t.Fatal(err)
	}
	if got, want := dump(t, backend, nil, nil), []string{"b=2"}; !slices.Equal(got, want) {
		t.Errorf("backend after the retried Commit: %q, want %q", got, want)
	}
}

// TestOverlayReadViewKeepsRangeDeletes: a view sees the range deletes
// pending when it was made, and none made after.
func TestOverlayReadViewKeepsRangeDeletes(t *testing.T) {
	backend := state.NewMemoryBackend()
	mustApply(t, backend, kw("a", "1"), kw("b", "2"), kw("c", "3"))
	o := overlay.New(backend)
	defer o.Close()
	o.DeleteRange([]byte("a"), []byte("b"))
	v, err := o.ReadView()
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	o.DeleteRange([]byte("b"), []byte("c"))
	o.Discard()

	if _, ok, err := v.Get([]byte("a")); err != nil || ok {
		t.Errorf("view Get(a) = %v, %v; want absent, deleted when the view was made", ok, err)
	}
	if val, ok, err := v.Get([]byte("b")); err != nil || !ok || string(val) != "2" {
		t.Errorf("view Get(b) = %q, %v, %v; want 2", val, ok, err)
	}
	it, err := v.Range(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var got []string
	for it.Next() {
		got = append(got, string(it.Key()))
	}
	if want := []string{"b", "c"}; !slices.Equal(got, want) || it.Err() != nil {
		t.Errorf("view Range = %q (err %v), want %q", got, it.Err(), want)
	}
}
