package topology

import (
	"encoding/binary"
	"fmt"

	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/state"
)

// The stores of DSL aggregations keep each value with its timestamp, as
// Kafka Streams' TimestampedKeyValueStore keeps a ValueAndTimestamp: the
// stored bytes are the timestamp (8 bytes, big-endian Unix milliseconds,
// -1 for none) followed by the value's serialized bytes. The changelog
// carries the same bytes, and its records are stamped with the timestamp
// (task.StoreSpec.Timestamped), so a restore copies them unchanged.

// noTimestamp is the timestamp of a value written without one, through a
// store's plain view (Kafka Streams' ConsumerRecord.NO_TIMESTAMP).
const noTimestamp int64 = -1

// stamped is a value and its timestamp (Unix ms).
type stamped[V any] struct {
	value V
	ts    int64
}

// stampedSerde serializes a stamped value: the timestamp, then the value.
type stampedSerde[V any] struct{ values serde.Serde[V] }

func (s stampedSerde[V]) Serialize(topic string, v stamped[V]) ([]byte, error) {
	b, err := s.values.Serialize(topic, v.value)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 8, 8+len(b))
	binary.BigEndian.PutUint64(out, uint64(v.ts))
	return append(out, b...), nil
}

func (s stampedSerde[V]) Deserialize(topic string, data []byte) (stamped[V], error) {
	if len(data) < 8 {
		return stamped[V]{}, &serde.Error{Serde: "value and timestamp", Topic: topic, Err: fmt.Errorf("want at least 8 bytes, got %d (was the store written by an eddy version without timestamps? wipe its state and changelog)", len(data))}
	}
	v, err := s.values.Deserialize(topic, data[8:])
	if err != nil {
		return stamped[V]{}, err
	}
	return stamped[V]{value: v, ts: int64(binary.BigEndian.Uint64(data))}, nil
}

// timestampedStore is the typed form of a DSL aggregation's store. The
// aggregation reads and writes values with timestamps (getStamped,
// putStamped); as a state.KeyValueStore[K, V], which is what processors
// of the Processor API and eddytest.KeyValueStore get, it reads values
// without their timestamps and writes values with none (as Kafka Streams'
// KeyValueStoreFacade over a timestamped store does). An aggregation
// treats a value without a timestamp as older than any record.
type timestampedStore[K, V any] struct {
	inner state.KeyValueStore[K, stamped[V]]
}

func newTimestampedStore[K, V any](name, topic string, raw state.RawStore, keys serde.Serde[K], values serde.Serde[V]) *timestampedStore[K, V] {
	return &timestampedStore[K, V]{inner: state.NewKeyValueStore(name, topic, raw, keys, serde.Serde[stamped[V]](stampedSerde[V]{values}))}
}

func (s *timestampedStore[K, V]) getStamped(k K) (stamped[V], bool, error) { return s.inner.Get(k) }

func (s *timestampedStore[K, V]) putStamped(k K, v V, ts int64) error {
	return s.inner.Put(k, stamped[V]{value: v, ts: ts})
}

// Name is the store's name.
func (s *timestampedStore[K, V]) Name() string { return s.inner.Name() }

// Get returns the value of key, without its timestamp.
func (s *timestampedStore[K, V]) Get(k K) (V, bool, error) {
	v, ok, err := s.inner.Get(k)
	return v.value, ok, err
}

// Put stores v under key without a timestamp.
func (s *timestampedStore[K, V]) Put(k K, v V) error { return s.putStamped(k, v, noTimestamp) }

// Delete removes key.
func (s *timestampedStore[K, V]) Delete(k K) error { return s.inner.Delete(k) }

// Range iterates keys from from to to, both inclusive.
func (s *timestampedStore[K, V]) Range(from, to K) (state.KeyValueIterator[K, V], error) {
	return valuesOnly(s.inner.Range(from, to))
}

// PrefixScan iterates the keys whose serialized form starts with prefix's.
func (s *timestampedStore[K, V]) PrefixScan(prefix K) (state.KeyValueIterator[K, V], error) {
	return valuesOnly(s.inner.PrefixScan(prefix))
}

// All iterates every key.
func (s *timestampedStore[K, V]) All() (state.KeyValueIterator[K, V], error) {
	return valuesOnly(s.inner.All())
}

func valuesOnly[K, V any](it state.KeyValueIterator[K, stamped[V]], err error) (state.KeyValueIterator[K, V], error) {
	if err != nil {
		return nil, err
	}
	return valueIter[K, V]{it}, nil
}

// valueIter iterates a timestamped store's values without timestamps.
type valueIter[K, V any] struct {
	state.KeyValueIterator[K, stamped[V]]
}

func (i valueIter[K, V]) Value() V { return i.KeyValueIterator.Value().value }
