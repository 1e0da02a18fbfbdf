package window

import (
	"errors"
	"math"
	"testing"
	"time"
)

func TestSlidingWindowsDefinition(t *testing.T) {
	w, err := SlidingWindowsOfTimeDifferenceAndGrace(5*time.Second, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// SlidingWindowStoreMaterializer: retention = 2 * timeDifference + grace.
	if w.TimeDifference() != 5*time.Second || w.Grace() != 2*time.Second || w.Retention() != 12*time.Second {
		t.Fatalf("%v: retention %v", w, w.Retention())
	}
	if got := w.String(); got != "SlidingWindows{timeDifference=5s, grace=2s}" {
		t.Fatalf("String() = %q", got)
	}
	noGrace, err := SlidingWindowsOfTimeDifferenceWithNoGrace(0) // Kafka Streams allows 0
	if err != nil || noGrace != (SlidingWindows{}) {
		t.Fatalf("OfTimeDifferenceWithNoGrace(0) = %v, %v", noGrace, err)
	}
	huge := time.Duration(math.MaxInt64/2).Truncate(time.Millisecond) + time.Millisecond
	for name, f := range map[string]func() (SlidingWindows, error){
		"negative difference": func() (SlidingWindows, error) { return SlidingWindowsOfTimeDifferenceWithNoGrace(-time.Second) },
		"negative grace": func() (SlidingWindows, error) {
			return SlidingWindowsOfTimeDifferenceAndGrace(time.Second, -time.Second)
		},
		"sub-ms difference":   func() (SlidingWindows, error) { return SlidingWindowsOfTimeDifferenceWithNoGrace(time.Microsecond) },
		"retention overflows": func() (SlidingWindows, error) { return SlidingWindowsOfTimeDifferenceWithNoGrace(huge) },
	} {
		if _, err := f(); !errors.Is(err, ErrInvalidDefinition) {
			t.Errorf("%s: error %v does not wrap ErrInvalidDefinition", name, err)
		}
	}
}

func TestSessionWindowsDefinition(t *testing.T) {
	w, err := SessionWindowsOfInactivityGapAndGrace(5*time.Minute, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	// SessionStoreMaterializer: retention = gap + grace.
	if w.InactivityGap() != 5*time.Minute || w.Grace() != time.Minute || w.Retention() != 6*time.Minute {
		t.Fatalf("%v: retention %v", w, w.Retention())
	}
	if got := w.String(); got != "SessionWindows{inactivityGap=5m0s, grace=1m0s}" {
		t.Fatalf("String() = %q", got)
	}
	if w, err := SessionWindowsOfInactivityGapWithNoGrace(time.Second); err != nil || w.Grace() != 0 {
		t.Fatalf("OfInactivityGapWithNoGrace = %v, %v", w, err)
	}
	for name, f := range map[string]func() (SessionWindows, error){
		"zero gap":     func() (SessionWindows, error) { return SessionWindowsOfInactivityGapWithNoGrace(0) },
		"negative gap": func() (SessionWindows, error) { return SessionWindowsOfInactivityGapWithNoGrace(-time.Second) },
		"negative grace": func() (SessionWindows, error) {
			return SessionWindowsOfInactivityGapAndGrace(time.Second, -time.Second)
		},
		"sub-ms gap": func() (SessionWindows, error) { return SessionWindowsOfInactivityGapWithNoGrace(time.Nanosecond) },
	} {
		if _, err := f(); !errors.Is(err, ErrInvalidDefinition) {
			t.Errorf("%s: error %v does not wrap ErrInvalidDefinition", name, err)
		}
	}
}

func TestSessionMerges(t *testing.T) {
	w, err := SessionWindowsOfInactivityGapWithNoGrace(5 * time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	s := mustSession(t, 10, 12)
	for _, tc := range []struct {
		ts   int64
		want bool
	}{
		{4, false}, {5, true}, // start - gap is inclusive
		{10, true}, {11, true}, {12, true},
		{17, true}, {18, false}, // end + gap is inclusive
	} {
		if got := w.Merges(s, ms(tc.ts)); got != tc.want {
			t.Errorf("Merges(%v, %d) = %v, want %v", s, tc.ts, got, tc.want)
		}
	}
	// SessionWindows' javadoc: gap 5, records at 10, 12, 20 make sessions
	// [10,12] and [20,20]; a record at 16 then merges both.
	if w.Merges(s, ms(20)) {
		t.Error("a record at 20 joined [10,12] with gap 5")
	}
	for _, s := range []Window{s, mustSession(t, 20, 20)} {
		if !w.Merges(s, ms(16)) {
			t.Errorf("a record at 16 did not merge with %v", s)
		}
	}
	// No overflow at the extremes.
	if !w.Merges(mustSession(t, math.MaxInt64-3, math.MaxInt64), ms(math.MaxInt64)) {
		t.Error("a record at MaxInt64 did not merge with a session ending there")
	}
	if w.Merges(mustSession(t, 0, 0), ms(math.MaxInt64)) {
		t.Error("a record at MaxInt64 merged with [0,0]")
	}
}

func TestJoinWindowsDefinition(t *testing.T) {
	w, err := JoinWindowsOfTimeDifferenceAndGrace(5*time.Second, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	before, after := w.BeforeAfter()
	// KStreamImplJoin: window size = before + after, retention = size + grace.
	if before != 5*time.Second || after != 5*time.Second || w.Grace() != time.Second || w.Size() != 10*time.Second || w.Retention() != 11*time.Second {
		t.Fatalf("%v: size %v retention %v", w, w.Size(), w.Retention())
	}
	if got := w.String(); got != "JoinWindows{before=5s, after=5s, grace=1s}" {
		t.Fatalf("String() = %q", got)
	}
	// JoinWindows' javadoc: before = 0 and after = time-difference.
	onlyAfter, err := w.Before(0)
	if err != nil {
		t.Fatal(err)
	}
	if b, a := onlyAfter.BeforeAfter(); b != 0 || a != 5*time.Second || onlyAfter.Size() != 5*time.Second {
		t.Fatalf("Before(0) = %v", onlyAfter)
	}
	// A negative bound is allowed while before+after is not negative.
	shifted, err := onlyAfter.Before(-2 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if b, a := shifted.BeforeAfter(); b != -2*time.Second || a != 5*time.Second || shifted.Size() != 3*time.Second {
		t.Fatalf("Before(-2s) = %v", shifted)
	}
	onlyBefore, err := w.After(0)
	if err != nil {
		t.Fatal(err)
	}
	if b, a := onlyBefore.BeforeAfter(); b != 5*time.Second || a != 0 {
		t.Fatalf("After(0) = %v", onlyBefore)
	}
	if w, err := JoinWindowsOfTimeDifferenceWithNoGrace(time.Second); err != nil || w.Grace() != 0 {
		t.Fatalf("OfTimeDifferenceWithNoGrace = %v, %v", w, err)
	}
	for name, f := range map[string]func() (JoinWindows, error){
		"negative difference":  func() (JoinWindows, error) { return JoinWindowsOfTimeDifferenceWithNoGrace(-time.Second) },
		"negative grace":       func() (JoinWindows, error) { return JoinWindowsOfTimeDifferenceAndGrace(time.Second, -time.Second) },
		"inverse window":       func() (JoinWindows, error) { return onlyAfter.Before(-6 * time.Second) },
		"inverse window after": func() (JoinWindows, error) { return onlyBefore.After(-5*time.Second - time.Millisecond) },
		"sub-ms before":        func() (JoinWindows, error) { return w.Before(time.Microsecond) },
	} {
		if _, err := f(); !errors.Is(err, ErrInvalidDefinition) {
			t.Errorf("%s: error %v does not wrap ErrInvalidDefinition", name, err)
		}
	}
}
