package engine

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddystream/eddy/internal/metrics"
	"github.com/eddystream/eddy/internal/task"
	"github.com/eddystream/eddy/processor"
)

// taskState is where a task is in its life. Active tasks go
//
//	created ─► restoring ─► running ⇄ suspended
//	   │           │           │          │
//	   └───────────┴───────────┴──────────┴─► closed
//
// created: assigned; nothing is open yet (the group callback that
// assigns it does no I/O). restoring: its restore goroutine owns it,
// opening (or taking over from a standby) and restoring its stores; its
// input partitions are paused. running: its processors run on the loop.
// suspended: an aborted commit closed its processors and discarded their
// uncommitted writes; its stores hold the last committed state, and it
// runs again, with fresh processors over the same stores, without
// restoring. closed: its stores are closed (or handed to the closer) and
// it is forgotten.
//
// Standby tasks go created ─► running ─► closed (running: replaying).
type taskState uint8

const (
	taskCreated taskState = iota
	taskRestoring
	taskRunning
	taskSuspended
	taskClosed
)

func (s taskState) String() string {
	switch s {
	case taskCreated:
		return "created"
	case taskRestoring:
		return "restoring"
	case taskRunning:
		return "running"
	case taskSuspended:
		return "suspended"
	case taskClosed:
		return "closed"
	}
	return fmt.Sprintf("taskState(%d)", uint8(s))
}

// activeTransitions lists the transitions an active task may make.
var activeTransitions = map[taskState][]taskState{
	taskCreated:   {taskRestoring, taskRunning, taskClosed},
	taskRestoring: {taskRunning, taskClosed},
	taskRunning:   {taskSuspended, taskClosed},
	taskSuspended: {taskRunning, taskClosed},
}

// standbyTransitions lists the transitions a standby task may make.
var standbyTransitions = map[taskState][]taskState{
	taskCreated: {taskRunning, taskClosed},
	taskRunning: {taskClosed},
}

// illegalTransitionError is a bug of eddy's: a task asked to move where
// its state does not allow. It panics (see lifecycle.to), which the loop
// and the callbacks turn into an InternalPanicError that stops the
// worker.
type illegalTransitionError struct {
	id       processor.TaskID
	kind     string
	from, to taskState
}

func (e *illegalTransitionError) Error() string {
	return fmt.Sprintf("%s task %s: illegal transition from %s to %s", e.kind, e.id, e.from, e.to)
}

// lifecycle is a task's state with its transition table.
type lifecycle struct {
	id    processor.TaskID
	kind  string // "active" or "standby"
	table map[taskState][]taskState
	state taskState
}

// to moves the task to next, panicking with an *illegalTransitionError if
// its table does not allow it.
func (l *lifecycle) to(next taskState) {
	for _, ok := range l.table[l.state] {
		if ok == next {
			l.state = next
			return
		}
	}
	panic(&illegalTransitionError{id: l.id, kind: l.kind, from: l.state, to: next})
}

// activeTask is a task a worker owns, with its resources. The worker's
// loop (or a group callback, under w.mu) reads and changes it, except
// while it is restoring: then its restore goroutine owns stores until
// the loop sees the restore done.
type activeTask struct {
	id    processor.TaskID
	life  lifecycle
	tm    *metrics.TaskMetrics
	store *taskStores // nil until its restore opened them
	t     *task.Task  // nil until it runs
	out   *collector
	// restore is the task's restore job while it is restoring.
	restore *restoreJob
	// held keeps the records polled for the task before it runs, for its
	// first step: the consumer's position is already past them.
	held [][]*kgo.Record
}

func newActiveTask(id processor.TaskID, tm *metrics.TaskMetrics) *activeTask {
	return &activeTask{
		id:   id,
		life: lifecycle{id: id, kind: "active", table: activeTransitions},
		tm:   tm,
		out:  newCollector(),
	}
}

// running reports whether the task's processors run.
func (at *activeTask) running() bool { return at.life.state == taskRunning }
