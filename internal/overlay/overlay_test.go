package overlay_test

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/eddystream/eddy/internal/overlay"
	"github.com/eddystream/eddy/state"
	"github.com/eddystream/eddy/state/statetest"
)

func TestOverlayConformance(t *testing.T) {
	t.Run("Uncommitted", func(t *testing.T) {
		// Every write stays in the overlay; the backend stays empty.
		statetest.RunBackendTests(t, func(t *testing.T) state.Backend {
			return overlay.New(state.NewMemoryBackend())
		})
	})
	t.Run("HalfCommitted", func(t *testing.T) {
		// Data is spread over both layers, so reads merge them and pending
		// deletes hide committed keys.
		statetest.RunBackendTests(t, func(t *testing.T) state.Backend {
			return &committingOverlay{Overlay: overlay.New(state.NewMemoryBackend()), every: 2}
		})
	})
}

// committingOverlay commits its Overlay after every so many Applies.
type committingOverlay struct {
	*overlay.Overlay
	every, applies int
}

func (c *committingOverlay) Apply(batch []state.Write) error {
	if err := c.Overlay.Apply(batch); err != nil {
		return err
	}
	c.applies++
	if c.applies%c.every == 0 {
		return c.Commit()
	}
	return nil
}

func mustApply(t *testing.T, b state.Backend, batch ...state.Write) {
	t.Helper()
	if err := b.Apply(batch); err != nil {
		t.Fatalf("Apply: %v", err)
	}
}

func mustGet(t *testing.T, b state.Backend, key string) (string, bool) {
	t.Helper()
	v, ok, err := b.Get([]byte(key))
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return string(v), ok
}

// dump drains a full range of b into "key=value" strings.
func dump(t *testing.T, b state.Backend, start, end []byte) []string {
	t.Helper()
	it, err := b.Range(start, end)
	if err != nil {
		t.Fatalf("Range: %v", err)
	}
	defer it.Close()
	var out []string
	for it.Next() {
		out = append(out, string(it.Key())+"="+string(it.Value()))
	}
	if err := it.Err(); err != nil {
		t.Fatalf("Range: %v", err)
	}
	return out
}

func TestOverlayCommitAndDiscard(t *testing.T) {
	backend := state.NewMemoryBackend()
	mustApply(t, backend, state.Write{Key: []byte("kept"), Value: []byte("0")})
	o := overlay.New(backend)
	defer o.Close()

	o.Put([]byte("a"), []byte("1"))
	o.Delete([]byte("kept"))
	if o.Len() != 2 {
		t.Errorf("Len = %d, want 2", o.Len())
	}
	if got := dump(t, backend, nil, nil); !slices.Equal(got, []string{"kept=0"}) {
		t.Errorf("backend before Commit = %q, want only the committed key", got)
	}

	o.Discard()
	if o.Len() != 0 || o.Pending() != nil {
		t.Errorf("after Discard: Len %d, Pending %v; want nothing pending", o.Len(), o.Pending())
	}
	if got := dump(t, o, nil, nil); !slices.Equal(got, []string{"kept=0"}) {
		t.Errorf("overlay after Discard = %q, want the backend alone", got)
	}

	o.Put([]byte("a"), []byte("2"))
	o.Delete([]byte("kept"))
	if err := o.Commit(); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if o.Len() != 0 {
		t.Errorf("Len after Commit = %d, want 0", o.Len())
	}
	if got := dump(t, backend, nil, nil); !slices.Equal(got, []string{"a=2"}) {
		t.Errorf("backend after Commit = %q, want [a=2]", got)
	}
	if err := o.Commit(); err != nil {
		t.Errorf("Commit with nothing pending: %v", err)
	}
}

