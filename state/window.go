package state

import (
	"fmt"
	"time"

	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/window"
)

// WindowStore is a typed store of values per key and time window, as
// Kafka Streams' WindowStore: the store behind windowed aggregations. A
// window is known by its start; every window of one store has the same
// size (WindowStoreConfig.WindowSize), which gives its end.
//
// The store keeps windows for its retention: once it has seen a window
// start T (its stream time), windows that start at or before T -
// retention are gone. Their segments are dropped whole, one range
// deletion each (see the layout in windowkey.go), writes to them are
// ignored, and reads do not return them, as in Kafka Streams.
//
// A store belongs to one task and is used by that task's goroutine only.
type WindowStore[K, V any] interface {
	// Name is the store's name in the topology.
	Name() string
	// Put stores value for key in the window that starts at start. A
	// write to a window past the retention is ignored, and reported so
	// (written false).
	Put(key K, value V, start time.Time) (written bool, err error)
	// Delete removes the window of key that starts at start.
	Delete(key K, start time.Time) error
	// Fetch returns the value of key's window that starts at start.
	Fetch(key K, start time.Time) (value V, ok bool, err error)
	// FetchRange iterates key's windows that start from from to to, both
	// inclusive, in start order.
	FetchRange(key K, from, to time.Time) (WindowIterator[K, V], error)
	// FetchAll iterates every key's windows that start from from to to,
	// both inclusive, by segment, then key, then start.
	FetchAll(from, to time.Time) (WindowIterator[K, V], error)
	// All iterates every window the store keeps.
	All() (WindowIterator[K, V], error)
}

// WindowIterator walks windows of a WindowStore or SessionStore. Call Next
// before the first Key; always Close it.
type WindowIterator[K, V any] interface {
	Next() bool
	Key() window.Windowed[K]
	Value() V
	// Err reports what ended the iteration early: a backend error or a
	// key or value that did not deserialize.
	Err() error
	Close() error
}

// WindowStoreMetadata is implemented by window and session stores: a few
// named values kept with the store's data, logged and restored with it,
// and never expired. The DSL keeps its bookkeeping there, such as the
// last window close time an emit-on-window-close aggregation emitted
// (Kafka Streams keeps it in the processor metadata it commits with the
// input offsets). Check for it with a type assertion.
type WindowStoreMetadata interface {
	// Metadata returns the value stored under key.
	Metadata(key string) (value []byte, ok bool, err error)
	// PutMetadata stores value under key.
	PutMetadata(key string, value []byte) error
}

// WindowStoreConfig is what a window store needs besides its serdes.
type WindowStoreConfig struct {
	// WindowSize is the size of every window (Kafka Streams'
	// windowSize): a window's end is its start plus the size.
	WindowSize time.Duration
	// Retention is how long, in stream time, a window is kept after its
	// start: Kafka Streams' retentionPeriod, the window size plus the
	// grace period for a windowed aggregation. It must be at least the
	// window size. The store's segment interval derives from it (half of
	// it, at least a minute), and its backend keys hold the segment: a
	// store whose retention changes must be reset (eddy reset), as one
	// whose serdes change.
	Retention time.Duration
}

// Window returns the named store of a processor context as a typed window
// store.
func Window[K, V any](ctx StoreGetter, name string) (WindowStore[K, V], error) {
	s, err := ctx.Store(name)
	if err != nil {
		return nil, err
	}
	ws, ok := s.(WindowStore[K, V])
	if !ok {
		return nil, fmt.Errorf("state: store %q is a %T, not a WindowStore[%T, %T]: check the types given where the store was declared", name, s, *new(K), *new(V))
	}
	return ws, nil
}

// NewWindowStore returns a typed window store over raw. topic is passed to
// the serdes (the changelog topic, or the store name for unlogged
// stores).
func NewWindowStore[K, V any](name, topic string, raw RawStore, keys serde.Serde[K], values serde.Serde[V], cfg WindowStoreConfig) (WindowStore[K, V], error) {
	if cfg.WindowSize <= 0 || cfg.WindowSize%time.Millisecond != 0 {
		return nil, fmt.Errorf("state: window store %q: window size %v is not a positive whole number of milliseconds", name, cfg.WindowSize)
	}
	if cfg.Retention < cfg.WindowSize || cfg.Retention%time.Millisecond != 0 {
		return nil, fmt.Errorf("state: window store %q: retention %v must be a whole number of milliseconds, at least the window size %v", name, cfg.Retention, cfg.WindowSize)
	}
	return &windowStore[K, V]{
		segmented: newSegmented(name, raw, cfg.Retention),
		codec:     codec[K, V]{name: name, topic: topic, keys: keys, values: values},
		size:      cfg.WindowSize.Milliseconds(),
	}, nil
}

