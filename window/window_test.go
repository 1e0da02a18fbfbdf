package window

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestNewTimeWindowChecksBoundsAsKafkaStreams(t *testing.T) {
	for _, tc := range []struct {
		start, end int64
		ok         bool
	}{
		{0, 1, true},
		{0, math.MaxInt64, true},
		{300000, 600000, true},
		{-1, 5, false}, // Window: start must not be negative
		{5, 5, false},  // TimeWindow: end must be after start
		{5, 4, false},  // Window: end before start
	} {
		w, err := NewTimeWindow(tc.start, tc.end)
		if tc.ok != (err == nil) {
			t.Fatalf("NewTimeWindow(%d, %d) error = %v, want ok=%v", tc.start, tc.end, err, tc.ok)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidWindow) {
				t.Fatalf("NewTimeWindow(%d, %d) error %v does not wrap ErrInvalidWindow", tc.start, tc.end, err)
			}
			continue
		}
		if w.Kind() != KindTime || w.StartMs() != tc.start || w.EndMs() != tc.end {
			t.Fatalf("NewTimeWindow(%d, %d) = %v kind %v", tc.start, tc.end, w, w.Kind())
		}
	}
}

func TestNewSessionWindowChecksBoundsAsKafkaStreams(t *testing.T) {
	for _, tc := range []struct {
		start, end int64
		ok         bool
	}{
		{0, 0, true}, // a session of one record
		{10, 20, true},
		{0, math.MaxInt64, true},
		{-1, 0, false},
		{5, 4, false},
	} {
		w, err := NewSessionWindow(tc.start, tc.end)
		if tc.ok != (err == nil) {
			t.Fatalf("NewSessionWindow(%d, %d) error = %v, want ok=%v", tc.start, tc.end, err, tc.ok)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidWindow) {
				t.Fatalf("error %v does not wrap ErrInvalidWindow", err)
			}
			continue
		}
		if w.Kind() != KindSession || w.StartMs() != tc.start || w.EndMs() != tc.end {
			t.Fatalf("NewSessionWindow(%d, %d) = %v kind %v", tc.start, tc.end, w, w.Kind())
		}
	}
}

func TestNewTimeWindowOfSizeCapsTheEnd(t *testing.T) {
	for _, tc := range []struct {
		start   int64
		size    time.Duration
		wantEnd int64
		ok      bool
	}{
		{0, 5 * time.Minute, 300000, true},
		{math.MaxInt64 - 10, 10 * time.Millisecond, math.MaxInt64, true},
		// WindowKeySchema.timeWindowForSize: start+size overflows, end = Long.MAX_VALUE.
		{math.MaxInt64 - 10, 11 * time.Millisecond, math.MaxInt64, true},
		{math.MaxInt64, time.Hour, math.MaxInt64, false}, // capped end == start: empty
		{0, 0, 0, false},
		{0, -time.Millisecond, 0, false},
		{0, 1500 * time.Microsecond, 0, false},
		{-1, time.Second, 0, false},
	} {
		w, err := NewTimeWindowOfSize(tc.start, tc.size)
		if tc.ok != (err == nil) {
			t.Fatalf("NewTimeWindowOfSize(%d, %v) error = %v, want ok=%v", tc.start, tc.size, err, tc.ok)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidWindow) {
				t.Fatalf("error %v does not wrap ErrInvalidWindow", err)
			}
			continue
		}
		if w.StartMs() != tc.start || w.EndMs() != tc.wantEnd {
			t.Fatalf("NewTimeWindowOfSize(%d, %v) = %v, want end %d", tc.start, tc.size, w, tc.wantEnd)
		}
	}
}

