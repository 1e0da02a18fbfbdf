package window

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/eddystream/eddy/serde"
)

func mustTimeSerde[K any](t testing.TB, inner serde.Serde[K], size time.Duration) serde.Serde[Windowed[K]] {
	t.Helper()
	s, err := TimeWindowedSerde(inner, size)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The fixtures are derived by hand from Kafka Streams' WindowKeySchema.toBinary:
// the inner serializer's bytes, then ByteBuffer.putLong(window.start()), which
// writes 8 bytes big-endian.
func TestTimeWindowedSerdeMatchesWindowKeySchema(t *testing.T) {
	str := mustTimeSerde(t, serde.String(), 5*time.Minute)
	long := mustTimeSerde(t, serde.Int64(), time.Hour)
	for _, tc := range []struct {
		name  string
		got   func() ([]byte, error)
		want  []byte
		check func() (Windowed[any], error)
		wantW Windowed[any]
	}{
		{
			// "A" is 0x41 (StringSerializer, UTF-8); 300000 = 0x0493E0.
			name: "string key, window [5m,10m)",
			got: func() ([]byte, error) {
				return str.Serialize("t", Windowed[string]{Key: "A", Window: mustTime(t, 300000, 600000)})
			},
			want: []byte{0x41, 0, 0, 0, 0, 0, 0x04, 0x93, 0xe0},
			check: func() (Windowed[any], error) {
				return anyKey(str.Deserialize("t", []byte{0x41, 0, 0, 0, 0, 0, 0x04, 0x93, 0xe0}))
			},
			wantW: Windowed[any]{Key: "A", Window: mustTime(t, 300000, 600000)},
		},
		{
			// The empty string serializes to no bytes: the 8 bytes of start 0 alone.
			name: "empty string key at the epoch",
			got: func() ([]byte, error) {
				return str.Serialize("t", Windowed[string]{Key: "", Window: mustTime(t, 0, 300000)})
			},
			want:  []byte{0, 0, 0, 0, 0, 0, 0, 0},
			check: func() (Windowed[any], error) { return anyKey(str.Deserialize("t", []byte{0, 0, 0, 0, 0, 0, 0, 0})) },
			wantW: Windowed[any]{Key: "", Window: mustTime(t, 0, 300000)},
		},
		{
			// LongSerializer writes 7 as 8 bytes big-endian; 1700000000000 = 0x018BCFE56800.
			name: "int64 key, window of an hour",
			got: func() ([]byte, error) {
				return long.Serialize("t", Windowed[int64]{Key: 7, Window: mustTime(t, 1700000000000, 1700003600000)})
			},
			want: []byte{0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00},
			check: func() (Windowed[any], error) {
				return anyKey(long.Deserialize("t", []byte{0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00}))
			},
			wantW: Windowed[any]{Key: int64(7), Window: mustTime(t, 1700000000000, 1700003600000)},
		},
		{
			// Start MaxInt64-1 with a size of an hour: the end is capped to
			// Long.MAX_VALUE (WindowKeySchema.timeWindowForSize).
			name: "end capped",
			got: func() ([]byte, error) {
				return str.Serialize("t", Windowed[string]{Key: "A", Window: mustTime(t, math.MaxInt64-1, math.MaxInt64)})
			},
			want: []byte{0x41, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe},
			check: func() (Windowed[any], error) {
				return anyKey(str.Deserialize("t", []byte{0x41, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe}))
			},
			wantW: Windowed[any]{Key: "A", Window: mustTime(t, math.MaxInt64-1, math.MaxInt64)},
		},
	} {
		b, err := tc.got()
		if err != nil || !bytes.Equal(b, tc.want) {
			t.Errorf("%s: Serialize = %x, %v; want %x", tc.name, b, err, tc.want)
		}
		w, err := tc.check()
		if err != nil || w != tc.wantW {
			t.Errorf("%s: Deserialize = %v, %v; want %v", tc.name, w, err, tc.wantW)
		}
	}
}

func anyKey[K any](w Windowed[K], err error) (Windowed[any], error) {
	return Windowed[any]{Key: w.Key, Window: w.Window}, err
}

// The fixtures are derived by hand from Kafka Streams'
// SessionKeySchema.toBinary: the inner serializer's bytes, then
// putLong(window.end()), then putLong(window.start()); end before start.
func TestSessionWindowedSerdeMatchesSessionKeySchema(t *testing.T) {
	s := SessionWindowedSerde(serde.String())
	for _, tc := range []struct {
		w    Windowed[string]
		want []byte
	}{
		// SessionWindows' javadoc example: key A, session [10,12]; 12 = 0x0c, 10 = 0x0a.
		{Windowed[string]{Key: "A", Window: mustSession(t, 10, 12)}, []byte{0x41, 0, 0, 0, 0, 0, 0, 0, 0x0c, 0, 0, 0, 0, 0, 0, 0, 0x0a}},
		// A session of one record: end == start.
		{Windowed[string]{Key: "A", Window: mustSession(t, 20, 20)}, []byte{0x41, 0, 0, 0, 0, 0, 0, 0, 0x14, 0, 0, 0, 0, 0, 0, 0, 0x14}},
		// "key" is 6b 65 79; end 1700000000000 = 0x018BCFE56800, start 1699999999999 = 0x018BCFE567FF.
		{Windowed[string]{Key: "key", Window: mustSession(t, 1699999999999, 1700000000000)}, []byte{0x6b, 0x65, 0x79, 0, 0, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00, 0, 0, 0x01, 0x8b, 0xcf, 0xe5, 0x67, 0xff}},
		// The empty key: the bounds alone.
		{Windowed[string]{Key: "", Window: mustSession(t, 0, math.MaxInt64)}, []byte{0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0}},
	} {
		b, err := s.Serialize("t", tc.w)
		if err != nil || !bytes.Equal(b, tc.want) {
			t.Errorf("Serialize(%v) = %x, %v; want %x", tc.w, b, err, tc.want)
		}
		w, err := s.Deserialize("t", tc.want)
		if err != nil || w != tc.w {
			t.Errorf("Deserialize(%x) = %v, %v; want %v", tc.want, w, err, tc.w)
		}
	}
}

func TestWindowedSerdesRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const size = 10 * time.Second
	ts := mustTimeSerde(t, serde.Int64(), size)
	ss := SessionWindowedSerde(serde.Int64())
	for range 1000 {
		key := rng.Int64()
		start := rng.Int64N(math.MaxInt64 - size.Milliseconds())
		tw := Windowed[int64]{Key: key, Window: mustTime(t, start, start+size.Milliseconds())}
		b, err := ts.Serialize("t", tw)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := ts.Deserialize("t", b); err != nil || got != tw {
			t.Fatalf("time-windowed round trip of %v = %v, %v", tw, got, err)
		}
		sw := Windowed[int64]{Key: key, Window: mustSession(t, start, start+rng.Int64N(math.MaxInt64-start))}
		if b, err = ss.Serialize("t", sw); err != nil {
			t.Fatal(err)
		}
		if got, err := ss.Deserialize("t", b); err != nil || got != sw {
			t.Fatalf("session-windowed round trip of %v = %v, %v", sw, got, err)
		}
	}
}

