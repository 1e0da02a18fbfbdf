package eddy

import "github.com/eddystream/eddy/internal/engine"

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

// ErrTaskDirLocked is returned when a task's state directory is locked by
// another instance: two instances must not share a state directory.
var ErrTaskDirLocked = engine.ErrTaskDirLocked