func TestOverlayPendingDeletesHideBackend(t *testing.T) {
	backend := state.NewMemoryBackend()
	mustApply(t, backend,
		state.Write{Key: []byte("a"), Value: []byte("1")},
		state.Write{Key: []byte("b"), Value: []byte("2")},
		state.Write{Key: []byte("c"), Value: []byte("3")},
	)
	o := overlay.New(backend)
	defer o.Close()
	o.Delete([]byte("b"))
	o.Delete([]byte("c"))
	o.Put([]byte("c"), []byte("33")) // a put after a delete revives the key
	o.Delete([]byte("z"))            // absent everywhere

	if _, ok := mustGet(t, o, "b"); ok {
		t.Error("a pending delete does not hide the backend's value from Get")
	}
	if v, ok := mustGet(t, o, "c"); !ok || v != "33" {
		t.Errorf("Get(c) = %q, %v; want the pending 33", v, ok)
	}
	if v, ok := mustGet(t, backend, "b"); !ok || v != "2" {
		t.Errorf("backend Get(b) = %q, %v before Commit; want 2", v, ok)
	}
	if got, want := dump(t, o, nil, nil), []string{"a=1", "c=33"}; !slices.Equal(got, want) {
		t.Errorf("Range = %q, want %q", got, want)
	}
	if got, want := dump(t, o, []byte("b"), []byte("c")), []string(nil); !slices.Equal(got, want) {
		t.Errorf("Range over the deleted key = %q, want %q", got, want)
	}
}

func TestOverlayPendingIsSortedAndDeduplicated(t *testing.T) {
	o := overlay.New(state.NewMemoryBackend())
	defer o.Close()
	o.Put([]byte("b"), []byte("1"))
	o.Put([]byte("a"), []byte("1"))
	o.Put([]byte("b"), []byte("2"))
	o.Delete([]byte("c"))
	o.Put([]byte("d"), nil)
	o.Delete([]byte("a"))
	mustApply(t, o, state.Write{Key: []byte("\x00"), Value: []byte("0")}, state.Write{Key: []byte("d"), Value: []byte("4")})

	want := []state.Write{
		{Key: []byte("\x00"), Value: []byte("0")},
		{Key: []byte("a"), Delete: true},
		{Key: []byte("b"), Value: []byte("2")},
		{Key: []byte("c"), Delete: true},
		{Key: []byte("d"), Value: []byte("4")},
	}
	got := o.Pending()
	if !slices.EqualFunc(got, want, func(a, b state.Write) bool {
		return bytes.Equal(a.Key, b.Key) && bytes.Equal(a.Value, b.Value) && a.Delete == b.Delete
	}) {
		t.Errorf("Pending =\n%v\nwant\n%v", got, want)
	}
	if o.Len() != len(want) {
		t.Errorf("Len = %d, want %d", o.Len(), len(want))
	}
}

func TestOverlayCopiesPutBuffers(t *testing.T) {
	o := overlay.New(state.NewMemoryBackend())
	defer o.Close()
	key, value := []byte("key"), []byte("value")
	o.Put(key, value)
	copy(key, "xxx")
	copy(value, "xxxxx")
	if v, ok := mustGet(t, o, "key"); !ok || v != "value" {
		t.Errorf("Get after the caller reused its buffers = %q, %v; want value", v, ok)
	}
}

// failingBackend fails Apply while fail is set, and counts Apply calls.
type failingBackend struct {
	state.Backend
	fail    bool
	applies int
}

var errDiskFull = errors.New("disk full")

func (f *failingBackend) Apply(batch []state.Write) error {
	f.applies++
	if f.fail {
		return errDiskFull
	}
	return f.Backend.Apply(batch)
}

func TestOverlayCommitFailureKeepsPendingWrites(t *testing.T) {
	backend := &failingBackend{Backend: state.NewMemoryBackend(), fail: true}
	o := overlay.New(backend)
	defer o.Close()

	if err := o.Commit(); err != nil || backend.applies != 0 {
		t.Fatalf("Commit with nothing pending: err %v, %d Apply calls; want no call", err, backend.applies)
	}
	o.Put([]byte("a"), []byte("1"))
	err := o.Commit()
	if !errors.Is(err, errDiskFull) {
		t.Fatalf("Commit = %v, want the backend's error wrapped", err)
	}
	if o.Len() != 1 {
		t.Fatalf("after a failed Commit, Len = %d, want the write kept", o.Len())
	}
	backend.fail = false
	if err := o.Commit(); err != nil {
		t.Fatalf("retried Commit: %v", err)
	}
	if v, ok := mustGet(t, backend, "a"); !ok || v != "1" {
		t.Errorf("backend after the retried Commit: Get(a) = %q, %v", v, ok)
	}
}

