package state_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/eddystream/eddy/internal/overlay"
	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/state"
	"github.com/eddystream/eddy/state/pebblestore"
	"github.com/eddystream/eddy/window"
)

// backends runs fn on an in-memory and a Pebble backend.
func backends(t *testing.T, fn func(t *testing.T, b state.Backend)) {
	t.Run("memory", func(t *testing.T) { fn(t, state.NewMemoryBackend()) })
	t.Run("pebble", func(t *testing.T) {
		sup, err := pebblestore.NewSupplier()
		if err != nil {
			t.Fatal(err)
		}
		b, err := sup.Open(t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		fn(t, b)
	})
}

func ms(n int64) time.Time { return time.UnixMilli(n) }

func newWindows(t *testing.T, raw state.RawStore, size, retention time.Duration) state.WindowStore[string, string] {
	t.Helper()
	ws, err := state.NewWindowStore("w", "w-changelog", raw, serde.String(), serde.String(), state.WindowStoreConfig{WindowSize: size, Retention: retention})
	if err != nil {
		t.Fatal(err)
	}
	return ws
}

// windowsOf drains an iterator into "key@start/end=value" strings:
// windowsOf(store.Fetch...(...))(t).
func windowsOf[V any](it state.WindowIterator[string, V], err error) func(t *testing.T) []string {
	return func(t *testing.T) []string { t.Helper(); return drainWindows(t, it, err) }
}

func drainWindows[V any](t *testing.T, it state.WindowIterator[string, V], err error) []string {
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var out []string
	for it.Next() {
		w := it.Key().Window
		out = append(out, fmt.Sprintf("%s@%d/%d=%v", it.Key().Key, w.StartMs(), w.EndMs(), it.Value()))
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func put(t *testing.T, ws state.WindowStore[string, string], k, v string, start int64) bool {
	t.Helper()
	ok, err := ws.Put(k, v, ms(start))
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func TestWindowStoreReads(t *testing.T) {
	backends(t, func(t *testing.T, b state.Backend) {
		o := overlay.New(b)
		ws := newWindows(t, o, 10*time.Second, 10*time.Minute)
		// Keys that are prefixes of each other, and hold zero bytes, stay
		// apart.
		for _, k := range []string{"a", "a\x00", "a\x00b", "ab", "b"} {
			for _, start := range []int64{0, 10_000, 70_000} {
				put(t, ws, k, fmt.Sprintf("%q/%d", k, start), start)
			}
		}
		check := func(stage string) {
			t.Helper()
			got := windowsOf(ws.FetchRange("a\x00", ms(0), ms(70_000)))(t)
			want := []string{`a` + "\x00" + `@0/10000="a\x00"/0`, `a` + "\x00" + `@10000/20000="a\x00"/10000`, `a` + "\x00" + `@70000/80000="a\x00"/70000`}
			if !slices.Equal(got, want) {
				t.Fatalf("%s: FetchRange(a\\x00, 0, 70000) = %q, want %q", stage, got, want)
			}
			if got := windowsOf(ws.FetchRange("a", ms(5_000), ms(69_999)))(t); !slices.Equal(got, []string{`a@10000/20000="a"/10000`}) {
				t.Fatalf("%s: FetchRange(a, 5000, 69999) = %q", stage, got)
			}
			if v, ok, err := ws.Fetch("ab", ms(70_000)); err != nil || !ok || v != `"ab"/70000` {
				t.Fatalf("%s: Fetch(ab, 70000) = %q %v %v", stage, v, ok, err)
			}
			if _, ok, err := ws.Fetch("ab", ms(70_001)); err != nil || ok {
				t.Fatalf("%s: Fetch(ab, 70001) found a window: %v", stage, err)
			}
			all := windowsOf(ws.FetchAll(ms(10_000), ms(10_000)))(t)
			if len(all) != 5 {
				t.Fatalf("%s: FetchAll(10000, 10000) = %q, want one window per key", stage, all)
			}
			if all := windowsOf(ws.All())(t); len(all) != 15 {
				t.Fatalf("%s: All = %d windows, want 15", stage, len(all))
			}
		}
		check("uncommitted")
		if err := o.Commit(); err != nil {
			t.Fatal(err)
		}
		check("committed")
		if err := ws.Delete("ab", ms(70_000)); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := ws.Fetch("ab", ms(70_000)); ok {
			t.Fatal("a deleted window is still there")
		}
	})
}

// TestWindowStoreExpiresSegmentsWhole: windows older than the retention
// are not returned, writes to them are ignored, and their segments leave
// the backend with the commit, in one range deletion.
func TestWindowStoreExpiresSegmentsWhole(t *testing.T) {
	backends(t, func(t *testing.T, b state.Backend) {
		o := overlay.New(b)
		// Retention 2 minutes: segments of one minute.
		ws := newWindows(t, o, time.Minute, 2*time.Minute)
		for i := int64(0); i < 5; i++ {
			for k := 0; k < 100; k++ {
				put(t, ws, fmt.Sprint("k", k), "v", i*60_000)
			}
		}
		if err := o.Commit(); err != nil {
			t.Fatal(err)
		}
		// Stream time 240 s: windows starting before 120 s + 1 ms are gone.
		if got := windowsOf(ws.FetchRange("k1", ms(0), ms(1<<40)))(t); !slices.Equal(got, []string{"k1@180000/240000=v", "k1@240000/300000=v"}) {
			t.Fatalf("after expiry: %q", got)
		}
		if put(t, ws, "late", "v", 60_000) {
			t.Fatal("a write to an expired window was taken")
		}
		// The segments before the segment of 240 s - 2 min (segment 2)
		// were dropped as the stream time passed them: 200 keys in
		// segments 0 and 1.
		n := 0
		it, err := b.Range(nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		for it.Next() {
			n++
		}
		it.Close()
		if n != 300 {
			t.Fatalf("backend holds %d keys, want 300 (segments 2 to 4)", n)
		}

		// A store opened again over the same backend (a restarted task)
		// takes its stream time from the latest segment it holds.
		again := newWindows(t, overlay.New(b), time.Minute, 2*time.Minute)
		if got := windowsOf(again.FetchRange("k2", ms(0), ms(1<<40)))(t); !slices.Equal(got, []string{"k2@180000/240000=v", "k2@240000/300000=v"}) {
			t.Fatalf("reopened: %q", got)
		}
		// Its stream time is the latest segment's start, a lower bound:
		// a window that was live is still written.
		if !put(t, again, "k9", "v", 180_000) {
			t.Fatal("reopened: a write to a live window was ignored")
		}
	})
}

func TestWindowStoreMetadata(t *testing.T) {
	backends(t, func(t *testing.T, b state.Backend) {
		o := overlay.New(b)
		ws := newWindows(t, o, time.Minute, 2*time.Minute)
		md := ws.(state.WindowStoreMetadata)
		if err := md.PutMetadata("last", []byte("x")); err != nil {
			t.Fatal(err)
		}
		put(t, ws, "k", "v", 0)
		put(t, ws, "k", "v", 1<<40) // expires everything before it
		if got := windowsOf(ws.All())(t); len(got) != 1 {
			t.Fatalf("All = %q: the metadata must not be iterated", got)
		}
		if err := o.Commit(); err != nil {
			t.Fatal(err)
		}
		again := newWindows(t, overlay.New(b), time.Minute, 2*time.Minute)
		v, ok, err := again.(state.WindowStoreMetadata).Metadata("last")
		if err != nil || !ok || string(v) != "x" {
			t.Fatalf("Metadata after expiry and reopening = %q %v %v", v, ok, err)
		}
		if got := windowsOf(again.FetchAll(ms(0), ms(1<<41)))(t); len(got) != 1 {
			t.Fatalf("reopened FetchAll = %q: the metadata must not count as the latest segment", got)
		}
	})
}

func session(k string, start, end int64) window.Windowed[string] {
	w, err := window.NewSessionWindow(start, end)
	if err != nil {
		panic(err)
	}
	return window.Windowed[string]{Key: k, Window: w}
}

func TestSessionStore(t *testing.T) {
	backends(t, func(t *testing.T, b state.Backend) {
		o := overlay.New(b)
		ss, err := state.NewSessionStore("s", "s-changelog", o, serde.String(), serde.String(), 10*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []window.Windowed[string]{session("a", 0, 10), session("a", 20, 30), session("a", 100, 200), session("ab", 15, 25), session("b", 0, 0)} {
			if _, err := ss.Put(s, s.Window.String()); err != nil {
				t.Fatal(err)
			}
		}
		// A record at 22 with a gap of 5 merges the sessions that end at
		// or after 17 and start at or before 27: a's [20,30] only.
		if got := windowsOf(ss.FindSessions("a", ms(17), ms(27)))(t); !slices.Equal(got, []string{"a@20/30=[20,30]"}) {
			t.Fatalf("FindSessions(a, 17, 27) = %q", got)
		}
		if got := windowsOf(ss.FindSessions("a", ms(5), ms(150)))(t); !slices.Equal(got, []string{"a@0/10=[0,10]", "a@20/30=[20,30]", "a@100/200=[100,200]"}) {
			t.Fatalf("FindSessions(a, 5, 150) = %q", got)
		}
		if got := windowsOf(ss.Fetch("b"))(t); !slices.Equal(got, []string{"b@0/0=[0,0]"}) {
			t.Fatalf("Fetch(b) = %q", got)
		}
		if v, ok, err := ss.FetchSession("ab", ms(15), ms(25)); err != nil || !ok || v != "[15,25]" {
			t.Fatalf("FetchSession(ab, 15, 25) = %q %v %v", v, ok, err)
		}
		if err := ss.Remove(session("a", 20, 30)); err != nil {
			t.Fatal(err)
		}
		if err := o.Commit(); err != nil {
			t.Fatal(err)
		}
		if got := windowsOf(ss.All())(t); len(got) != 4 {
			t.Fatalf("All after a remove = %q", got)
		}
		// Sessions expire by their end.
		if _, err := ss.Put(session("c", 1<<30, 1<<30), "late"); err != nil {
			t.Fatal(err)
		}
		if got := windowsOf(ss.All())(t); !slices.Equal(got, []string{fmt.Sprintf("c@%d/%d=late", 1<<30, 1<<30)}) {
			t.Fatalf("All after stream time moved on = %q", got)
		}
		if ok, err := ss.Put(session("a", 0, 10), "again"); err != nil || ok {
			t.Fatalf("a write to an expired session was taken (%v)", err)
		}
	})
}
