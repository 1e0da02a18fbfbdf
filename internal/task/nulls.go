package task

import (
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddystream/eddy/processor"
)

// DropReason says why a node dropped a record on purpose. The values are
// the reason label of the engine's dropped-records metric.
type DropReason string

// The reasons for dropping a record.
const (
	// DropNullKey is a record with a null key where one is needed, for
	// example by a stream aggregation.
	DropNullKey DropReason = "null_key"
	// DropNullValue is a record with a null value where one is needed, for
	// example by a stream aggregation.
	DropNullValue DropReason = "null_value"
	// DropInvalidTimestamp is an input record whose timestamp is negative,
	// under a source that skips such records (SkipOnInvalidTimestamp).
	DropInvalidTimestamp DropReason = "invalid_timestamp"
	// DropLate is a record that falls only in windows that have closed:
	// their end plus the grace period is at or before the stream time
	// (Kafka Streams' "Skipping record for expired window"), counted once
	// per closed window it falls in, as there.
	DropLate DropReason = "late"
)

// Drop is one record a node dropped on purpose, as Config.OnDrop gets it.
type Drop struct {
	Reason DropReason
	// Node is the node the record was meant for.
	Node string
	// Origin is the input record the task was processing; HasOrigin is
	// false when the dropped record came from a punctuator.
	Origin    processor.Origin
	HasOrigin bool
}

// DropNulls returns next behind a guard that drops every record with a
// null key or value (processor.Record's KeyIsNull and ValueIsNull) and
// reports it to Config.OnDrop, once, as a null key when both are null.
// The guard has next's name, so ForwardTo still finds next.
//
// Stream aggregations sit behind one: Kafka Streams' KStreamAggregate and
// KStreamReduce skip records with a null key or value and count them in
// the task's dropped-records metric.
func DropNulls[K, V any](t *Task, next Downstream[K, V]) Downstream[K, V] {
	return &nullGuard[K, V]{t: t, next: next}
}

// DropNullKeys is DropNulls for null keys alone: Kafka Streams'
// windowed aggregations (KStreamWindowAggregate,
// KStreamSessionWindowAggregate) skip records with a null key and pass
// null values to the aggregator.
func DropNullKeys[K, V any](t *Task, next Downstream[K, V]) Downstream[K, V] {
	return &nullGuard[K, V]{t: t, next: next, keysOnly: true}
}

type nullGuard[K, V any] struct {
	t        *Task
	next     Downstream[K, V]
	keysOnly bool
}

// Name is the guarded node's name.
func (g *nullGuard[K, V]) Name() string { return g.next.Name() }

// Receive passes rec on unless its key or value is null.
func (g *nullGuard[K, V]) Receive(rec processor.Record[K, V]) error {
	switch {
	case rec.KeyIsNull():
		g.t.dropped(g.next.Name(), DropNullKey)
	case rec.ValueIsNull() && !g.keysOnly:
		g.t.dropped(g.next.Name(), DropNullValue)
	default:
		return g.next.Receive(rec)
	}
	return nil
}

// dropped reports a record node dropped for reason.
func (t *Task) dropped(node string, reason DropReason) {
	if t.cfg.OnDrop != nil {
		t.cfg.OnDrop(Drop{Reason: reason, Node: node, Origin: t.origin, HasOrigin: t.hasOrigin})
	}
}

// droppedAt reports input record rec, which node dropped for reason
// before it was processed.
func (t *Task) droppedAt(node string, reason DropReason, rec *kgo.Record) {
	if t.cfg.OnDrop != nil {
		t.cfg.OnDrop(Drop{Reason: reason, Node: node, Origin: processor.Origin{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset}, HasOrigin: true})
	}
}
