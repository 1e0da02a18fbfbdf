package topology

import (
	"encoding/binary"
	"fmt"

	"github.com/eddystream/eddy/serde"
)

// changeSerde is the value format of a table grouping's repartition
// topic, Kafka Streams' ChangedSerializer and ChangedDeserializer (since
// 3.4): the serialized value or values, then one flag byte.
//
//	old value only:  old ++ 0x00
//	new value only:  new ++ 0x01
//	both:            varint(len(new)) ++ new ++ old ++ 0x02
//
// The varint is zig-zag encoded, as Kafka's ByteUtils.writeVarint. A
// change with neither value is not written (Kafka Streams throws).
type changeSerde[V any] struct{ values serde.Serde[V] }

const (
	changeOldOnly byte = 0
	changeNewOnly byte = 1
	changeBoth    byte = 2
)

func (s changeSerde[V]) Serialize(topic string, c change[V]) ([]byte, error) {
	var newData, oldData []byte
	var err error
	if !c.deleted {
		if newData, err = s.values.Serialize(topic, c.value); err != nil {
			return nil, err
		}
	}
	if c.hasOld {
		if oldData, err = s.values.Serialize(topic, c.old); err != nil {
			return nil, err
		}
	}
	switch {
	case !c.deleted && c.hasOld:
		out := binary.AppendVarint(make([]byte, 0, binary.MaxVarintLen32+len(newData)+len(oldData)+1), int64(len(newData)))
		out = append(out, newData...)
		out = append(out, oldData...)
		return append(out, changeBoth), nil
	case !c.deleted:
		return append(newData[:len(newData):len(newData)], changeNewOnly), nil
	case c.hasOld:
		return append(oldData[:len(oldData):len(oldData)], changeOldOnly), nil
	}
	return nil, fmt.Errorf("topology: a table change with neither an old nor a new value cannot be written to topic %q", topic)
}

func (s changeSerde[V]) Deserialize(topic string, data []byte) (change[V], error) {
	bad := func(format string, args ...any) (change[V], error) {
		return change[V]{}, &serde.Error{Serde: "table change", Topic: topic, Err: fmt.Errorf(format, args...)}
	}
	if len(data) == 0 {
		return bad("empty value, want at least the flag byte")
	}
	flag, body := data[len(data)-1], data[:len(data)-1]
	var c change[V]
	var err error
	switch flag {
	case changeOldOnly:
		c.deleted, c.hasOld = true, true
		c.old, err = s.values.Deserialize(topic, body)
	case changeNewOnly:
		c.value, err = s.values.Deserialize(topic, body)
	case changeBoth:
		n, size := binary.Varint(body)
		if size <= 0 || n < 0 || n > int64(len(body)-size) {
			return bad("bad length of the new value")
		}
		body = body[size:]
		c.hasOld = true
		if c.value, err = s.values.Deserialize(topic, body[:n]); err == nil {
			c.old, err = s.values.Deserialize(topic, body[n:])
		}
	default:
		return bad("unknown flag byte %d (was the topic written by something other than a table grouping?)", flag)
	}
	if err != nil {
		return change[V]{}, err
	}
	return c, nil
}
