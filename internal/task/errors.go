package task

import (
	"errors"
	"fmt"
	"runtime/debug"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ErrorPolicy says what a task does with an input record whose processing
// fails. The engine and eddytest fill it from the application's options, so
// both behave alike.
type ErrorPolicy struct {
	// SkipDeserializationErrors skips records whose key or value does not
	// deserialize, instead of failing the task.
	SkipDeserializationErrors bool
	// SkipProcessingErrors skips records for which a processor returned an
	// error, instead of failing the task. What the processors did for the
	// record before the error (records forwarded, store writes) stays, as
	// with Kafka Streams' LogAndContinueProcessingExceptionHandler.
	SkipProcessingErrors bool
	// DeadLetterTopic, if set, receives every skipped record: its original
	// key, value, timestamp and headers, plus the headers named by the
	// Header* constants. It is produced like any output, so it is as
	// durable as the task's other outputs when the task commits.
	DeadLetterTopic string
	// OnSkip, if set, is called for every skipped record (to log and
	// count), and with a nil rec for a punctuator's error that
	// SkipProcessingErrors skips.
	OnSkip func(rec *kgo.Record, err error)
}

// Headers eddy adds to a dead-letter record.
const (
	HeaderErrorKind       = "eddy.error.kind" // "deserialization" or "processing"
	HeaderErrorMessage    = "eddy.error.message"
	HeaderSourceTopic     = "eddy.source.topic"
	HeaderSourcePartition = "eddy.source.partition"
	HeaderSourceOffset    = "eddy.source.offset"
)

// DeserializationError says which input record failed to deserialize.
type DeserializationError struct {
	Topic     string
	Partition int32
	Offset    int64
	Err       error
}

func (e *DeserializationError) Error() string {
	return fmt.Sprintf("record %s-%d@%d does not deserialize: %v (fix the producer or the serde, or choose the skip handler)", e.Topic, e.Partition, e.Offset, e.Err)
}

// Unwrap returns the serde's error.
func (e *DeserializationError) Unwrap() error { return e.Err }

// ProcessingError says which input record a processor failed on.
type ProcessingError struct {
	Topic     string
	Partition int32
	Offset    int64
	Err       error
}

func (e *ProcessingError) Error() string {
	return fmt.Sprintf("processing record %s-%d@%d failed: %v (fix the processor, or choose the skip handler)", e.Topic, e.Partition, e.Offset, e.Err)
}

// Unwrap returns the processor's error.
func (e *ProcessingError) Unwrap() error { return e.Err }

// deserializeError marks a source's serde failure so that the task can
// tell it from a processor's error.
type deserializeError struct{ err error }

func (e *deserializeError) Error() string { return e.err.Error() }

// handle applies the error policy to err, returned while processing rec:
// nil when the record is skipped, the error to fail with otherwise.
func (t *Task) handle(rec *kgo.Record, err error) error {
	var (
		failed error
		kind   string
		skip   bool
	)
	if de := (*deserializeError)(nil); errors.As(err, &de) {
		failed = &DeserializationError{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset, Err: de.err}
		kind, skip = "deserialization", t.cfg.Errors.SkipDeserializationErrors
	} else {
		failed = &ProcessingError{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset, Err: err}
		kind, skip = "processing", t.cfg.Errors.SkipProcessingErrors
	}
	if !skip {
		return fmt.Errorf("task %s: %w", t.cfg.ID, failed)
	}
	t.skipped++
	if p := t.cfg.Errors; p.DeadLetterTopic != "" {
		dead := &kgo.Record{Topic: p.DeadLetterTopic, Key: rec.Key, Value: rec.Value, Timestamp: rec.Timestamp}
		dead.Headers = append(append(dead.Headers, rec.Headers...),
			kgo.RecordHeader{Key: HeaderErrorKind, Value: []byte(kind)},
			kgo.RecordHeader{Key: HeaderErrorMessage, Value: []byte(failed.Error())},
			kgo.RecordHeader{Key: HeaderSourceTopic, Value: []byte(rec.Topic)},
			kgo.RecordHeader{Key: HeaderSourcePartition, Value: []byte(strconv.FormatInt(int64(rec.Partition), 10))},
			kgo.RecordHeader{Key: HeaderSourceOffset, Value: []byte(strconv.FormatInt(rec.Offset, 10))},
		)
		t.cfg.Output(dead)
	}
	if t.cfg.Errors.OnSkip != nil {
		t.cfg.Errors.OnSkip(rec, failed)
	}
	return nil
}

// PanicError is a panic of user code (a processor, a punctuator, a DSL
// callback, a serde) that the task recovered. It reaches the error
// handlers as the cause of a ProcessingError, or of a punctuator's or an
// initialisation's error, like any error user code returns.
type PanicError struct {
	// Value is what the code panicked with.
	Value any
	// Stack is the panicking goroutine's stack, for the log.
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// Unwrap returns the panic value when it is an error (panic(err)).
func (e *PanicError) Unwrap() error {
	if err, ok := e.Value.(error); ok {
		return err
	}
	return nil
}

// recoverPanic turns a panic in progress into a *PanicError stored in
// *err. Call it deferred, directly: recover works only there.
func recoverPanic(err *error) {
	if v := recover(); v != nil {
		*err = &PanicError{Value: v, Stack: debug.Stack()}
	}
}
