// Package serde owns the conversion between typed keys and values and the
// bytes that Kafka stores. A Serde[T] is the pair of functions every source,
// sink, repartition topic and store needs; the built-ins match the byte
// layouts of the Kafka Java serializers so that eddy and Kafka Streams
// applications can share topics.
//
// # Null
//
// A Kafka key or value may be null, which is not the same as empty: the
// Kafka client gives a nil []byte for null and a non-nil empty one for
// empty. eddy keeps null away from serdes. A source does not call
// Deserialize for a null key or value: its children get T's zero value
// with processor.Record's NullKey or NullValue set. A sink does not call
// Serialize for a null key or value (processor.Record's KeyIsNull and
// ValueIsNull, which count a nil pointer, slice, map or interface as
// null): it writes nil. So eddy never calls Deserialize with nil data, and
// a Serde[T] needs no way to represent null; that is what lets a key or
// value of type string, int64 or a struct be null.
//
// Kafka's Java serdes instead receive null and must return null
// (deserializer(null) is null, serializer(null) is null). Called directly
// (by tests, stores or user code), the built-in serdes follow that
// contract as far as T allows: Deserialize(nil) returns T's zero value
// (nil for Bytes) and no error, and Bytes' Serialize(nil) returns nil. A
// Serde of your own should do the same. JSON is the one deliberate
// exception: it serializes a nil pointer, map or slice as the JSON text
// null, not as nil, because state stores call it too and a store cannot
// hold a Kafka null (it would be a tombstone in the store's changelog);
// with the text, a nil kept in a store reads back as nil. Sinks still write
// such a value as a Kafka null, since they do not call Serialize for it.
package serde

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
)

// Serde converts values of type T to and from bytes. Implementations must be
// safe for concurrent use: one Serde value serves every task of a topology.
//
// Deserialize may keep data: eddy never reuses the buffers it passes (a
// fetched record's key and value belong to that record alone). A nil data
// slice is a Kafka null, which eddy handles itself and never passes (see
// Null in the package doc); should another caller pass it, return T's zero
// value and no error.
type Serde[T any] interface {
	Serialize(topic string, v T) ([]byte, error)
	Deserialize(topic string, data []byte) (T, error)
}

// Error is returned by the built-in serdes when bytes do not decode. It
// names the topic and the serde so that a deserialization handler can log
// something useful.
type Error struct {
	Serde string
	Topic string
	Err   error
}

func (e *Error) Error() string {
	return fmt.Sprintf("serde %s: topic %q: %v", e.Serde, e.Topic, e.Err)
}

// Unwrap returns the underlying decoding error.
func (e *Error) Unwrap() error { return e.Err }

type stringSerde struct{}

// String returns a serde for UTF-8 strings, as Kafka's StringSerializer.
// The empty string serializes to an empty, non-nil slice (not to a null),
// and a nil byte slice deserializes to the empty string. Byte order of the
// serialized form equals string order, so range scans on string keys work.
func String() Serde[string] { return stringSerde{} }

func (stringSerde) Serialize(_ string, v string) ([]byte, error) {
	if v == "" {
		return []byte{}, nil // empty, not null
	}
	return []byte(v), nil
}
func (stringSerde) Deserialize(_ string, b []byte) (string, error) {
	return string(b), nil
}

type bytesSerde struct{}

// Bytes returns the identity serde: no copy either way, so a nil slice
// (null) stays nil and an empty one stays empty. The slices belong to the
// record; a processor that changes one in place must copy it first.
func Bytes() Serde[[]byte] { return bytesSerde{} }

func (bytesSerde) Serialize(_ string, v []byte) ([]byte, error)   { return v, nil }
func (bytesSerde) Deserialize(_ string, b []byte) ([]byte, error) { return b, nil }

type int64Serde struct{}

// Int64 returns a serde for int64 as 8 bytes big-endian, the layout of
// Kafka's LongSerializer. Non-negative values sort in numeric order as bytes;
// negative values sort after positive ones. A nil byte slice (null)
// deserializes to 0; any other length but 8 is an *Error.
func Int64() Serde[int64] { return int64Serde{} }

func (int64Serde) Serialize(_ string, v int64) ([]byte, error) {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), uint64(v)), nil
}

func (int64Serde) Deserialize(topic string, b []byte) (int64, error) {
	if b == nil {
		return 0, nil // null
	}
	if len(b) != 8 {
		return 0, &Error{Serde: "int64", Topic: topic, Err: fmt.Errorf("want 8 bytes, got %d (is the topic written with a LongSerializer?)", len(b))}
	}
	return int64(binary.BigEndian.Uint64(b)), nil
}

type jsonSerde[T any] struct{}

// JSON returns a serde that encodes T with encoding/json. Decoding rejects
// malformed JSON, empty data included, with an *Error; unknown fields are
// ignored, as encoding/json does. A nil byte slice (null) decodes to T's
// zero value; a nil pointer, map or slice encodes as the JSON text null
// (see Null in the package doc for why).
func JSON[T any]() Serde[T] { return jsonSerde[T]{} }

func (jsonSerde[T]) Serialize(_ string, v T) ([]byte, error) { return json.Marshal(v) }

func (jsonSerde[T]) Deserialize(topic string, b []byte) (T, error) {
	var v T
	if b == nil {
		return v, nil // null
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return v, &Error{Serde: "json", Topic: topic, Err: err}
	}
	return v, nil
}
