package task

import (
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// InvalidTimestamp says what a source does with a record whose timestamp
// (the record's own, or what its extractor returned) is negative.
type InvalidTimestamp int

// What a source does with an invalid timestamp. The zero value fails, as
// Kafka Streams' default FailOnInvalidTimestamp does.
const (
	// FailOnInvalidTimestamp fails the task with an *InvalidTimestampError.
	FailOnInvalidTimestamp InvalidTimestamp = iota
	// SkipOnInvalidTimestamp drops the record and reports it to
	// Config.OnDrop with DropInvalidTimestamp.
	SkipOnInvalidTimestamp
	// UsePartitionTimeOnInvalidTimestamp stamps the record with its
	// partition's time, and fails as FailOnInvalidTimestamp does while the
	// partition has none.
	UsePartitionTimeOnInvalidTimestamp
)

// SourceTime is how a source stamps its records: the timestamp that
// orders them across partitions, drives stream time and punctuation, and
// that they carry downstream.
type SourceTime struct {
	// Extract returns rec's timestamp in Unix milliseconds, given the
	// partition time so far (-1 when the partition has none yet). Nil
	// means the record's own timestamp.
	Extract func(rec *kgo.Record, partitionTime int64) int64
	// OnInvalid is what to do when the timestamp is negative.
	OnInvalid InvalidTimestamp
}

// InvalidTimestampError is an input record whose timestamp is negative,
// under a source that fails on one (the default) or that uses partition
// time while its partition has none. It is not subject to the
// processing-error handlers: Kafka Streams fails the task too.
type InvalidTimestampError struct {
	Topic     string
	Partition int32
	Offset    int64
	// Timestamp is the invalid timestamp, in Unix milliseconds.
	Timestamp int64
	// NoPartitionTime is true when the source would have used the
	// partition time, but the partition had none yet.
	NoPartitionTime bool
}

func (e *InvalidTimestampError) Error() string {
	if e.NoPartitionTime {
		return fmt.Sprintf("record %s-%d@%d has an invalid (negative) timestamp %d, and its partition has no partition time yet to use instead (skip such records, or give the source a timestamp extractor)", e.Topic, e.Partition, e.Offset, e.Timestamp)
	}
	return fmt.Sprintf("record %s-%d@%d has an invalid (negative) timestamp %d (the producer may not set timestamps: give the source a timestamp extractor, or have it skip such records or use partition time)", e.Topic, e.Partition, e.Offset, e.Timestamp)
}

// WallClock is the driver's wall-clock time (Config.WallClock), for
// timestamp extractors that stamp records with it.
func (t *Task) WallClock() time.Time {
	if t.cfg.WallClock != nil {
		return t.cfg.WallClock()
	}
	return time.Now()
}

// stampHead makes q's head record ready to be picked: it extracts its
// timestamp and applies the source's handling of invalid ones, dropping
// the records it skips. On return q is empty or its head is stamped.
func (t *Task) stampHead(q *queue) error {
	for !q.stamped && q.len() > 0 {
		rec := q.head()
		if q.src == nil {
			// processOne reports the unknown topic; order it by its own
			// timestamp meanwhile.
			q.headTS, q.stamped = rec.Timestamp.UnixMilli(), true
			return nil
		}
		st := q.src.timing()
		ts, err := extract(st, rec, q.partTime)
		if err != nil {
			return fmt.Errorf("task %s: timestamp extractor of %s-%d@%d: %w", t.cfg.ID, rec.Topic, rec.Partition, rec.Offset, err)
		}
		if ts >= 0 {
			q.headTS, q.stamped = ts, true
			return nil
		}
		switch {
		case st.OnInvalid == SkipOnInvalidTimestamp:
			q.pop()
			q.next = rec.Offset + 1
			t.buffered--
			t.droppedAt(q.src.name(), DropInvalidTimestamp, rec)
		case st.OnInvalid == UsePartitionTimeOnInvalidTimestamp && q.partTime >= 0:
			q.headTS, q.stamped = q.partTime, true
		default:
			return fmt.Errorf("task %s: %w", t.cfg.ID, &InvalidTimestampError{
				Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset, Timestamp: ts,
				NoPartitionTime: st.OnInvalid == UsePartitionTimeOnInvalidTimestamp,
			})
		}
	}
	return nil
}

// extract runs st's extractor on rec, turning a panic of it into a
// *PanicError.
func extract(st SourceTime, rec *kgo.Record, partTime int64) (ts int64, err error) {
	if st.Extract == nil {
		return rec.Timestamp.UnixMilli(), nil
	}
	defer recoverPanic(&err)
	return st.Extract(rec, partTime), nil
}