func TestOverlayCloseClosesBackend(t *testing.T) {
	backend := state.NewMemoryBackend()
	o := overlay.New(backend)
	o.Put([]byte("a"), []byte("1"))
	if err := o.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, _, err := backend.Get([]byte("a")); !errors.Is(err, state.ErrClosed) {
		t.Errorf("backend Get after the overlay's Close: err = %v, want ErrClosed", err)
	}
	if err := o.Commit(); !errors.Is(err, state.ErrClosed) {
		t.Errorf("Commit after Close = %v, want ErrClosed", err)
	}
	o.Put([]byte("b"), []byte("2")) // dropped, not a panic
	if o.Len() != 0 {
		t.Errorf("Len after Close = %d, want 0", o.Len())
	}
}

// overlayModel is what an Overlay should hold: the committed map, the
// pending range deletes, and the pending writes, a nil pending value being
// a delete.
type overlayModel struct {
	committed map[string]string
	cleared   [][2][]byte // [start, end), nil bounds being open
	pending   map[string]*string
}

func inRange(k, start, end []byte) bool {
	return (start == nil || bytes.Compare(k, start) >= 0) && (end == nil || bytes.Compare(k, end) < 0)
}

// deleteRange records a range delete, which drops the pending writes it
// covers.
func (m *overlayModel) deleteRange(start, end []byte) {
	m.cleared = append(m.cleared, [2][]byte{start, end})
	maps.DeleteFunc(m.pending, func(k string, _ *string) bool { return inRange([]byte(k), start, end) })
}

// view returns the merged key-value pairs a reader should see, sorted.
func (m overlayModel) view() []string {
	merged := maps.Clone(m.committed)
	for _, r := range m.cleared {
		maps.DeleteFunc(merged, func(k string, _ string) bool { return inRange([]byte(k), r[0], r[1]) })
	}
	for k, v := range m.pending {
		if v == nil {
			delete(merged, k)
		} else {
			merged[k] = *v
		}
	}
	keys := slices.Sorted(maps.Keys(merged))
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k + "=" + merged[k]
	}
	return out
}

// within keeps the "key=value" strings of view whose keys fall in
// [start, end), nil bounds being open.
func within(view []string, start, end []byte) []string {
	var out []string
	for _, kv := range view {
		k := []byte(kv[:bytes.IndexByte([]byte(kv), '=')])
		if inRange(k, start, end) {
			out = append(out, kv)
		}
	}
	return out
}

