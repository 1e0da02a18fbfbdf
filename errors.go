package eddy

import (
	"github.com/eddystream/eddy/internal/engine"
	"github.com/eddystream/eddy/internal/task"
)

// Startup errors Run returns before any record is processed. Match them
// with errors.As.
type (
	// MissingTopicError names source or sink topics that do not exist.
	// eddy creates only its internal topics; create the others first.
	MissingTopicError = engine.MissingTopicError
	// CopartitionError names co-partitioned topics (the inputs of one
	// sub-topology) whose partition counts differ, with their counts.
	CopartitionError = engine.CopartitionError
	// InternalTopicMismatchError names an existing internal topic whose
	// partition count does not match its sub-topology's task count.
	InternalTopicMismatchError = engine.InternalTopicMismatchError
)

// ErrStateDirLocked is returned by Run, before it connects to Kafka, when
// another instance of the application (in this process or another) runs on
// the same state directory, <StateDir>/<ApplicationID>: two instances must
// not share one. The error names the directory. The lock is released when
// Run returns, or by the operating system when the process dies, so a
// crashed instance leaves none behind. Kafka Streams fails the same way
// ("Unable to initialize state ... multiple instances of Kafka Streams are
// running in the same state directory").
var ErrStateDirLocked = engine.ErrStateDirLocked

// ErrTaskDirLocked is returned when a task's state directory is locked by
// another instance: two instances must not share a state directory.
var ErrTaskDirLocked = engine.ErrTaskDirLocked

// Record errors Run returns when a handler fails (the default). Match them
// with errors.As; each names the record's topic, partition and offset.
type (
	// DeserializationError: an input record's key or value did not
	// deserialize.
	DeserializationError = task.DeserializationError
	// ProcessingError: a processor returned an error for an input record.
	ProcessingError = task.ProcessingError
	// InvalidTimestampError: an input record's timestamp (its own, or
	// what its source's extractor returned) is negative, and its source
	// fails on one (topology.OnInvalidTimestamp). The error handlers do
	// not apply to it.
	InvalidTimestampError = task.InvalidTimestampError
)

// Headers of a dead-letter record (see DeadLetterTopic).
const (
	HeaderErrorKind       = task.HeaderErrorKind
	HeaderErrorMessage    = task.HeaderErrorMessage
	HeaderSourceTopic     = task.HeaderSourceTopic
	HeaderSourcePartition = task.HeaderSourcePartition
	HeaderSourceOffset    = task.HeaderSourceOffset
)

// PanicError is a panic of user code (a processor, a punctuator, a DSL
// callback, a serde) that a task recovered. It is handled as the
// processor's error would be: under FailOnProcessingError, Run returns an
// error that wraps it (in a ProcessingError when it happened on a record)
// and the stack is logged once; under SkipOnProcessingError the record
// goes to the dead-letter topic with the panic in its
// HeaderErrorMessage. Match it with errors.As.
type PanicError = task.PanicError

// CommitTimeoutError is returned by Run when a worker's commits kept
// failing with errors that may pass (a broker rejecting writes with
// NOT_ENOUGH_REPLICAS, say) for longer than TaskTimeout. It names the
// cause of the last failed attempt, which errors.Is matches (for example
// kerr.NotEnoughReplicas).
type CommitTimeoutError = engine.CommitTimeoutError
