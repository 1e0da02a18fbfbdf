package window

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// ErrInvalidWindow is wrapped by the errors of NewTimeWindow,
// NewSessionWindow, NewTimeWindowOfSize and TimeWindowedSerde (a window
// size that is not a positive whole number of milliseconds), and by the
// Deserialize errors of the windowed serdes when the bytes hold bounds no
// window can have.
var ErrInvalidWindow = errors.New("window: invalid window bounds")

// Kind says which rules a Window's bounds follow. Kafka Streams models
// the kinds as classes (TimeWindow, SessionWindow); here a Window carries
// its kind, and two windows are equal only if their kinds are.
type Kind uint8

const (
	// KindNone is the kind of the zero Window, which is no window at all
	// (the zero Windowed a serde returns for a Kafka null has it).
	KindNone Kind = iota
	// KindTime is a window of TimeWindows or SlidingWindows, as Kafka
	// Streams' TimeWindow: half-open, start inclusive and end exclusive,
	// [start, end), and never empty (end > start).
	KindTime
	// KindSession is a session window, as Kafka Streams' SessionWindow:
	// closed, both bounds inclusive, [start, end], so a session of one
	// record has start == end.
	KindSession
)

// String returns "none", "time" or "session".
func (k Kind) String() string {
	switch k {
	case KindNone:
		return "none"
	case KindTime:
		return "time"
	case KindSession:
		return "session"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Window is one window instance: a kind and two bounds in whole
// milliseconds since the Unix epoch, the unit of Kafka timestamps and of
// Kafka Streams' windows. The bounds are kept as milliseconds, not as
// time.Time, so that windows compare exactly with == and serve as map keys
// (Windowed[K] does too when K is comparable); Start and End give them as
// time.Time.
//
// The zero Window has KindNone. Build others with NewTimeWindow,
// NewTimeWindowOfSize, NewSessionWindow, or get them from the window
// definitions and the windowed serdes; each checks the bounds as Kafka
// Streams' Window constructors do.
type Window struct {
	kind           Kind
	startMs, endMs int64
}

// NewTimeWindow returns the time window [startMs, endMs). As Kafka Streams'
// TimeWindow, it requires startMs >= 0 and endMs > startMs; otherwise the
// error wraps ErrInvalidWindow.
func NewTimeWindow(startMs, endMs int64) (Window, error) {
	if startMs < 0 {
		return Window{}, fmt.Errorf("%w: time window start %d is negative; windows start at or after the epoch", ErrInvalidWindow, startMs)
	}
	if endMs <= startMs {
		return Window{}, fmt.Errorf("%w: time window [%d,%d) is empty; its end must be after its start", ErrInvalidWindow, startMs, endMs)
	}
	return Window{kind: KindTime, startMs: startMs, endMs: endMs}, nil
}

// NewTimeWindowOfSize returns the time window that starts at startMs and
// lasts size, the window a time-windowed key holding only its start stands
// for. As Kafka Streams (WindowKeySchema.timeWindowForSize), an end past
// the largest int64 millisecond is capped to math.MaxInt64. It requires
// startMs >= 0 and a size of at least one millisecond, in whole
// milliseconds; otherwise the error wraps ErrInvalidWindow.
func NewTimeWindowOfSize(startMs int64, size time.Duration) (Window, error) {
	if size <= 0 || size%time.Millisecond != 0 {
		return Window{}, fmt.Errorf("%w: time window size %v must be a positive whole number of milliseconds", ErrInvalidWindow, size)
	}
	return NewTimeWindow(startMs, capAdd(startMs, size.Milliseconds()))
}

// NewSessionWindow returns the session window [startMs, endMs]. As Kafka
// Streams' SessionWindow, it requires startMs >= 0 and endMs >= startMs;
// otherwise the error wraps ErrInvalidWindow.
func NewSessionWindow(startMs, endMs int64) (Window, error) {
	if startMs < 0 {
		return Window{}, fmt.Errorf("%w: session window start %d is negative; windows start at or after the epoch", ErrInvalidWindow, startMs)
	}
	if endMs < startMs {
		return Window{}, fmt.Errorf("%w: session window [%d,%d] ends before it starts", ErrInvalidWindow, startMs, endMs)
	}
	return Window{kind: KindSession, startMs: startMs, endMs: endMs}, nil
}

// Kind returns the window's kind.
func (w Window) Kind() Kind { return w.kind }

// StartMs returns the start in milliseconds since the epoch (inclusive).
func (w Window) StartMs() int64 { return w.startMs }

// EndMs returns the end in milliseconds since the epoch: exclusive for a
// time window, inclusive for a session window. A time window whose end
// would pass the largest int64 has math.MaxInt64.
func (w Window) EndMs() int64 { return w.endMs }

// Start returns the start as a time in UTC.
func (w Window) Start() time.Time { return time.UnixMilli(w.startMs).UTC() }

// End returns the end as a time in UTC (see EndMs).
func (w Window) End() time.Time { return time.UnixMilli(w.endMs).UTC() }

// Overlaps reports whether w and o share an instant, by the rule of their
// kind, as Kafka Streams' Window.overlap: time windows are half-open, so
// [0,5) and [5,10) do not overlap; session windows are closed, so [0,5] and
// [5,10] do. Comparing windows of different kinds, or a zero Window, is a
// programming error and panics, as Kafka Streams throws.
func (w Window) Overlaps(o Window) bool {
	if w.kind != o.kind || w.kind == KindNone {
		panic(fmt.Sprintf("window: Overlaps of a %v window and a %v window; compare windows of one kind", w.kind, o.kind))
	}
	if w.kind == KindTime {
		return w.startMs < o.endMs && o.startMs < w.endMs
	}
	return o.endMs >= w.startMs && w.endMs >= o.startMs
}

// String returns the bounds in milliseconds with the kind's brackets:
// "[0,300000)" for a time window, "[10,20]" for a session window, and
// "[none]" for the zero Window.
func (w Window) String() string {
	switch w.kind {
	case KindTime:
		return fmt.Sprintf("[%d,%d)", w.startMs, w.endMs)
	case KindSession:
		return fmt.Sprintf("[%d,%d]", w.startMs, w.endMs)
	}
	return "[none]"
}

// Windowed is the key of a windowed aggregation's result: the record key
// and the window its aggregate covers, as Kafka Streams' Windowed<K>. The
// windowed serdes of this package give it Kafka Streams' byte layouts.
type Windowed[K any] struct {
	Key    K
	Window Window
}

// String returns "[key@start/end]" with the bounds in milliseconds, as
// Kafka Streams' Windowed.toString.
func (w Windowed[K]) String() string {
	return fmt.Sprintf("[%v@%d/%d]", w.Key, w.Window.startMs, w.Window.endMs)
}

// capAdd returns a+b for b >= 0, or math.MaxInt64 if the sum overflows:
// Kafka Streams caps window ends at Long.MAX_VALUE.
func capAdd(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}
