package engine

import (
	"log/slog"
	"runtime/debug"
	"sync"
	"time"
)

// closer closes tasks' stores off the group callbacks, which must not wait
// on the disk: applying a revoked task's last committed writes, writing its
// checkpoint and closing its stores (a Pebble close flushes) happen on a
// goroutine per task. The engine owns the closer and waits for it before
// Run returns. A task assigned again to this process meanwhile waits for
// its directory's lock (lockWait) in its restore goroutine. Run waits for
// the closes for up to ShutdownTimeout (closer.waitFor).
type closer struct {
	log *slog.Logger
	wg  sync.WaitGroup
}

// close closes ts on a goroutine of its own. apply, if not nil, first
// applies the task's committed writes to the stores and advances their
// checkpoint, which is then written; if it fails (or apply is nil and
// checkpoint is false) the checkpoint stays as it was on disk, valid for
// what the stores held when they were last checkpointed.
func (c *closer) close(ts *taskStores, apply func() error, checkpoint bool) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer func() {
			if err := ts.close(); err != nil {
				c.log.Warn("close task stores", "task", ts.id, "err", err)
			}
		}()
		defer func() {
			// A bug of eddy's (store errors are errors): log it rather
			// than end the process; the checkpoint stays as it was.
			if v := recover(); v != nil {
				c.log.Error("closing a task's stores panicked", "task", ts.id, "panic", v, "stack", string(debug.Stack()))
			}
		}()
		if apply != nil {
			if err := apply(); err != nil {
				c.log.Warn("apply a closed task's committed writes; its stores restore the rest from the changelog", "task", ts.id, "err", err)
				return
			}
		}
		if checkpoint || apply != nil {
			if err := ts.writeCheckpoint(); err != nil {
				c.log.Warn("write checkpoint at close", "task", ts.id, "err", err)
			}
		}
	}()
}

// waitFor waits until every close has finished, for up to d, and
// reports whether they all did.
func (c *closer) waitFor(d time.Duration) bool {
	done := make(chan struct{})
	go func() {
		c.wg.Wait()
		close(done)
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		c.log.Error("closing the tasks' stores has not finished; giving up on them", "waited", d)
		return false
	}
}
