package state

import (
	"fmt"

	"github.com/eddystream/eddy/serde"
)

// RawStore is the byte-level read-write view a typed store sits on. In a
// running task it is the task's transactional overlay over the store's
// Backend, so reads see the writes of the open commit interval.
type RawStore interface {
	Get(key []byte) (value []byte, ok bool, err error)
	Put(key, value []byte)
	Delete(key []byte)
	// DeleteRange removes every key in [start, end) in one operation, as a
	// window or session store drops a whole expired time segment. The
	// bounds read as Range's: a nil start is the least key, a nil end
	// means no upper bound, and a range with start >= end (end not nil)
	// is empty, which makes DeleteRange a no-op. Reads after it see none
	// of the range's keys until they are written again; it commits with
	// the interval's other writes, in order, in one atomic batch.
	//
	// A range delete is not logged: a task sends nothing for it to the
	// store's changelog, not even a tombstone for each key it removes.
	// It suits data that the changelog drops by itself: window and session
	// store changelogs delete old records by the topic's retention, and a
	// restore drops the expired segments itself. A store whose changelog
	// must record the removal deletes key by key with Delete.
	DeleteRange(start, end []byte)
	Range(start, end []byte) (Iterator, error)
}

// KeyValueStore is a typed, ordered key-value store. Keys are ordered by
// their serialized bytes (the built-in string serde keeps string order; the
// int64 serde keeps numeric order for non-negative numbers).
//
// A store belongs to one task and is used by that task's goroutine only.
type KeyValueStore[K, V any] interface {
	// Name is the store's name in the topology.
	Name() string
	// Get returns the value for key; ok is false when there is none.
	Get(key K) (value V, ok bool, err error)
	// Put stores value under key.
	Put(key K, value V) error
	// Delete removes key. Deleting an absent key is not an error.
	Delete(key K) error
	// Range iterates keys from from to to, both inclusive, in key order.
	Range(from, to K) (KeyValueIterator[K, V], error)
	// PrefixScan iterates the keys whose serialized form starts with the
	// serialized form of prefix.
	PrefixScan(prefix K) (KeyValueIterator[K, V], error)
	// All iterates every key in order.
	All() (KeyValueIterator[K, V], error)
}

// KeyValueIterator walks a range of a KeyValueStore. Call Next before the
// first Key; always Close it.
type KeyValueIterator[K, V any] interface {
	Next() bool
	Key() K
	Value() V
	// Err reports what ended the iteration early: a backend error or a key
	// or value that did not deserialize.
	Err() error
	Close() error
}

// StoreGetter is what a processor context offers: stores by name.
type StoreGetter interface {
	Store(name string) (any, error)
}

// KeyValue returns the named store of a processor context as a typed
// key-value store. It fails when the store is not connected to the
// processor or has other key or value types.
func KeyValue[K, V any](ctx StoreGetter, name string) (KeyValueStore[K, V], error) {
	s, err := ctx.Store(name)
	if err != nil {
		return nil, err
	}
	kv, ok := s.(KeyValueStore[K, V])
	if !ok {
		return nil, fmt.Errorf("state: store %q is a %T, not a KeyValueStore[%T, %T]: check the types given where the store was declared", name, s, *new(K), *new(V))
	}
	return kv, nil
}

// NewKeyValueStore returns a typed store over raw. topic is passed to the
// serdes (the changelog topic, or the store name for unlogged stores).
func NewKeyValueStore[K, V any](name, topic string, raw RawStore, keys serde.Serde[K], values serde.Serde[V]) KeyValueStore[K, V] {
	return &kvStore[K, V]{name: name, topic: topic, raw: raw, keys: keys, values: values}
}

type kvStore[K, V any] struct {
	name   string
	topic  string
	raw    RawStore
	keys   serde.Serde[K]
	values serde.Serde[V]
}

func (s *kvStore[K, V]) Name() string { return s.name }

