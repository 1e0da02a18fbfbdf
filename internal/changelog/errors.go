package changelog

import "errors"

// ErrCorruptCheckpoint reports that a checkpoint file cannot be trusted: it
// is truncated, damaged, not a checkpoint file, or written in a format
// version this build does not read. ReadCheckpoint returns it wrapped, with
// the path and what is wrong; match it with errors.Is.
//
// A checkpoint only saves restore time, so the reaction is to ignore the
// file: wipe the task's stores, delete the file and restore the stores in
// full from their changelogs.
var ErrCorruptCheckpoint = errors.New("corrupt checkpoint file")

// ErrCheckpointAhead reports that a checkpoint offset is past the end of its
// changelog partition: the local store holds changes the changelog no longer
// has. The topic was deleted and recreated, or the brokers lost committed
// data. PlanRestore and Restorer.Restore return it wrapped; match it with
// errors.Is.
//
// The store cannot be brought back in line by reading, so wipe it, delete
// the checkpoint and restore again with NoCheckpoint.
var ErrCheckpointAhead = errors.New("checkpoint is ahead of the changelog")