type windowStore[K, V any] struct {
	segmented
	codec[K, V]
	size int64
}

func (s *windowStore[K, V]) Name() string { return s.store }

// storeKey is the backend key of key's window at start.
func (s *windowStore[K, V]) storeKey(key []byte, start int64) []byte {
	return segmentKey(s.seg.of(start), key, start)
}

func (s *windowStore[K, V]) Put(k K, v V, start time.Time) (bool, error) {
	ms := start.UnixMilli()
	if err := s.observe(ms); err != nil {
		return false, err
	}
	if live, err := s.live(ms); err != nil || !live {
		return false, err
	}
	kb, err := s.key(k)
	if err != nil {
		return false, err
	}
	vb, err := s.value(v)
	if err != nil {
		return false, err
	}
	s.raw.Put(s.storeKey(kb, ms), vb)
	return true, nil
}

func (s *windowStore[K, V]) Delete(k K, start time.Time) error {
	kb, err := s.key(k)
	if err != nil {
		return err
	}
	s.raw.Delete(s.storeKey(kb, start.UnixMilli()))
	return nil
}

func (s *windowStore[K, V]) Fetch(k K, start time.Time) (V, bool, error) {
	var zero V
	ms := start.UnixMilli()
	if live, err := s.live(ms); err != nil || !live {
		return zero, false, err
	}
	kb, err := s.key(k)
	if err != nil {
		return zero, false, err
	}
	vb, ok, err := s.raw.Get(s.storeKey(kb, ms))
	if err != nil || !ok {
		return zero, false, err
	}
	v, err := s.decodeValue(vb)
	if err != nil {
		return zero, false, err
	}
	return v, true, nil
}

func (s *windowStore[K, V]) FetchRange(k K, from, to time.Time) (WindowIterator[K, V], error) {
	kb, err := s.key(k)
	if err != nil {
		return nil, err
	}
	lo, hi, err := s.bounds(from.UnixMilli(), to.UnixMilli())
	if err != nil {
		return nil, err
	}
	return s.iter(lo, hi, func(seg int64) ([]byte, []byte) {
		return segmentKey(seg, kb, lo), segmentKeyEnd(seg, kb)
	}), nil
}

func (s *windowStore[K, V]) FetchAll(from, to time.Time) (WindowIterator[K, V], error) {
	lo, hi, err := s.bounds(from.UnixMilli(), to.UnixMilli())
	if err != nil {
		return nil, err
	}
	return s.iter(lo, hi, nil), nil
}

func (s *windowStore[K, V]) All() (WindowIterator[K, V], error) {
	lo, hi, err := s.bounds(noTime, 1<<63-1)
	if err != nil {
		return nil, err
	}
	return s.iter(lo, hi, nil), nil
}

// bounds clamps a time range to what the store keeps.
func (s *windowStore[K, V]) bounds(from, to int64) (int64, int64, error) {
	from, err := s.clamp(from)
	return from, to, err
}

// iter iterates the windows that start in [lo, hi], segment by segment;
// within returns a segment's range for one key (nil: the whole segment).
func (s *windowStore[K, V]) iter(lo, hi int64, within func(seg int64) ([]byte, []byte)) WindowIterator[K, V] {
	return &segmentIter[K, V]{
		raw: s.raw, seg: s.seg, next: s.seg.of(lo), last: min(s.seg.of(hi), metaSegment-1), within: within,
		decode: func(key []byte, value []byte) (window.Windowed[K], V, bool, error) {
			var wk window.Windowed[K]
			var v V
			raw, rest, err := splitEscaped(key[8:])
			if err != nil || len(rest) != 8 {
				return wk, v, false, fmt.Errorf("state: store %q: %w", s.store, errBadStoreKey)
			}
			start := readTime(rest)
			if start < lo || start > hi {
				return wk, v, false, nil
			}
			k, v, err := s.decode(raw, value)
			if err != nil {
				return wk, v, false, err
			}
			w, err := window.NewTimeWindow(start, capAdd(start, s.size))
			if err != nil {
				return wk, v, false, fmt.Errorf("state: store %q: %w", s.store, err)
			}
			return window.Windowed[K]{Key: k, Window: w}, v, true, nil
		},
	}
}

// capAdd adds b to a, capped at the largest int64, as Kafka Streams caps
// window ends.
func capAdd(a, b int64) int64 {
	if a > 0 && b > (1<<63-1)-a {
		return 1<<63 - 1
	}
	return a + b
}

func (s *windowStore[K, V]) Metadata(key string) ([]byte, bool, error) { return s.metadata(key) }

func (s *windowStore[K, V]) PutMetadata(key string, value []byte) error {
	s.putMetadata(key, value)
	return nil
}
