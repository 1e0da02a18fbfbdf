package engine

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddystream/eddy/processor"
)

// The abort hook lets eddy bench measure what one aborted transaction
// costs a worker: the time from the abort until every task it had running
// runs again. It is not part of eddy's behaviour: nothing happens unless
// RequestAbort is called, and the loop's check costs one atomic load.

// abortHook holds the running engines by application id and the workers'
// abort requests and measurements in progress.
var abortHook struct {
	sync.Mutex
	engines map[string][]*Engine
	// pending holds the requests the workers' loops have not taken yet;
	// waiting, the aborts whose tasks are not all running again.
	pending map[*worker]func(worker int, took time.Duration)
	waiting map[*worker]*abortWait
	// active counts the entries of pending and waiting: the loop's fast
	// path.
	active atomic.Int32
}

// abortWait is one worker's abort being measured.
type abortWait struct {
	start time.Time
	tasks map[processor.TaskID]bool // running before the abort, not yet again
	done  func(worker int, took time.Duration)
	// reopened is set once the abort has reopened the tasks: from then on
	// a task missing from the worker was revoked.
	reopened bool
}

// RequestAbort asks each worker of the running engine of application appID to abort its open
// transaction at its next step, as a failed commit would, and calls done once with how long it
// took, per worker, from the abort until every task it had running is running again.
// For eddy bench only. It reports false if no engine of appID runs in this process.
//
// Under at-least-once, where no transaction is open, the worker rewinds to
// its last commit as a failed commit does. If several engines of appID run
// in this process, each of their workers is asked, and worker is the index
// within its engine. done runs on the worker's loop and must not block. It
// is not called for a worker that fails or stops before its tasks run
// again, nor if a task it had running is revoked and no other task starts
// running afterwards.
func RequestAbort(appID string, done func(worker int, took time.Duration)) bool {
	abortHook.Lock()
	defer abortHook.Unlock()
	asked := false
	for _, e := range abortHook.engines[appID] {
		e.workers.Lock()
		for _, w := range e.workers.list {
			if abortHook.pending == nil {
				abortHook.pending = map[*worker]func(int, time.Duration){}
			}
			if _, ok := abortHook.pending[w]; !ok {
				abortHook.active.Add(1)
			}
			abortHook.pending[w] = done
			asked = true
		}
		e.workers.Unlock()
	}
	return asked
}

// registerForAbort makes e a target of RequestAbort until the returned
// function is called (when Run returns).
func (e *Engine) registerForAbort() (unregister func()) {
	appID := e.cfg.ApplicationID
	abortHook.Lock()
	if abortHook.engines == nil {
		abortHook.engines = map[string][]*Engine{}
	}
	abortHook.engines[appID] = append(abortHook.engines[appID], e)
	abortHook.Unlock()
	return func() {
		abortHook.Lock()
		defer abortHook.Unlock()
		list := abortHook.engines[appID]
		for i, x := range list {
			if x == e {
				list = append(list[:i:i], list[i+1:]...)
				break
			}
		}
		if len(list) == 0 {
			delete(abortHook.engines, appID)
		} else {
			abortHook.engines[appID] = list
		}
		// Forget what the engine's workers (replaced ones included) left.
		for w := range abortHook.pending {
			if w.e == e {
				delete(abortHook.pending, w)
				abortHook.active.Add(-1)
			}
		}
		for w := range abortHook.waiting {
			if w.e == e {
				delete(abortHook.waiting, w)
				abortHook.active.Add(-1)
			}
		}
	}
}

// abortRequested reports whether RequestAbort asked w to abort and w has
// not done so yet. Called by step.
func (w *worker) abortRequested() bool {
	if abortHook.active.Load() == 0 {
		return false
	}
	abortHook.Lock()
	defer abortHook.Unlock()
	_, ok := abortHook.pending[w]
	return ok
}

// abortOnRequest is step when RequestAbort asked w to abort: it aborts
// the open transaction (under at-least-once, rewinds to the last commit)
// as a failed commit does, the running tasks resetting to their last
// commit (resetTasks), and starts measuring until they all run again (see
// abortTaskRunning). The records of this poll are put back, as are those
// read before in the transaction. w.mu is held.
func (w *worker) abortOnRequest(fetches kgo.Fetches) error {
	start := time.Now()
	w.noteReads(fetches)
	wait := &abortWait{start: start, tasks: map[processor.TaskID]bool{}}
	for _, at := range w.runningTasks(nil) {
		wait.tasks[at.t.ID()] = true
	}
	abortHook.Lock()
	wait.done = abortHook.pending[w]
	delete(abortHook.pending, w)
	if abortHook.waiting == nil {
		abortHook.waiting = map[*worker]*abortWait{}
	}
	// Set before the abort: tasks without logged stores run again within it.
	abortHook.waiting[w] = wait
	abortHook.Unlock()
	w.log.Info("aborting on request (eddy bench)", "running_tasks", len(wait.tasks))
	var err error
	if w.sess != nil {
		err = w.endTransaction(w.prodCtx, start, false, true)
	} else {
		err = w.rewind()
	}
	if err != nil {
		abortHook.Lock()
		if abortHook.waiting[w] == wait {
			delete(abortHook.waiting, w)
			abortHook.active.Add(-1)
		}
		abortHook.Unlock()
		return err
	}
	abortHook.Lock()
	wait.reopened = true
	abortHook.Unlock()
	w.abortTaskRunning() // done at once if no task was running, or all run again
	return nil
}

// abortTaskRunning hears that tasks ids run again (none: just check), and
// calls the measured abort's done once every task that ran before it runs
// again or, after the abort reopened them, is no longer the worker's.
// Called where tasks start running. w.mu is held.
func (w *worker) abortTaskRunning(ids ...processor.TaskID) {
	if abortHook.active.Load() == 0 {
		return
	}
	abortHook.Lock()
	wait := abortHook.waiting[w]
	if wait == nil {
		abortHook.Unlock()
		return
	}
	for _, id := range ids {
		delete(wait.tasks, id)
	}
	for t := range wait.tasks {
		if wait.reopened && w.mu.tasks[t] == nil {
			delete(wait.tasks, t) // revoked meanwhile: it will not run here again
		}
	}
	if len(wait.tasks) > 0 {
		abortHook.Unlock()
		return
	}
	delete(abortHook.waiting, w)
	abortHook.active.Add(-1)
	abortHook.Unlock()
	took := time.Since(wait.start)
	w.log.Info("tasks running again after the requested abort", "took", took.Round(time.Millisecond))
	wait.done(w.idx, took)
}
