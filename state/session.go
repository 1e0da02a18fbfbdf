package state

import (
	"fmt"
	"time"

	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/window"
)

// SessionStore is a typed store of values per key and session, as Kafka
// Streams' SessionStore: the store behind session-windowed aggregations.
// A session is a window.Window of kind window.KindSession, [start, end]
// with both ends included.
//
// The store keeps sessions for its retention, counted from their ends:
// once it has seen a session end T (its stream time), sessions that end
// at or before T - retention are gone, their segments dropped whole, as
// for a WindowStore.
//
// A store belongs to one task and is used by that task's goroutine only.
type SessionStore[K, V any] interface {
	// Name is the store's name in the topology.
	Name() string
	// Put stores value for the session. A write to a session past the
	// retention is ignored, and reported so (written false).
	Put(session window.Windowed[K], value V) (written bool, err error)
	// Remove deletes the session.
	Remove(session window.Windowed[K]) error
	// FetchSession returns the value of key's session [start, end].
	FetchSession(key K, start, end time.Time) (value V, ok bool, err error)
	// FindSessions iterates key's sessions that end at or after
	// earliestEnd and start at or before latestStart, by end, then start:
	// Kafka Streams' findSessions, which a session aggregation calls with
	// the record's time minus and plus the inactivity gap to find the
	// sessions the record merges.
	FindSessions(key K, earliestEnd, latestStart time.Time) (WindowIterator[K, V], error)
	// Fetch iterates every session of key.
	Fetch(key K) (WindowIterator[K, V], error)
	// All iterates every session the store keeps.
	All() (WindowIterator[K, V], error)
}

// Session returns the named store of a processor context as a typed
// session store.
func Session[K, V any](ctx StoreGetter, name string) (SessionStore[K, V], error) {
	s, err := ctx.Store(name)
	if err != nil {
		return nil, err
	}
	ss, ok := s.(SessionStore[K, V])
	if !ok {
		return nil, fmt.Errorf("state: store %q is a %T, not a SessionStore[%T, %T]: check the types given where the store was declared", name, s, *new(K), *new(V))
	}
	return ss, nil
}

// NewSessionStore returns a typed session store over raw that keeps
// sessions for retention (Kafka Streams: the inactivity gap plus the
// grace period; a store whose retention changes must be reset, as for
// WindowStoreConfig.Retention). topic is passed to the serdes.
func NewSessionStore[K, V any](name, topic string, raw RawStore, keys serde.Serde[K], values serde.Serde[V], retention time.Duration) (SessionStore[K, V], error) {
	if retention <= 0 || retention%time.Millisecond != 0 {
		return nil, fmt.Errorf("state: session store %q: retention %v is not a positive whole number of milliseconds", name, retention)
	}
	return &sessionStore[K, V]{segmented: newSegmented(name, raw, retention), codec: codec[K, V]{name: name, topic: topic, keys: keys, values: values}}, nil
}

type sessionStore[K, V any] struct {
	segmented
	codec[K, V]
}

func (s *sessionStore[K, V]) Name() string { return s.store }

// storeKey is the backend key of key's session [start, end].
func (s *sessionStore[K, V]) storeKey(key []byte, start, end int64) []byte {
	return appendTime(segmentKey(s.seg.of(end), key, end), start)
}

func (s *sessionStore[K, V]) Put(session window.Windowed[K], v V) (bool, error) {
	end := session.Window.EndMs()
	if err := s.observe(end); err != nil {
		return false, err
	}
	if live, err := s.live(end); err != nil || !live {
		return false, err
	}
	kb, err := s.key(session.Key)
	if err != nil {
		return false, err
	}
	vb, err := s.value(v)
	if err != nil {
		return false, err
	}
	s.raw.Put(s.storeKey(kb, session.Window.StartMs(), end), vb)
	return true, nil
}

func (s *sessionStore[K, V]) Remove(session window.Windowed[K]) error {
	kb, err := s.key(session.Key)
	if err != nil {
		return err
	}
	s.raw.Delete(s.storeKey(kb, session.Window.StartMs(), session.Window.EndMs()))
	return nil
}

func (s *sessionStore[K, V]) FetchSession(k K, start, end time.Time) (V, bool, error) {
	var zero V
	if live, err := s.live(end.UnixMilli()); err != nil || !live {
		return zero, false, err
	}
	kb, err := s.key(k)
	if err != nil {
		return zero, false, err
	}
	vb, ok, err := s.raw.Get(s.storeKey(kb, start.UnixMilli(), end.UnixMilli()))
	if err != nil || !ok {
		return zero, false, err
	}
	v, err := s.decodeValue(vb)
	if err != nil {
		return zero, false, err
	}
	return v, true, nil
}

func (s *sessionStore[K, V]) FindSessions(k K, earliestEnd, latestStart time.Time) (WindowIterator[K, V], error) {
	kb, err := s.key(k)
	if err != nil {
		return nil, err
	}
	lo, err := s.clamp(earliestEnd.UnixMilli())
	if err != nil {
		return nil, err
	}
	return s.iter(lo, latestStart.UnixMilli(), func(seg int64) ([]byte, []byte) {
		return segmentKey(seg, kb, lo), segmentKeyEnd(seg, kb)
	})
}

func (s *sessionStore[K, V]) Fetch(k K) (WindowIterator[K, V], error) {
	return s.FindSessions(k, time.UnixMilli(noTime), time.UnixMilli(1<<63-1))
}

func (s *sessionStore[K, V]) All() (WindowIterator[K, V], error) {
	lo, err := s.clamp(noTime)
	if err != nil {
		return nil, err
	}
	return s.iter(lo, 1<<63-1, nil)
}

// iter iterates the sessions that end at or after earliestEnd and start
// at or before latestStart, segment by segment.
func (s *sessionStore[K, V]) iter(earliestEnd, latestStart int64, within func(seg int64) ([]byte, []byte)) (WindowIterator[K, V], error) {
	return &segmentIter[K, V]{
		raw: s.raw, seg: s.seg, next: s.seg.of(earliestEnd), last: metaSegment - 1, within: within,
		decode: func(key []byte, value []byte) (window.Windowed[K], V, bool, error) {
			var wk window.Windowed[K]
			var v V
			raw, rest, err := splitEscaped(key[8:])
			if err != nil || len(rest) != 16 {
				return wk, v, false, fmt.Errorf("state: store %q: %w", s.store, errBadStoreKey)
			}
			end, start := readTime(rest), readTime(rest[8:])
			if end < earliestEnd || start > latestStart {
				return wk, v, false, nil
			}
			k, v, err := s.decode(raw, value)
			if err != nil {
				return wk, v, false, err
			}
			w, err := window.NewSessionWindow(start, end)
			if err != nil {
				return wk, v, false, fmt.Errorf("state: store %q: %w", s.store, err)
			}
			return window.Windowed[K]{Key: k, Window: w}, v, true, nil
		},
	}, nil
}

func (s *sessionStore[K, V]) Metadata(key string) ([]byte, bool, error) { return s.metadata(key) }

func (s *sessionStore[K, V]) PutMetadata(key string, value []byte) error {
	s.putMetadata(key, value)
	return nil
}