func (s *kvStore[K, V]) key(k K) ([]byte, error) {
	b, err := s.keys.Serialize(s.topic, k)
	if err != nil {
		return nil, fmt.Errorf("state: store %q: serialize key: %w", s.name, err)
	}
	return b, nil
}

func (s *kvStore[K, V]) Get(k K) (V, bool, error) {
	var zero V
	kb, err := s.key(k)
	if err != nil {
		return zero, false, err
	}
	vb, ok, err := s.raw.Get(kb)
	if err != nil || !ok {
		return zero, false, err
	}
	v, err := s.values.Deserialize(s.topic, vb)
	if err != nil {
		return zero, false, fmt.Errorf("state: store %q: deserialize value: %w", s.name, err)
	}
	return v, true, nil
}

func (s *kvStore[K, V]) Put(k K, v V) error {
	kb, err := s.key(k)
	if err != nil {
		return err
	}
	vb, err := s.values.Serialize(s.topic, v)
	if err != nil {
		return fmt.Errorf("state: store %q: serialize value: %w", s.name, err)
	}
	if vb == nil {
		// A nil value would be a tombstone in the changelog; store an empty
		// value instead so that the key survives restoration.
		vb = []byte{}
	}
	s.raw.Put(kb, vb)
	return nil
}

func (s *kvStore[K, V]) Delete(k K) error {
	kb, err := s.key(k)
	if err != nil {
		return err
	}
	s.raw.Delete(kb)
	return nil
}

func (s *kvStore[K, V]) Range(from, to K) (KeyValueIterator[K, V], error) {
	fb, err := s.key(from)
	if err != nil {
		return nil, err
	}
	tb, err := s.key(to)
	if err != nil {
		return nil, err
	}
	// The end bound of a Backend range is exclusive; the smallest key
	// greater than tb is tb followed by a zero byte.
	return s.iter(fb, append(tb, 0))
}

func (s *kvStore[K, V]) PrefixScan(prefix K) (KeyValueIterator[K, V], error) {
	pb, err := s.key(prefix)
	if err != nil {
		return nil, err
	}
	return s.iter(pb, prefixEnd(pb))
}

func (s *kvStore[K, V]) All() (KeyValueIterator[K, V], error) { return s.iter(nil, nil) }

func (s *kvStore[K, V]) iter(start, end []byte) (KeyValueIterator[K, V], error) {
	it, err := s.raw.Range(start, end)
	if err != nil {
		return nil, fmt.Errorf("state: store %q: range: %w", s.name, err)
	}
	return &kvIter[K, V]{s: s, it: it}, nil
}

// prefixEnd returns the smallest key greater than every key that starts
// with prefix, or nil (unbounded) if there is none.
func prefixEnd(prefix []byte) []byte {
	end := append([]byte(nil), prefix...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

type kvIter[K, V any] struct {
	s   *kvStore[K, V]
	it  Iterator
	k   K
	v   V
	err error
}

func (i *kvIter[K, V]) Next() bool {
	if i.err != nil || !i.it.Next() {
		return false
	}
	k, err := i.s.keys.Deserialize(i.s.topic, i.it.Key())
	if err != nil {
		i.err = fmt.Errorf("state: store %q: deserialize key: %w", i.s.name, err)
		return false
	}
	v, err := i.s.values.Deserialize(i.s.topic, i.it.Value())
	if err != nil {
		i.err = fmt.Errorf("state: store %q: deserialize value: %w", i.s.name, err)
		return false
	}
	i.k, i.v = k, v
	return true
}

func (i *kvIter[K, V]) Key() K   { return i.k }
func (i *kvIter[K, V]) Value() V { return i.v }

func (i *kvIter[K, V]) Err() error {
	if i.err != nil {
		return i.err
	}
	return i.it.Err()
}

func (i *kvIter[K, V]) Close() error { return i.it.Close() }
