// Package window owns the windows of eddy's windowed operations: the
// window definitions (TimeWindows, SlidingWindows, SessionWindows,
// JoinWindows), the window instances they produce (Window), the key of a
// windowed result (Windowed[K]), and the serdes that give windowed keys
// Kafka Streams' byte layouts (TimeWindowedSerde, SessionWindowedSerde).
// Windowed aggregations, stream-stream joins, suppression and the window
// and session stores build on it; it does no I/O and reads no clock.
//
// # Semantics
//
// Everything here follows Kafka Streams 4.x (the classes of
// org.apache.kafka.streams.kstream named on each definition). Window time
// is counted in whole milliseconds since the Unix epoch, as Kafka
// timestamps and Kafka Streams' windows are: a record's time.Time is taken
// as ts.UnixMilli(), and window bounds are int64 milliseconds (StartMs,
// EndMs; Start and End give them as time.Time). Windows start at or after
// the epoch.
//
// A Window has a Kind with its own rules, as Kafka Streams' window classes
// do: a time window (TimeWindows, SlidingWindows) is half-open,
// [start, end), and a session window is closed, [start, end]. Overlaps
// follows the kind.
//
// Grace periods, which Kafka Streams 4.x requires be chosen (the
// ...WithNoGrace constructors set zero), keep a window open for
// out-of-order records for that long after its end, in stream time. Each
// definition's Retention is the default retention Kafka Streams gives its
// stores: size plus grace for time windows, twice the time difference plus
// grace for sliding windows, inactivity gap plus grace for sessions, and
// before plus after plus grace for joins.
//
// # Where eddy differs from Kafka Streams
//
//   - Durations must be whole milliseconds. Kafka Streams truncates a finer
//     java.time.Duration; eddy returns an error wrapping
//     ErrInvalidDefinition, so that a mistyped unit is not silently a
//     different window.
//   - Invalid definitions are errors wrapping ErrInvalidDefinition, and
//     invalid window bounds errors wrapping ErrInvalidWindow, where Kafka
//     Streams throws IllegalArgumentException. Comparing windows of two
//     kinds with Overlaps panics, where Kafka Streams throws.
//   - TimeWindows.WindowsFor caps a window end past the largest int64
//     millisecond to math.MaxInt64, as Kafka Streams' deserializers do,
//     where Kafka Streams' windowsFor fails; such timestamps lie about 292
//     million years ahead.
//   - The deprecated Kafka Streams constructors (TimeWindows.of, grace(),
//     JoinWindows.of with its 24-hour default grace) and UnlimitedWindows
//     have no counterpart.
//
// # Serdes and null
//
// Package serde keeps Kafka nulls away from serdes (see its Null section).
// Called directly, the windowed serdes return the zero Windowed, with a
// Window of KindNone, for nil data, and for empty data too, which Kafka
// Streams' windowed deserializers also read as null.
package window
