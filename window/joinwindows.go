package window

import (
	"fmt"
	"time"
)

// JoinWindows defines the window of a stream-stream join, as Kafka Streams'
// JoinWindows: a record of one stream at t joins the records of the other
// stream with the same key and a timestamp in [t-before, t+after] (both
// inclusive). Seen from the other stream the bounds are flipped, so the
// join is symmetric. Before and after are each the time difference unless
// changed with Before or After; either may be negative as long as their
// sum is not.
//
// The grace period is how long, in stream time past the end of a record's
// window, a left or outer join waits for a partner before it emits the
// record without one (Kafka Streams' behaviour for JoinWindows built with
// the non-deprecated constructors, the only ones eddy has); the join's
// window stores keep records for Size plus Grace (see Retention).
//
// Build one with JoinWindowsOfTimeDifferenceWithNoGrace or
// JoinWindowsOfTimeDifferenceAndGrace. The zero value is a valid
// definition that joins records with equal timestamps only and has no
// grace. JoinWindows is a comparable value.
type JoinWindows struct {
	beforeMs, afterMs, graceMs int64
}

// JoinWindowsOfTimeDifferenceWithNoGrace returns join windows that join
// records at most timeDifference apart, with a grace period of zero, as
// Kafka Streams' JoinWindows.ofTimeDifferenceWithNoGrace.
func JoinWindowsOfTimeDifferenceWithNoGrace(timeDifference time.Duration) (JoinWindows, error) {
	return JoinWindowsOfTimeDifferenceAndGrace(timeDifference, 0)
}

// JoinWindowsOfTimeDifferenceAndGrace returns join windows that join
// records at most timeDifference apart, either way, with the given grace
// period, as Kafka Streams' JoinWindows.ofTimeDifferenceAndGrace. Both must
// be non-negative whole milliseconds, and 2*timeDifference+grace must fit
// in a time.Duration; otherwise the error wraps ErrInvalidDefinition.
func JoinWindowsOfTimeDifferenceAndGrace(timeDifference, grace time.Duration) (JoinWindows, error) {
	const def = "join windows"
	diffMs, err := millis(def, "time difference", timeDifference)
	if err != nil {
		return JoinWindows{}, err
	}
	graceMs, err := millis(def, "grace", grace)
	if err != nil {
		return JoinWindows{}, err
	}
	return newJoinWindows(diffMs, diffMs, graceMs)
}

// Before returns w with the lower bound changed: records of the other
// stream join if they are at most timeDifference earlier, as Kafka Streams'
// JoinWindows.before. timeDifference may be negative (the window then
// starts after the record), but before+after must not be; it must be whole
// milliseconds. Otherwise the error wraps ErrInvalidDefinition.
func (w JoinWindows) Before(timeDifference time.Duration) (JoinWindows, error) {
	ms, err := millis("join windows", "before", timeDifference)
	if err != nil {
		return JoinWindows{}, err
	}
	return newJoinWindows(ms, w.afterMs, w.graceMs)
}

// After returns w with the upper bound changed: records of the other
// stream join if they are at most timeDifference later, as Kafka Streams'
// JoinWindows.after. timeDifference may be negative (the window then ends
// before the record), but before+after must not be; it must be whole
// milliseconds. Otherwise the error wraps ErrInvalidDefinition.
func (w JoinWindows) After(timeDifference time.Duration) (JoinWindows, error) {
	ms, err := millis("join windows", "after", timeDifference)
	if err != nil {
		return JoinWindows{}, err
	}
	return newJoinWindows(w.beforeMs, ms, w.graceMs)
}

func newJoinWindows(beforeMs, afterMs, graceMs int64) (JoinWindows, error) {
	const def = "join windows"
	if beforeMs+afterMs < 0 {
		return JoinWindows{}, fmt.Errorf("%w: %s: before %v plus after %v must not be negative (the window would end before it starts)", ErrInvalidDefinition, def, msDuration(beforeMs), msDuration(afterMs))
	}
	if err := nonNegative(def, "grace", graceMs); err != nil {
		return JoinWindows{}, err
	}
	if err := fitsDuration(def, "before plus after plus grace", beforeMs+afterMs+graceMs); err != nil {
		return JoinWindows{}, err
	}
	return JoinWindows{beforeMs: beforeMs, afterMs: afterMs, graceMs: graceMs}, nil
}

// BeforeAfter returns the window's bounds relative to a record of this
// stream at t: it joins records of the other stream in
// [t-before, t+after].
func (w JoinWindows) BeforeAfter() (before, after time.Duration) {
	return msDuration(w.beforeMs), msDuration(w.afterMs)
}

// Size returns before plus after, Kafka Streams' JoinWindows.size(): the
// window size of the join's window stores.
func (w JoinWindows) Size() time.Duration { return msDuration(w.beforeMs + w.afterMs) }

// Grace returns the grace period (see JoinWindows).
func (w JoinWindows) Grace() time.Duration { return msDuration(w.graceMs) }

// Retention returns how long the join's window stores must keep a record:
// size plus grace, as Kafka Streams' KStreamImplJoin sets it (and requires
// of user-supplied stores).
func (w JoinWindows) Retention() time.Duration { return msDuration(w.beforeMs + w.afterMs + w.graceMs) }

// String returns the definition, e.g. "JoinWindows{before=5s, after=5s, grace=0s}".
func (w JoinWindows) String() string {
	return fmt.Sprintf("JoinWindows{before=%v, after=%v, grace=%v}", msDuration(w.beforeMs), msDuration(w.afterMs), w.Grace())
}
