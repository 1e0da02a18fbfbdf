package window

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/eddystream/eddy/serde"
)

// timestampSize is the length of one window bound in the serialized forms:
// an int64 of milliseconds, 8 bytes big-endian, as Java's ByteBuffer.putLong.
const timestampSize = 8

type timeWindowedSerde[K any] struct {
	inner  serde.Serde[K]
	sizeMs int64
}

// TimeWindowedSerde returns the serde of time-windowed keys with the byte
// layout of Kafka Streams' TimeWindowedSerializer and
// TimeWindowedDeserializer (WindowKeySchema.toBinary), so that eddy reads
// and writes the windowed topics of Kafka Streams applications: the inner
// serde's key bytes, then the window start as 8 bytes big-endian
// milliseconds. The end is not written; Deserialize computes it as start
// plus size, capped to math.MaxInt64 as Kafka Streams does, so size must be
// the size of the windows that wrote the topic (TimeWindows.Size, or the
// time difference of SlidingWindows). It must be a positive whole number
// of milliseconds; otherwise the error wraps ErrInvalidWindow.
//
// Serialize writes the window's start whatever its kind. Deserialize
// returns the zero Windowed for nil or empty data (Kafka Streams returns
// null for both), and an *serde.Error for data shorter than 8 bytes, a
// negative start, or key bytes the inner serde refuses. The inner serde
// gets the key bytes as a non-nil slice it may keep.
//
// Kafka Streams' TimeWindowedSerde also has a changelog mode
// (forChangelog), for the store-key layout with a sequence number; this
// serde has the topic layout only.
func TimeWindowedSerde[K any](inner serde.Serde[K], size time.Duration) (serde.Serde[Windowed[K]], error) {
	if size <= 0 || size%time.Millisecond != 0 {
		return nil, fmt.Errorf("%w: time-windowed serde: window size %v must be a positive whole number of milliseconds; pass the size of the windows that wrote the topic", ErrInvalidWindow, size)
	}
	return timeWindowedSerde[K]{inner: inner, sizeMs: size.Milliseconds()}, nil
}

func (s timeWindowedSerde[K]) Serialize(topic string, v Windowed[K]) ([]byte, error) {
	key, err := s.inner.Serialize(topic, v.Key)
	if err != nil {
		return nil, &serde.Error{Serde: "time-windowed", Topic: topic, Err: fmt.Errorf("key: %w", err)}
	}
	b := make([]byte, 0, len(key)+timestampSize)
	b = append(b, key...)
	return binary.BigEndian.AppendUint64(b, uint64(v.Window.startMs)), nil
}

func (s timeWindowedSerde[K]) Deserialize(topic string, b []byte) (Windowed[K], error) {
	if len(b) == 0 {
		return Windowed[K]{}, nil // null, or empty: Kafka Streams reads both as null
	}
	fail := func(err error) (Windowed[K], error) {
		return Windowed[K]{}, &serde.Error{Serde: "time-windowed", Topic: topic, Err: err}
	}
	if len(b) < timestampSize {
		return fail(fmt.Errorf("want at least %d bytes (the key, then the window start), got %d (is the topic written with a TimeWindowedSerializer?)", timestampSize, len(b)))
	}
	n := len(b) - timestampSize
	start := int64(binary.BigEndian.Uint64(b[n:]))
	w, err := NewTimeWindow(start, capAdd(start, s.sizeMs))
	if err != nil {
		return fail(err)
	}
	key, err := s.inner.Deserialize(topic, b[:n:n])
	if err != nil {
		return fail(fmt.Errorf("key: %w", err))
	}
	return Windowed[K]{Key: key, Window: w}, nil
}

type sessionWindowedSerde[K any] struct {
	inner serde.Serde[K]
}

// SessionWindowedSerde returns the serde of session-windowed keys with the
// byte layout of Kafka Streams' SessionWindowedSerializer and
// SessionWindowedDeserializer (SessionKeySchema.toBinary): the inner
// serde's key bytes, then the window end, then the window start, each as 8
// bytes big-endian milliseconds. The end comes first because Kafka
// Streams' session stores use the same layout and search by end.
//
// Serialize writes the window's bounds whatever its kind; Deserialize
// returns session windows (KindSession). Deserialize returns the zero
// Windowed for nil or empty data (Kafka Streams returns null for both),
// and an *serde.Error for data shorter than 16 bytes, bounds no session
// window can have (a negative start, an end before the start), or key
// bytes the inner serde refuses. The inner serde gets the key bytes as a
// non-nil slice it may keep.
func SessionWindowedSerde[K any](inner serde.Serde[K]) serde.Serde[Windowed[K]] {
	return sessionWindowedSerde[K]{inner: inner}
}

func (s sessionWindowedSerde[K]) Serialize(topic string, v Windowed[K]) ([]byte, error) {
	key, err := s.inner.Serialize(topic, v.Key)
	if err != nil {
		return nil, &serde.Error{Serde: "session-windowed", Topic: topic, Err: fmt.Errorf("key: %w", err)}
	}
	b := make([]byte, 0, len(key)+2*timestampSize)
	b = append(b, key...)
	b = binary.BigEndian.AppendUint64(b, uint64(v.Window.endMs))
	return binary.BigEndian.AppendUint64(b, uint64(v.Window.startMs)), nil
}

func (s sessionWindowedSerde[K]) Deserialize(topic string, b []byte) (Windowed[K], error) {
	if len(b) == 0 {
		return Windowed[K]{}, nil // null, or empty: Kafka Streams reads both as null
	}
	fail := func(err error) (Windowed[K], error) {
		return Windowed[K]{}, &serde.Error{Serde: "session-windowed", Topic: topic, Err: err}
	}
	if len(b) < 2*timestampSize {
		return fail(fmt.Errorf("want at least %d bytes (the key, then the window end and start), got %d (is the topic written with a SessionWindowedSerializer?)", 2*timestampSize, len(b)))
	}
	n := len(b) - 2*timestampSize
	end := int64(binary.BigEndian.Uint64(b[n:]))
	start := int64(binary.BigEndian.Uint64(b[n+timestampSize:]))
	w, err := NewSessionWindow(start, end)
	if err != nil {
		return fail(err)
	}
	key, err := s.inner.Deserialize(topic, b[:n:n])
	if err != nil {
		return fail(fmt.Errorf("key: %w", err))
	}
	return Windowed[K]{Key: key, Window: w}, nil
}
