package window

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func ms(ms int64) time.Time { return time.UnixMilli(ms) }

func mustTimeWindows(t *testing.T, size, advance, grace time.Duration) TimeWindows {
	t.Helper()
	w, err := TimeWindowsOfSizeAndGrace(size, grace)
	if err != nil {
		t.Fatal(err)
	}
	if advance != size {
		if w, err = w.AdvanceBy(advance); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

// spans renders windows as [start,end) pairs in the unit given, to keep
// the tables readable.
func spans(ws []Window, unit time.Duration) [][2]int64 {
	out := [][2]int64{}
	for _, w := range ws {
		if w.Kind() != KindTime {
			panic("not a time window")
		}
		out = append(out, [2]int64{w.StartMs() / unit.Milliseconds(), w.EndMs() / unit.Milliseconds()})
	}
	return out
}

func TestTimeWindowsFor(t *testing.T) {
	const m = time.Minute
	for _, tc := range []struct {
		name                string
		size, advance, unit time.Duration
		ts                  time.Time
		want                [][2]int64 // in unit
	}{
		{"tumbling at the epoch", 5 * m, 5 * m, m, ms(0), [][2]int64{{0, 5}}},
		{"tumbling last instant of a window", 5 * m, 5 * m, time.Millisecond, ms(300000 - 1), [][2]int64{{0, 300000}}},
		{"tumbling end is exclusive", 5 * m, 5 * m, m, ms(300000), [][2]int64{{5, 10}}},
		{"tumbling later", 5 * m, 5 * m, m, ms(17 * 60000), [][2]int64{{15, 20}}},
		// Hopping windows 5m/1m, the brief's example.
		{"hopping at the epoch", 5 * m, m, m, ms(0), [][2]int64{{0, 5}}},
		{"hopping in the first size: no windows before the epoch", 5 * m, m, m, ms(3 * 60000), [][2]int64{{0, 5}, {1, 6}, {2, 7}, {3, 8}}},
		{"hopping at 6m", 5 * m, m, m, ms(6 * 60000), [][2]int64{{2, 7}, {3, 8}, {4, 9}, {5, 10}, {6, 11}}},
		{"hopping just before 6m", 5 * m, m, time.Millisecond, ms(6*60000 - 1), [][2]int64{{60000, 360000}, {120000, 420000}, {180000, 480000}, {240000, 540000}, {300000, 600000}}},
		// TimeWindows' javadoc: size 5000ms, advance 3000ms, boundaries [0;5000),[3000;8000),...
		{"javadoc 5000/3000 at 4000", 5 * time.Second, 3 * time.Second, time.Millisecond, ms(4000), [][2]int64{{0, 5000}, {3000, 8000}}},
		{"javadoc 5000/3000 at 5000", 5 * time.Second, 3 * time.Second, time.Millisecond, ms(5000), [][2]int64{{3000, 8000}}},
		{"javadoc 5000/3000 at 6000", 5 * time.Second, 3 * time.Second, time.Millisecond, ms(6000), [][2]int64{{3000, 8000}, {6000, 11000}}},
		{"before the epoch: none", 5 * m, m, m, ms(-1), [][2]int64{}},
		{"sub-millisecond part of ts is dropped", 5 * m, 5 * m, time.Millisecond, time.UnixMilli(299999).Add(999 * time.Microsecond), [][2]int64{{0, 300000}}},
	} {
		w := mustTimeWindows(t, tc.size, tc.advance, 0)
		if got := spans(w.WindowsFor(tc.ts), tc.unit); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v.WindowsFor(%d) = %v, want %v", tc.name, w, tc.ts.UnixMilli(), got, tc.want)
		}
	}
}

// TestTimeWindowsForMatchesDefinition checks WindowsFor against the
// definition itself: every window [k*advance, k*advance+size) with k >= 0
// that contains ts, found by brute force.
func TestTimeWindowsForMatchesDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		size := rng.Int64N(50) + 1
		advance := rng.Int64N(size) + 1
		ts := rng.Int64N(400) - 20
		w := mustTimeWindows(t, time.Duration(size)*time.Millisecond, time.Duration(advance)*time.Millisecond, 0)
		var want []Window
		for start := int64(0); start <= ts; start += advance {
			if ts < start+size {
				want = append(want, Window{kind: KindTime, startMs: start, endMs: start + size})
			}
		}
		if got := w.WindowsFor(ms(ts)); !slices.Equal(got, want) {
			t.Fatalf("%v.WindowsFor(%d) = %v, want %v", w, ts, got, want)
		}
	}
}

