package topology

import (
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddystream/eddy/internal/task"
	"github.com/eddystream/eddy/processor"
)

// SourceRecord is an input record as a TimestampExtractor sees it: before
// deserialization, with the record's own timestamp.
type SourceRecord struct {
	Topic     string
	Partition int32
	Offset    int64
	// Key and Value are the record's bytes, nil for a Kafka null. They
	// belong to the record: do not change them.
	Key, Value []byte
	Headers    []processor.Header
	// Timestamp is the Kafka record's timestamp (CreateTime or
	// LogAppendTime, as the topic is configured). A record written
	// without one reads as a negative (invalid) timestamp.
	Timestamp time.Time

	wallClock func() time.Time
}

// WallClock is the time now on the task's wall clock: the system clock
// when the application runs, the driver's clock in eddytest.
func (r SourceRecord) WallClock() time.Time { return r.wallClock() }

// TimestampExtractor returns the timestamp of an input record: the event
// time that orders the task's records across its partitions, advances
// stream time (and so fires stream-time punctuators and, later, closes
// windows), and that the record carries downstream as its Timestamp.
// partitionTime is the largest timestamp of the records of rec's
// partition that the task has processed, or the zero Time when it has
// processed none (since it started, or since its last rewind).
//
// A timestamp before the Unix epoch (negative, as Kafka counts; the zero
// Time is one) is invalid: the source's OnInvalidTimestamp handler decides
// what happens to the record. A panic of an extractor fails the task, as
// an exception of one does in Kafka Streams. It is Kafka Streams'
// TimestampExtractor, except that it gets the record's bytes rather than
// the deserialized record: deserialize with the source's serde if the
// timestamp is in the key or the value.
type TimestampExtractor func(rec SourceRecord, partitionTime time.Time) time.Time

// RecordTimestamp is the default TimestampExtractor: the Kafka record's
// own timestamp (Kafka Streams' FailOnInvalidTimestamp and its siblings
// extract this one too; what they do with an invalid timestamp is eddy's
// OnInvalidTimestamp).
func RecordTimestamp(rec SourceRecord, _ time.Time) time.Time { return rec.Timestamp }

// WallClockTimestamp stamps every record with the wall-clock time at which
// the task reads it (SourceRecord.WallClock), Kafka Streams'
// WallclockTimestampExtractor. Records are then processed in
// processing-time order; their results do not repeat when input is read
// again.
func WallClockTimestamp(rec SourceRecord, _ time.Time) time.Time { return rec.WallClock() }

// WithTimestampExtractor sets how a source (Source, SourceTopics) stamps
// its records; see TimestampExtractor. Kafka Streams' equivalent is
// Consumed.withTimestampExtractor.
//
// Default: RecordTimestamp.
func WithTimestampExtractor(fn TimestampExtractor) Option {
	return func(o *options) {
		if fn == nil {
			o.errs = append(o.errs, "WithTimestampExtractor: the extractor is nil; leave the option out for the records' own timestamps")
			return
		}
		o.extractor = fn
	}
}

// InvalidTimestampHandler says what a source does with a record whose
// timestamp is invalid (negative), whether it is the record's own or what
// the source's TimestampExtractor returned.
type InvalidTimestampHandler int

// The handlers of invalid timestamps.
const (
	// FailOnInvalidTimestamp fails the task with an error naming the
	// record's topic, partition and offset, and the timestamp (Kafka
	// Streams' FailOnInvalidTimestamp). The processing-error handlers do
	// not apply. It is the default.
	FailOnInvalidTimestamp InvalidTimestampHandler = iota
	// SkipOnInvalidTimestamp drops the record, counted in
	// eddy_dropped_records_total (reason invalid_timestamp) and logged at
	// debug (Kafka Streams' LogAndSkipOnInvalidTimestamp, which logs at
	// warn).
	SkipOnInvalidTimestamp
	// UsePartitionTimeOnInvalidTimestamp stamps the record with its
	// partition's time, the largest timestamp the task has processed in
	// the partition (Kafka Streams' UsePartitionTimeOnInvalidTimestamp).
	// While the partition has no time yet (its first record since the task
	// started or rewound), it fails as FailOnInvalidTimestamp does.
	UsePartitionTimeOnInvalidTimestamp
)

func (h InvalidTimestampHandler) String() string {
	switch h {
	case FailOnInvalidTimestamp:
		return "fail"
	case SkipOnInvalidTimestamp:
		return "skip"
	case UsePartitionTimeOnInvalidTimestamp:
		return "use-partition-time"
	}
	return fmt.Sprintf("InvalidTimestampHandler(%d)", int(h))
}

// OnInvalidTimestamp sets what a source (Source, SourceTopics) does with
// a record whose timestamp is invalid. In Kafka Streams the handler is
// the extractor itself, and a record for which a custom extractor returns
// a negative timestamp is always dropped; in eddy the handler applies to
// what any extractor returns.
//
// Default: FailOnInvalidTimestamp.
func OnInvalidTimestamp(h InvalidTimestampHandler) Option {
	return func(o *options) {
		if h < FailOnInvalidTimestamp || h > UsePartitionTimeOnInvalidTimestamp {
			o.errs = append(o.errs, fmt.Sprintf("OnInvalidTimestamp: unknown handler %d; use FailOnInvalidTimestamp, SkipOnInvalidTimestamp or UsePartitionTimeOnInvalidTimestamp", int(h)))
			return
		}
		o.onInvalid = h
	}
}

// sourceTime is the runtime form of a source's timestamp options for
// task t.
func sourceTime(o options, t *task.Task) task.SourceTime {
	st := task.SourceTime{OnInvalid: task.InvalidTimestamp(o.onInvalid)}
	if fn := o.extractor; fn != nil {
		st.Extract = func(r *kgo.Record, partitionTime int64) int64 {
			rec := SourceRecord{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value, Timestamp: r.Timestamp, wallClock: t.WallClock}
			if len(r.Headers) > 0 {
				rec.Headers = make([]processor.Header, len(r.Headers))
				for i, h := range r.Headers {
					rec.Headers[i] = processor.Header{Key: h.Key, Value: h.Value}
				}
			}
			var pt time.Time
			if partitionTime >= 0 {
				pt = time.UnixMilli(partitionTime)
			}
			return fn(rec, pt).UnixMilli()
		}
	}
	return st
}
