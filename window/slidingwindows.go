package window

import (
	"fmt"
	"time"
)

// SlidingWindows defines windows of a fixed size that slide with the data,
// as Kafka Streams' SlidingWindows: two records of a key fall in a common
// window if their timestamps are at most the time difference apart
// (inclusive). A window is created each time a record enters or leaves a
// window, so windows start and end at record timestamps: the window a
// record at t creates ends at t ([t-diff, t]), the one created when it
// drops out starts at t+1. Which windows a record creates and updates is
// the aggregation's work (Kafka Streams' KStreamSlidingWindowAggregate),
// not this definition's.
//
// A window accepts records until stream time passes its end plus the grace
// period.
//
// Build one with SlidingWindowsOfTimeDifferenceWithNoGrace or
// SlidingWindowsOfTimeDifferenceAndGrace. The zero value is a valid
// definition with a time difference and grace of zero. SlidingWindows is
// a comparable value.
type SlidingWindows struct {
	diffMs, graceMs int64
}

// SlidingWindowsOfTimeDifferenceWithNoGrace returns sliding windows with
// the given maximum time difference and a grace period of zero, as Kafka
// Streams' SlidingWindows.ofTimeDifferenceWithNoGrace.
func SlidingWindowsOfTimeDifferenceWithNoGrace(timeDifference time.Duration) (SlidingWindows, error) {
	return SlidingWindowsOfTimeDifferenceAndGrace(timeDifference, 0)
}

// SlidingWindowsOfTimeDifferenceAndGrace returns sliding windows with the
// given maximum time difference (inclusive) between records in one window
// and the given grace period, as Kafka Streams'
// SlidingWindows.ofTimeDifferenceAndGrace. Both must be non-negative
// (Kafka Streams allows a time difference of zero) and whole milliseconds,
// and 2*timeDifference+grace must fit in a time.Duration; otherwise the
// error wraps ErrInvalidDefinition.
func SlidingWindowsOfTimeDifferenceAndGrace(timeDifference, grace time.Duration) (SlidingWindows, error) {
	const def = "sliding windows"
	diffMs, err := millis(def, "time difference", timeDifference)
	if err != nil {
		return SlidingWindows{}, err
	}
	graceMs, err := millis(def, "grace", grace)
	if err != nil {
		return SlidingWindows{}, err
	}
	if err := nonNegative(def, "time difference", diffMs); err != nil {
		return SlidingWindows{}, err
	}
	if err := nonNegative(def, "grace", graceMs); err != nil {
		return SlidingWindows{}, err
	}
	if err := fitsDuration(def, "twice the time difference plus grace", 2*diffMs+graceMs); err != nil {
		return SlidingWindows{}, err
	}
	return SlidingWindows{diffMs: diffMs, graceMs: graceMs}, nil
}

// TimeDifference returns the maximum time difference between two records
// of one window; it is also each window's size: a window is
// [start, start+TimeDifference], both bounds inclusive, and is kept in a
// window store of that window size.
func (w SlidingWindows) TimeDifference() time.Duration { return msDuration(w.diffMs) }

// Grace returns the grace period: how long after a window's end, in stream
// time, it still accepts records.
func (w SlidingWindows) Grace() time.Duration { return msDuration(w.graceMs) }

// Retention returns how long a window store must keep a window: twice the
// time difference plus grace, the default retention of Kafka Streams'
// SlidingWindowStoreMaterializer (which also refuses a shorter one),
// because a record may need the aggregate of a window that starts up to
// twice the time difference before it.
func (w SlidingWindows) Retention() time.Duration { return msDuration(2*w.diffMs + w.graceMs) }

// String returns the definition, e.g. "SlidingWindows{timeDifference=5s, grace=0s}".
func (w SlidingWindows) String() string {
	return fmt.Sprintf("SlidingWindows{timeDifference=%v, grace=%v}", w.TimeDifference(), w.Grace())
}