func TestTimeWindowsForCapsEndsNearTheLargestTimestamp(t *testing.T) {
	w := mustTimeWindows(t, 10*time.Millisecond, 4*time.Millisecond, 0)
	got := w.WindowsFor(ms(math.MaxInt64))
	// Starts are the multiples of 4 in (MaxInt64-10, MaxInt64]; MaxInt64 = 4k+3.
	want := []Window{
		{kind: KindTime, startMs: math.MaxInt64 - 7, endMs: math.MaxInt64},
		{kind: KindTime, startMs: math.MaxInt64 - 3, endMs: math.MaxInt64},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("WindowsFor(MaxInt64) = %v, want %v", got, want)
	}
}

func TestTimeWindowsForOnZeroValuePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("WindowsFor on the zero TimeWindows did not panic")
		}
	}()
	TimeWindows{}.WindowsFor(ms(0))
}

func TestTimeWindowsDefinition(t *testing.T) {
	tumbling, err := TimeWindowsOfSizeWithNoGrace(5 * time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if tumbling.Size() != 5*time.Minute || tumbling.Advance() != 5*time.Minute || tumbling.Grace() != 0 || tumbling.Retention() != 5*time.Minute {
		t.Fatalf("no-grace tumbling windows = %v, retention %v", tumbling, tumbling.Retention())
	}
	hopping, err := tumbling.AdvanceBy(time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if hopping.Size() != 5*time.Minute || hopping.Advance() != time.Minute {
		t.Fatalf("AdvanceBy(1m) = %v", hopping)
	}
	graced := mustTimeWindows(t, 5*time.Minute, time.Minute, 30*time.Second)
	if graced.Grace() != 30*time.Second || graced.Retention() != 5*time.Minute+30*time.Second {
		t.Fatalf("%v: retention %v, want size+grace", graced, graced.Retention())
	}
	if got := graced.String(); got != "TimeWindows{size=5m0s, advance=1m0s, grace=30s}" {
		t.Fatalf("String() = %q", got)
	}
	if graced != mustTimeWindows(t, 5*time.Minute, time.Minute, 30*time.Second) {
		t.Fatal("equal definitions compare unequal")
	}
}

func TestTimeWindowsRejectsWhatKafkaStreamsRejects(t *testing.T) {
	ok := mustTimeWindows(t, 5*time.Minute, 5*time.Minute, 0)
	huge := time.Duration(math.MaxInt64).Truncate(time.Millisecond)
	for name, f := range map[string]func() (TimeWindows, error){
		"zero size":             func() (TimeWindows, error) { return TimeWindowsOfSizeWithNoGrace(0) },
		"negative size":         func() (TimeWindows, error) { return TimeWindowsOfSizeWithNoGrace(-time.Second) },
		"negative grace":        func() (TimeWindows, error) { return TimeWindowsOfSizeAndGrace(time.Second, -time.Millisecond) },
		"sub-millisecond size":  func() (TimeWindows, error) { return TimeWindowsOfSizeWithNoGrace(1500 * time.Microsecond) },
		"sub-millisecond grace": func() (TimeWindows, error) { return TimeWindowsOfSizeAndGrace(time.Second, time.Nanosecond) },
		"retention overflows":   func() (TimeWindows, error) { return TimeWindowsOfSizeAndGrace(huge, time.Millisecond) },
		"zero advance":          func() (TimeWindows, error) { return ok.AdvanceBy(0) },
		"negative advance":      func() (TimeWindows, error) { return ok.AdvanceBy(-time.Minute) },
		"advance over size":     func() (TimeWindows, error) { return ok.AdvanceBy(5*time.Minute + time.Millisecond) },
		"sub-ms advance":        func() (TimeWindows, error) { return ok.AdvanceBy(time.Microsecond) },
	} {
		w, err := f()
		if !errors.Is(err, ErrInvalidDefinition) || w != (TimeWindows{}) {
			t.Errorf("%s: got %v, %v; want the zero TimeWindows and an error wrapping ErrInvalidDefinition", name, w, err)
		}
	}
	if _, err := TimeWindowsOfSizeAndGrace(huge, 0); err != nil {
		t.Errorf("the largest size in whole milliseconds: %v", err)
	}
}