func TestWindowedSerdesReadNullAndEmptyAsZero(t *testing.T) {
	ts := mustTimeSerde(t, serde.String(), time.Second)
	ss := SessionWindowedSerde(serde.String())
	for _, b := range [][]byte{nil, {}} {
		if w, err := ts.Deserialize("t", b); err != nil || w != (Windowed[string]{}) {
			t.Errorf("time-windowed Deserialize(%#v) = %v, %v; want the zero Windowed", b, w, err)
		}
		if w, err := ss.Deserialize("t", b); err != nil || w != (Windowed[string]{}) {
			t.Errorf("session-windowed Deserialize(%#v) = %v, %v; want the zero Windowed", b, w, err)
		}
	}
}

func TestWindowedSerdesRejectShortInput(t *testing.T) {
	ts := mustTimeSerde(t, serde.Bytes(), time.Second)
	ss := SessionWindowedSerde(serde.Bytes())
	for n := 1; n < 16; n++ {
		b := make([]byte, n)
		if n < 8 {
			_, err := ts.Deserialize("clicks", b)
			assertSerdeError(t, err, "time-windowed", "want at least 8 bytes")
		}
		_, err := ss.Deserialize("clicks", b)
		assertSerdeError(t, err, "session-windowed", "want at least 16 bytes")
	}
}

func assertSerdeError(t *testing.T, err error, name, text string) {
	t.Helper()
	var se *serde.Error
	if !errors.As(err, &se) || se.Serde != name || se.Topic != "clicks" || !strings.Contains(err.Error(), text) {
		t.Fatalf("error %v: want a *serde.Error of %s for topic clicks saying %q", err, name, text)
	}
}

func TestWindowedSerdesRejectImpossibleBounds(t *testing.T) {
	ts := mustTimeSerde(t, serde.Bytes(), time.Second)
	ss := SessionWindowedSerde(serde.Bytes())
	neg := binary.BigEndian.AppendUint64([]byte("k"), uint64(math.MaxUint64)) // start -1
	if _, err := ts.Deserialize("clicks", neg); !errors.Is(err, ErrInvalidWindow) {
		t.Errorf("time-windowed, start -1: error %v does not wrap ErrInvalidWindow", err)
	} else {
		assertSerdeError(t, err, "time-windowed", "negative")
	}
	// Start MaxInt64 with any size: the capped end equals the start, an empty window.
	if _, err := ts.Deserialize("clicks", binary.BigEndian.AppendUint64(nil, math.MaxInt64)); !errors.Is(err, ErrInvalidWindow) {
		t.Errorf("time-windowed, start MaxInt64: error %v does not wrap ErrInvalidWindow", err)
	}
	for name, b := range map[string][]byte{
		"end before start": binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64([]byte("k"), 4), 5),
		"negative start":   binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64([]byte("k"), 4), uint64(math.MaxUint64)),
	} {
		if _, err := ss.Deserialize("clicks", b); !errors.Is(err, ErrInvalidWindow) {
			t.Errorf("session-windowed, %s: error %v does not wrap ErrInvalidWindow", name, err)
		} else {
			assertSerdeError(t, err, "session-windowed", "session window")
		}
	}
}

