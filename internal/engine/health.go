package engine

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// workerHealth is what a worker last told the probes. The worker publishes
// a new one (publishHealth) whenever it changes; the probes read it from
// their own goroutines.
type workerHealth struct {
	// restoring and running count the worker's active tasks by state.
	restoring, running int
	// stall is a copy of the worker's streak of failed commits.
	stall stall
}

// timedError is an error with the time it happened.
type timedError struct {
	err error
	at  time.Time
}

// publishHealth publishes the worker's health and its task counts. w.mu
// is held.
func (w *worker) publishHealth() {
	h := &workerHealth{stall: w.stall}
	for _, at := range w.mu.tasks {
		if at.running() {
			h.running++
		} else {
			h.restoring++
		}
	}
	w.health.Store(h)
	w.wm.SetTaskCounts(h.restoring, h.running, int(w.standbys.Load()))
}

// OnGroupManageError implements kgo.HookGroupManageError: the worker's
// group membership failed (a join, a sync or a heartbeat), which kgo
// retries. The probes report it until the worker is assigned again.
func (w *worker) OnGroupManageError(err error) {
	w.groupErr.Store(&timedError{err: err, at: time.Now()})
}

var _ kgo.HookGroupManageError = (*worker)(nil)

// Limits on how long one turn of a worker's loop may take before the
// probes say so. A turn is a poll, the processing of what it returned
// (user code included) and at most one commit attempt: 30 s, shared by a
// transaction's end and the next begin, plus up to 30 s for an abort
// after a failed end. Only code that does not return (a processor in an
// endless loop, a disk that never answers) takes minutes. /readyz fails
// past loopSlow, /healthz past loopStuck, so that an orchestrator
// restarts the instance.
const (
	loopSlow  = 2 * time.Minute
	loopStuck = 5 * time.Minute
)

// loopAge is how long ago the worker's loop last came round (0 before it
// started).
func (w *worker) loopAge() time.Duration {
	if t := w.loopTurn.Load(); t != 0 {
		return time.Since(time.Unix(0, t))
	}
	return 0
}

// stuck says why the worker's loop is stuck, or "" if it is not.
func (w *worker) stuck(limit time.Duration) string {
	if age := w.loopAge(); age > limit {
		return fmt.Sprintf("worker %d's loop has not come round for %v (a processor that does not return, or a store that does not answer?)", w.idx, age.Round(time.Second))
	}
	return ""
}

// notReady says why the worker is not ready, or "" when it is.
func (w *worker) notReady() string {
	if why := w.stuck(loopSlow); why != "" {
		return why
	}
	if w.lost.Load() {
		return fmt.Sprintf("worker %d lost its tasks (its group session expired: was the broker unreachable, or the worker stalled?) and is rejoining the group", w.idx)
	}
	if ge := w.groupErr.Load(); ge != nil && time.Since(ge.at) < w.e.cfg.SessionTimeout && ge.at.After(w.assignedAt()) {
		return fmt.Sprintf("worker %d cannot keep its group membership: %v (is the group coordinator unreachable?)", w.idx, ge.err)
	}
	if _, ok := w.bal.LastAssignment(); !ok {
		return fmt.Sprintf("starting: worker %d has no assignment yet", w.idx)
	}
	h := w.health.Load()
	if h == nil {
		return fmt.Sprintf("starting: worker %d has not run its loop yet", w.idx)
	}
	var why []string
	if !h.stall.since.IsZero() {
		why = append(why, fmt.Sprintf("worker %d's commits have failed for %v (%d attempts; the task timeout is %v): %v",
			w.idx, time.Since(h.stall.since).Round(time.Second), h.stall.attempts, w.e.cfg.TaskTimeout, h.stall.cause))
	}
	if h.restoring > 0 {
		why = append(why, fmt.Sprintf("worker %d has %d active tasks restoring their state", w.idx, h.restoring))
	}
	return strings.Join(why, "; ")
}

// assignedAt returns when the worker last received an assignment.
func (w *worker) assignedAt() time.Time {
	if t := w.lastAssigned.Load(); t != nil {
		return *t
	}
	return time.Time{}
}

// Alive reports whether the engine runs: nil until it fails or starts to
// shut down.
func (e *Engine) Alive() error {
	if err := e.failed.Load(); err != nil {
		return *err
	}
	if e.stopping.Load() {
		return errors.New("shutting down")
	}
	e.workers.Lock()
	defer e.workers.Unlock()
	for _, w := range e.workers.list {
		if why := w.stuck(loopStuck); why != "" {
			return errors.New(why)
		}
	}
	return nil
}

// Ready reports whether the engine processes all it was assigned: nil
// once every worker has its assignment and runs every active task, with
// commits that succeed. Otherwise the error says why, for each worker that
// is not ready.
func (e *Engine) Ready() error {
	if err := e.Alive(); err != nil {
		return err
	}
	if e.bootstrapping.Load() {
		return errors.New("starting: the global stores are bootstrapping from their topics")
	}
	e.workers.Lock()
	ws := append([]*worker(nil), e.workers.list...)
	e.workers.Unlock()
	if len(ws) < e.cfg.Workers {
		return fmt.Errorf("starting: %d of %d workers created", len(ws), e.cfg.Workers)
	}
	var why []string
	for _, w := range ws {
		if r := w.notReady(); r != "" {
			why = append(why, r)
		}
	}
	if len(why) > 0 {
		return errors.New(strings.Join(why, "; "))
	}
	return nil
}
