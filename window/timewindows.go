package window

import (
	"fmt"
	"math"
	"time"
)

// TimeWindows defines fixed-size windows aligned to the epoch, as Kafka
// Streams' TimeWindows: every advance, a window of size starts, so the
// N-th window is [N*advance, N*advance+size). With advance == size (the
// default) the windows are tumbling: each record falls in exactly one.
// With advance < size they are hopping and overlap: a record falls in up to
// size/advance of them.
//
// A window accepts records until stream time reaches its end plus the
// grace period; later records for it are late and dropped.
//
// Build one with TimeWindowsOfSizeWithNoGrace or TimeWindowsOfSizeAndGrace,
// then AdvanceBy for hopping windows. The zero value is not a valid
// definition. TimeWindows is a comparable value.
type TimeWindows struct {
	sizeMs, advanceMs, graceMs int64
}

// TimeWindowsOfSizeWithNoGrace returns tumbling windows of the given size
// and a grace period of zero, as Kafka Streams'
// TimeWindows.ofSizeWithNoGrace: a record that arrives after stream time
// passed its window's end is dropped.
func TimeWindowsOfSizeWithNoGrace(size time.Duration) (TimeWindows, error) {
	return TimeWindowsOfSizeAndGrace(size, 0)
}

// TimeWindowsOfSizeAndGrace returns tumbling windows of the given size that
// accept out-of-order records until stream time passes a window's end plus
// grace, as Kafka Streams' TimeWindows.ofSizeAndGrace. The size must be
// positive and grace not negative, both whole milliseconds, and size+grace
// must fit in a time.Duration; otherwise the error wraps
// ErrInvalidDefinition.
func TimeWindowsOfSizeAndGrace(size, grace time.Duration) (TimeWindows, error) {
	const def = "time windows"
	sizeMs, err := millis(def, "size", size)
	if err != nil {
		return TimeWindows{}, err
	}
	graceMs, err := millis(def, "grace", grace)
	if err != nil {
		return TimeWindows{}, err
	}
	return newTimeWindows(sizeMs, sizeMs, graceMs)
}

// AdvanceBy returns hopping windows: w's size and grace, with a new
// window starting every advance, as Kafka Streams' TimeWindows.advanceBy.
// The advance must be positive, at most the size, and whole milliseconds;
// otherwise the error wraps ErrInvalidDefinition.
func (w TimeWindows) AdvanceBy(advance time.Duration) (TimeWindows, error) {
	advanceMs, err := millis("time windows", "advance", advance)
	if err != nil {
		return TimeWindows{}, err
	}
	return newTimeWindows(w.sizeMs, advanceMs, w.graceMs)
}

func newTimeWindows(sizeMs, advanceMs, graceMs int64) (TimeWindows, error) {
	const def = "time windows"
	if sizeMs <= 0 {
		return TimeWindows{}, fmt.Errorf("%w: %s: size must be positive, got %v", ErrInvalidDefinition, def, msDuration(sizeMs))
	}
	if advanceMs <= 0 || advanceMs > sizeMs {
		return TimeWindows{}, fmt.Errorf("%w: %s: advance must be positive and at most the size %v, got %v", ErrInvalidDefinition, def, msDuration(sizeMs), msDuration(advanceMs))
	}
	if err := nonNegative(def, "grace", graceMs); err != nil {
		return TimeWindows{}, err
	}
	if err := fitsDuration(def, "size plus grace", sizeMs+graceMs); err != nil {
		return TimeWindows{}, err
	}
	return TimeWindows{sizeMs: sizeMs, advanceMs: advanceMs, graceMs: graceMs}, nil
}

// Size returns the length of each window.
func (w TimeWindows) Size() time.Duration { return msDuration(w.sizeMs) }

// Advance returns the interval between window starts (equal to Size for
// tumbling windows).
func (w TimeWindows) Advance() time.Duration { return msDuration(w.advanceMs) }

// Grace returns the grace period: how long after a window's end, in stream
// time, it still accepts records.
func (w TimeWindows) Grace() time.Duration { return msDuration(w.graceMs) }

// Retention returns how long a window store must keep a window: size plus
// grace, the default retention of Kafka Streams' WindowStoreMaterializer
// (which also refuses a shorter one).
func (w TimeWindows) Retention() time.Duration { return msDuration(w.sizeMs + w.graceMs) }

// WindowsFor returns the windows that contain ts, in order of their start,
// as Kafka Streams' TimeWindows.windowsFor: ts is taken in whole
// milliseconds since the epoch (ts.UnixMilli()), the first window starts at
// the latest multiple of the advance not after ts-size+advance, and each
// next one an advance later up to ts. Windows that would start before the
// epoch are not created, so a record in the first size-advance after the
// epoch falls in fewer windows, and a record before the epoch in none.
//
// Where Kafka Streams fails (a window end past the largest int64
// millisecond, about 292 million years from now), the end is capped to
// math.MaxInt64, as Kafka Streams' windowed deserializers cap it.
//
// WindowsFor panics on the zero TimeWindows.
func (w TimeWindows) WindowsFor(ts time.Time) []Window {
	if w.advanceMs <= 0 {
		panic("window: WindowsFor on the zero TimeWindows; build one with TimeWindowsOfSizeAndGrace")
	}
	t := ts.UnixMilli()
	if t < 0 {
		return nil
	}
	// t >= 0 and advance <= size, both well inside int64: no overflow.
	start := max(0, t-w.sizeMs+w.advanceMs) / w.advanceMs * w.advanceMs
	out := make([]Window, 0, (t-start)/w.advanceMs+1)
	for {
		out = append(out, Window{kind: KindTime, startMs: start, endMs: capAdd(start, w.sizeMs)})
		if start > math.MaxInt64-w.advanceMs || start+w.advanceMs > t {
			return out
		}
		start += w.advanceMs
	}
}

// String returns the definition, e.g. "TimeWindows{size=5m0s, advance=1m0s, grace=0s}".
func (w TimeWindows) String() string {
	return fmt.Sprintf("TimeWindows{size=%v, advance=%v, grace=%v}", w.Size(), w.Advance(), w.Grace())
}