func TestWindowedSerdesWrapInnerErrors(t *testing.T) {
	// An int64 key of 3 bytes: the inner LongDeserializer refuses it.
	b := binary.BigEndian.AppendUint64([]byte{1, 2, 3}, 0)
	_, err := mustTimeSerde(t, serde.Int64(), time.Second).Deserialize("clicks", b)
	assertSerdeError(t, err, "time-windowed", "key: serde int64")
	_, err = SessionWindowedSerde(serde.Int64()).Deserialize("clicks", binary.BigEndian.AppendUint64(b, 0))
	assertSerdeError(t, err, "session-windowed", "key: serde int64")

	// encoding/json cannot encode a channel.
	w := Windowed[chan int]{Key: make(chan int), Window: mustTime(t, 0, 1)}
	_, err = mustTimeSerde(t, serde.JSON[chan int](), time.Second).Serialize("clicks", w)
	assertSerdeError(t, err, "time-windowed", "key: json")
	_, err = SessionWindowedSerde(serde.JSON[chan int]()).Serialize("clicks", w)
	assertSerdeError(t, err, "session-windowed", "key: json")
}

// The inner serde may keep the key bytes (package serde's contract); an
// append to them must not reach the bytes that follow.
func TestWindowedSerdesHandOverKeysThatCannotGrowIntoTheBounds(t *testing.T) {
	ts := mustTimeSerde(t, serde.Bytes(), time.Second)
	ss := SessionWindowedSerde(serde.Bytes())
	tb := []byte{'k', 0, 0, 0, 0, 0, 0, 0, 9}
	tw, err := ts.Deserialize("t", tb)
	if err != nil {
		t.Fatal(err)
	}
	sb := []byte{'k', 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 1}
	sw, err := ss.Deserialize("t", sb)
	if err != nil {
		t.Fatal(err)
	}
	_ = append(tw.Key, 'x')
	_ = append(sw.Key, 'x')
	if tb[1] != 0 || sb[1] != 0 {
		t.Fatalf("appending to a key changed the serialized bounds: %x %x", tb, sb)
	}
	// An empty key is empty, not null.
	w, err := ss.Deserialize("t", sb[1:])
	if err != nil || w.Key == nil || len(w.Key) != 0 {
		t.Fatalf("empty key = %#v, %v; want a non-nil empty slice", w.Key, err)
	}
}

func TestTimeWindowedSerdeNeedsAWindowSize(t *testing.T) {
	for _, size := range []time.Duration{0, -time.Second, 1500 * time.Microsecond} {
		s, err := TimeWindowedSerde(serde.String(), size)
		if !errors.Is(err, ErrInvalidWindow) || s != nil {
			t.Errorf("TimeWindowedSerde(size %v) = %v, %v; want an error wrapping ErrInvalidWindow", size, s, err)
		}
	}
}

// Whatever Deserialize accepts, Serialize writes back byte for byte (with
// the identity inner serde), and nothing panics.
func FuzzTimeWindowedSerde(f *testing.F) {
	f.Add([]byte{0x41, 0, 0, 0, 0, 0, 0x04, 0x93, 0xe0})
	f.Add([]byte{0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{1, 2, 3})
	s := mustTimeSerde(f, serde.Bytes(), 5*time.Minute)
	f.Fuzz(func(t *testing.T, b []byte) {
		w, err := s.Deserialize("t", b)
		if err != nil || len(b) == 0 {
			return
		}
		if w.Window.EndMs()-w.Window.StartMs() != 300000 && w.Window.EndMs() != math.MaxInt64 {
			t.Fatalf("Deserialize(%x) = %v: not a 5-minute window", b, w)
		}
		got, err := s.Serialize("t", w)
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("Serialize(Deserialize(%x)) = %x, %v", b, got, err)
		}
	})
}

// Whatever Deserialize accepts, Serialize writes back byte for byte (with
// the identity inner serde), and nothing panics.
func FuzzSessionWindowedSerde(f *testing.F) {
	f.Add([]byte{0x41, 0, 0, 0, 0, 0, 0, 0, 0x0c, 0, 0, 0, 0, 0, 0, 0, 0x0a})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0x0c})
	f.Add([]byte{1, 2, 3})
	s := SessionWindowedSerde(serde.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		w, err := s.Deserialize("t", b)
		if err != nil || len(b) == 0 {
			return
		}
		if w.Window.Kind() != KindSession || w.Window.EndMs() < w.Window.StartMs() {
			t.Fatalf("Deserialize(%x) = %v: not a session window", b, w)
		}
		got, err := s.Serialize("t", w)
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("Serialize(Deserialize(%x)) = %x, %v", b, got, err)
		}
	})
}
