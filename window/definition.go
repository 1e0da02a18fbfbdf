package window

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// ErrInvalidDefinition is wrapped by every error of the constructors and
// setters of TimeWindows, SlidingWindows, SessionWindows and JoinWindows
// (where Kafka Streams throws IllegalArgumentException). The message says
// which setting is wrong and why.
var ErrInvalidDefinition = errors.New("window: invalid window definition")

// millis returns d in milliseconds. Kafka Streams counts window time in
// whole milliseconds and truncates a finer Duration; eddy refuses one
// instead, so that a size of 1500µs is not quietly a size of 1ms.
func millis(def, name string, d time.Duration) (int64, error) {
	if d%time.Millisecond != 0 {
		return 0, fmt.Errorf("%w: %s: %s %v is not a whole number of milliseconds; window time is counted in milliseconds, as Kafka timestamps are", ErrInvalidDefinition, def, name, d)
	}
	return d.Milliseconds(), nil
}

// nonNegative checks a duration that Kafka Streams requires to be >= 0
// (grace periods, sliding time differences).
func nonNegative(def, name string, ms int64) error {
	if ms < 0 {
		return fmt.Errorf("%w: %s: %s must not be negative, got %v", ErrInvalidDefinition, def, name, msDuration(ms))
	}
	return nil
}

// maxDurationMs is the largest millisecond count a time.Duration holds.
const maxDurationMs = math.MaxInt64 / int64(time.Millisecond)

// fitsDuration checks that a sum of milliseconds (a retention) can be
// returned as a time.Duration; each term is at most maxDurationMs, so the
// int64 sum itself cannot overflow.
func fitsDuration(def, what string, ms int64) error {
	if ms > maxDurationMs {
		return fmt.Errorf("%w: %s: %s is %dms, more than a time.Duration holds (about 292 years); use a shorter size or grace", ErrInvalidDefinition, def, what, ms)
	}
	return nil
}

func msDuration(ms int64) time.Duration { return time.Duration(ms) * time.Millisecond }