// TestOverlayMatchesModel runs random operations against an Overlay and a
// model of it, and checks Get, Range (including over iterators opened
// before later writes), Pending and the committed backend, with range
// deletes among the writes.
func TestOverlayMatchesModel(t *testing.T) {
	// Keys without '=', from a small alphabet so that operations collide,
	// with the awkward bytes 0x00 and 0xff.
	alphabet := []byte{0x00, 'a', 'b', 0xff}
	randKey := func(rng *rand.Rand) []byte {
		k := make([]byte, rng.IntN(3))
		for i := range k {
			k[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return k
	}
	randBound := func(rng *rand.Rand) []byte {
		if rng.IntN(4) == 0 {
			return nil
		}
		return randKey(rng)
	}

	for seed := range uint64(30) {
		rng := rand.New(rand.NewPCG(seed, 0xedd1))
		backend := state.NewMemoryBackend()
		o := overlay.New(backend)
		m := overlayModel{committed: map[string]string{}, pending: map[string]*string{}}

		// Iterators opened earlier, with what they must yield.
		type openIter struct {
			it   state.Iterator
			want []string
		}
		var open []openIter

		for op := range 3000 {
			fail := func(format string, args ...any) {
				t.Helper()
				t.Fatalf("seed %d, op %d: %s", seed, op, fmt.Sprintf(format, args...))
			}
			switch r := rng.IntN(100); {
			case r < 35:
				k, v := randKey(rng), fmt.Sprintf("v%d", op)
				if rng.IntN(5) == 0 {
					v = "" // present, but empty: not a delete
				}
				o.Put(k, []byte(v))
				m.pending[string(k)] = &v
			case r < 50:
				k := randKey(rng)
				o.Delete(k)
				m.pending[string(k)] = nil
			case r < 55:
				start, end := randBound(rng), randBound(rng) // sometimes empty or inverted
				o.DeleteRange(start, end)
				m.deleteRange(start, end)
			case r < 65:
				k := randKey(rng)
				v, ok, err := o.Get(k)
				want := within(m.view(), k, append(slices.Clip(k), 0))
				got := []string(nil)
				if ok {
					got = []string{string(k) + "=" + string(v)}
				}
				if err != nil || !slices.Equal(got, want) {
					fail("Get(%q) = %q, %v; want %q", k, got, err, want)
				}
			case r < 80:
				start, end := randBound(rng), randBound(rng)
				want := within(m.view(), start, end)
				if start != nil && end != nil && bytes.Compare(start, end) >= 0 {
					want = nil
				}
				if got := dump(t, o, start, end); !slices.Equal(got, want) {
					fail("Range(%q, %q) = %q; want %q", start, end, got, want)
				}
			case r < 85:
				it, err := o.Range(nil, nil)
				if err != nil {
					fail("Range: %v", err)
				}
				open = append(open, openIter{it, m.view()})
			case r < 90 && len(open) > 0:
				i := rng.IntN(len(open))
				oi := open[i]
				open = slices.Delete(open, i, i+1)
				var got []string
				for oi.it.Next() {
					got = append(got, string(oi.it.Key())+"="+string(oi.it.Value()))
				}
				if err := oi.it.Err(); err != nil {
					fail("iterator opened earlier: %v", err)
				}
				oi.it.Close()
				if !slices.Equal(got, oi.want) {
					fail("iterator opened earlier saw %q; want the view at Range, %q", got, oi.want)
				}
			case r < 96:
				var want []string
				for _, k := range slices.Sorted(maps.Keys(m.pending)) {
					if v := m.pending[k]; v == nil {
						want = append(want, k+" deleted")
					} else {
						want = append(want, k+"="+*v)
					}
				}
				var got []string
				for _, w := range o.Pending() {
					if w.Delete {
						got = append(got, string(w.Key)+" deleted")
					} else {
						got = append(got, string(w.Key)+"="+string(w.Value))
					}
				}
				if !slices.Equal(got, want) || o.Len() != len(want) {
					fail("Pending = %q (Len %d); want %q", got, o.Len(), want)
				}
				if err := o.Commit(); err != nil {
					fail("Commit: %v", err)
				}
				view := m.view()
				m.committed = map[string]string{}
				for _, kv := range view {
					i := bytes.IndexByte([]byte(kv), '=')
					m.committed[kv[:i]] = kv[i+1:]
				}
				m.pending, m.cleared = map[string]*string{}, nil
				if got, want := dump(t, backend, nil, nil), m.view(); !slices.Equal(got, want) {
					fail("backend after Commit = %q; want %q", got, want)
				}
			default:
				o.Discard()
				m.pending, m.cleared = map[string]*string{}, nil
			}
		}
		for _, oi := range open {
			oi.it.Close()
		}
		if err := o.Close(); err != nil {
			t.Fatalf("seed %d: Close: %v", seed, err)
		}
	}
}

// BenchmarkOverlay measures an Overlay over the memory backend that
// commits after every Apply, as the engine does once per transaction: Apply
// is buffering plus Commit, and reads go through the (empty) overlay.
func BenchmarkOverlay(b *testing.B) {
	statetest.RunBackendBenchmarks(b, func(b *testing.B) state.Backend {
		return &committingOverlay{Overlay: overlay.New(state.NewMemoryBackend()), every: 1}
	})
}
