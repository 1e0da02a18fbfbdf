package changelog

import "fmt"

// NoCheckpoint stands for a missing checkpoint offset in PlanRestore,
// Restorer.Restore and RestoreJob: there is no checkpoint file, it is
// corrupt, or it has no entry for the partition.
const NoCheckpoint int64 = -1

// Plan says which offsets of a changelog partition a restore reads.
type Plan struct {
	// From is the first offset to read.
	From int64
	// End is where the restore stops: it is complete when the next offset
	// to read reaches End. End is the partition's last stable offset, the
	// end of committed data, when the plan is made; it is the offset to
	// checkpoint afterwards.
	End int64
	// Full is true when the store must be wiped before reading, because
	// there is no checkpoint to continue from or the changelog no longer
	// holds the records after it.
	Full bool
}

// PlanRestore plans the restore of one changelog partition whose log starts
// at logStart and whose committed data ends at end, for a store checkpointed
// at checkpoint (or NoCheckpoint). It does no I/O.
//
//   - No checkpoint: read the whole log, from logStart into a wiped store.
//   - A checkpoint from logStart to end: read the tail, from the checkpoint;
//     a checkpoint equal to end reads nothing.
//   - A checkpoint below logStart: records after the checkpoint were deleted
//     (retention or DeleteRecords), so the store cannot catch up from it;
//     read the whole log into a wiped store.
//   - A checkpoint above end: ErrCheckpointAhead.
func PlanRestore(checkpoint, logStart, end int64) (Plan, error) {
	plan, err := planRestore(checkpoint, logStart, end)
	if err != nil {
		return Plan{}, fmt.Errorf("changelog: %w", err)
	}
	return plan, nil
}

// planRestore is PlanRestore with errors for callers that add their own
// prefix.
func planRestore(checkpoint, logStart, end int64) (Plan, error) {
	if logStart < 0 || end < logStart {
		return Plan{}, fmt.Errorf("invalid partition offsets: log start %d, end %d", logStart, end)
	}
	switch {
	case checkpoint < NoCheckpoint:
		return Plan{}, fmt.Errorf("invalid checkpoint offset %d: want an offset of at least 0, or NoCheckpoint", checkpoint)
	case checkpoint == NoCheckpoint, checkpoint < logStart:
		return Plan{From: logStart, End: end, Full: true}, nil
	case checkpoint > end:
		return Plan{}, fmt.Errorf("%w: the checkpoint is at offset %d but committed data ends at %d; the topic was deleted and recreated, or the brokers lost data: wipe the store, delete the checkpoint and restore in full", ErrCheckpointAhead, checkpoint, end)
	}
	return Plan{From: checkpoint, End: end}, nil
}