func mustTime(t *testing.T, start, end int64) Window {
	t.Helper()
	w, err := NewTimeWindow(start, end)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func mustSession(t *testing.T, start, end int64) Window {
	t.Helper()
	w, err := NewSessionWindow(start, end)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestOverlapsFollowsTheKind(t *testing.T) {
	for _, tc := range []struct {
		a, b [2]int64
		time bool // expected for time windows [a0,a1) and [b0,b1)
		sess bool // expected for session windows [a0,a1] and [b0,b1]
	}{
		{[2]int64{0, 5}, [2]int64{5, 10}, false, true}, // touch at 5: only closed windows share it
		{[2]int64{0, 5}, [2]int64{4, 10}, true, true},
		{[2]int64{0, 5}, [2]int64{6, 10}, false, false},
		{[2]int64{0, 10}, [2]int64{2, 3}, true, true}, // containment
		{[2]int64{3, 3}, [2]int64{3, 3}, false, true}, // one-record sessions at one instant (no such time window)
		{[2]int64{3, 3}, [2]int64{0, 3}, false, true},
	} {
		if tc.a[0] < tc.a[1] && tc.b[0] < tc.b[1] {
			a, b := mustTime(t, tc.a[0], tc.a[1]), mustTime(t, tc.b[0], tc.b[1])
			if got := a.Overlaps(b); got != tc.time {
				t.Errorf("%v.Overlaps(%v) = %v, want %v", a, b, got, tc.time)
			}
			if got := b.Overlaps(a); got != tc.time {
				t.Errorf("%v.Overlaps(%v) = %v, want %v (not symmetric)", b, a, got, tc.time)
			}
		}
		a, b := mustSession(t, tc.a[0], tc.a[1]), mustSession(t, tc.b[0], tc.b[1])
		if got := a.Overlaps(b); got != tc.sess {
			t.Errorf("%v.Overlaps(%v) = %v, want %v", a, b, got, tc.sess)
		}
		if got := b.Overlaps(a); got != tc.sess {
			t.Errorf("%v.Overlaps(%v) = %v, want %v (not symmetric)", b, a, got, tc.sess)
		}
	}
}

func TestOverlapsOfDifferentKindsPanics(t *testing.T) {
	for _, pair := range [][2]Window{
		{mustTime(t, 0, 5), mustSession(t, 0, 5)},
		{mustSession(t, 0, 5), mustTime(t, 0, 5)},
		{{}, {}},
	} {
		func() {
			defer func() {
				r := recover()
				if r == nil || !strings.Contains(r.(string), "one kind") {
					t.Errorf("%v.Overlaps(%v): recovered %v, want a panic about kinds", pair[0], pair[1], r)
				}
			}()
			pair[0].Overlaps(pair[1])
		}()
	}
}

func TestWindowsCompareByKindAndBounds(t *testing.T) {
	seen := map[Windowed[string]]int{}
	seen[Windowed[string]{Key: "A", Window: mustTime(t, 0, 5)}]++
	seen[Windowed[string]{Key: "A", Window: mustTime(t, 0, 5)}]++
	seen[Windowed[string]{Key: "A", Window: mustSession(t, 0, 5)}]++ // same bounds, other kind
	seen[Windowed[string]{Key: "B", Window: mustTime(t, 0, 5)}]++
	if len(seen) != 3 || seen[Windowed[string]{Key: "A", Window: mustTime(t, 0, 5)}] != 2 {
		t.Fatalf("map of windowed keys = %v", seen)
	}
}

func TestStrings(t *testing.T) {
	for _, tc := range []struct {
		got, want string
	}{
		{mustTime(t, 0, 300000).String(), "[0,300000)"},
		{mustSession(t, 10, 20).String(), "[10,20]"},
		{Window{}.String(), "[none]"},
		{Windowed[string]{Key: "A", Window: mustTime(t, 0, 300000)}.String(), "[A@0/300000]"},
		{KindTime.String() + " " + KindSession.String() + " " + KindNone.String() + " " + Kind(9).String(), "time session none Kind(9)"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestStartAndEndAsTime(t *testing.T) {
	w := mustTime(t, 1700000000123, math.MaxInt64)
	if got := w.Start(); !got.Equal(time.UnixMilli(1700000000123)) || got.Location() != time.UTC {
		t.Fatalf("Start() = %v", got)
	}
	if got := w.End().UnixMilli(); got != math.MaxInt64 {
		t.Fatalf("End().UnixMilli() = %d, want MaxInt64", got)
	}
}
