package window

import (
	"fmt"
	"time"
)

// SessionWindows defines session windows, as Kafka Streams'
// SessionWindows: a session is a period of activity of a key, closed by an
// inactivity gap. A record within the gap of a session of its key (see
// Merges) joins it, and a record within the gap of two sessions merges them
// into one; otherwise it starts a session of its own, [t, t]. Sessions are
// session windows (KindSession): both bounds inclusive.
//
// A session accepts records until stream time passes its end plus the
// inactivity gap plus the grace period.
//
// Build one with SessionWindowsOfInactivityGapWithNoGrace or
// SessionWindowsOfInactivityGapAndGrace. The zero value is not a valid
// definition. SessionWindows is a comparable value.
type SessionWindows struct {
	gapMs, graceMs int64
}

// SessionWindowsOfInactivityGapWithNoGrace returns session windows with the
// given inactivity gap and a grace period of zero, as Kafka Streams'
// SessionWindows.ofInactivityGapWithNoGrace.
func SessionWindowsOfInactivityGapWithNoGrace(inactivityGap time.Duration) (SessionWindows, error) {
	return SessionWindowsOfInactivityGapAndGrace(inactivityGap, 0)
}

// SessionWindowsOfInactivityGapAndGrace returns session windows with the
// given inactivity gap and grace period, as Kafka Streams'
// SessionWindows.ofInactivityGapAndGrace. The gap must be positive and
// grace not negative, both whole milliseconds, and gap+grace must fit in
// a time.Duration; otherwise the error wraps ErrInvalidDefinition.
func SessionWindowsOfInactivityGapAndGrace(inactivityGap, grace time.Duration) (SessionWindows, error) {
	const def = "session windows"
	gapMs, err := millis(def, "inactivity gap", inactivityGap)
	if err != nil {
		return SessionWindows{}, err
	}
	graceMs, err := millis(def, "grace", grace)
	if err != nil {
		return SessionWindows{}, err
	}
	if gapMs <= 0 {
		return SessionWindows{}, fmt.Errorf("%w: %s: inactivity gap must be positive, got %v", ErrInvalidDefinition, def, inactivityGap)
	}
	if err := nonNegative(def, "grace", graceMs); err != nil {
		return SessionWindows{}, err
	}
	if err := fitsDuration(def, "inactivity gap plus grace", gapMs+graceMs); err != nil {
		return SessionWindows{}, err
	}
	return SessionWindows{gapMs: gapMs, graceMs: graceMs}, nil
}

// InactivityGap returns the gap of inactivity that closes a session.
func (w SessionWindows) InactivityGap() time.Duration { return msDuration(w.gapMs) }

// Grace returns the grace period: how long after a session's end plus the
// inactivity gap, in stream time, it still accepts records.
func (w SessionWindows) Grace() time.Duration { return msDuration(w.graceMs) }

// Retention returns how long a session store must keep a session past its
// end: inactivity gap plus grace, the default retention of Kafka Streams'
// SessionStoreMaterializer (which also refuses a shorter one).
func (w SessionWindows) Retention() time.Duration { return msDuration(w.gapMs + w.graceMs) }

// Merges reports whether a record at ts belongs to session, the rule of
// Kafka Streams' KStreamSessionWindowAggregate (which asks its store for
// the sessions that end at or after ts-gap and start at or before ts+gap):
// session.StartMs()-gap <= ts <= session.EndMs()+gap, ts in whole
// milliseconds since the epoch. The merged session is then the smallest
// session window that holds ts and every session it merges with.
func (w SessionWindows) Merges(session Window, ts time.Time) bool {
	t := ts.UnixMilli()
	// Written as differences so that no bound overflows: session bounds
	// are >= 0 and the gap is at most maxDurationMs.
	return t-w.gapMs <= session.endMs && session.startMs-w.gapMs <= t
}

// String returns the definition, e.g. "SessionWindows{inactivityGap=5m0s, grace=0s}".
func (w SessionWindows) String() string {
	return fmt.Sprintf("SessionWindows{inactivityGap=%v, grace=%v}", w.InactivityGap(), w.Grace())
}
