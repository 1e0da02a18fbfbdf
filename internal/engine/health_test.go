package engine

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/eddystream/eddy/internal/settings"
)

// TestNotReadySaysWhy: a worker that lost its tasks, or whose group
// membership fails, says so, rather than what its last assignment implied
// (after a session expiry /readyz used to say the tasks were restoring).
func TestNotReadySaysWhy(t *testing.T) {
	e := &Engine{cfg: Config{Settings: settings.Settings{SessionTimeout: 10 * time.Second, TaskTimeout: time.Minute}}}
	w := &worker{e: e, idx: 1}

	w.lost.Store(true)
	if got := w.notReady(); !strings.Contains(got, "worker 1 lost its tasks") {
		t.Errorf("after its tasks were lost: %q", got)
	}

	w.lost.Store(false)
	w.OnGroupManageError(errors.New("unable to dial: connection refused"))
	if got := w.notReady(); !strings.Contains(got, "cannot keep its group membership: unable to dial") {
		t.Errorf("after a group error: %q", got)
	}

	w.groupErr.Store(nil)

	// A loop that has not come round for minutes (a processor that does
	// not return) fails readiness, then liveness.
	w.loopTurn.Store(time.Now().Add(-loopSlow - time.Minute).UnixNano())
	if got := w.notReady(); !strings.Contains(got, "loop has not come round for 3m") {
		t.Errorf("with the loop stuck for 3m: %q", got)
	}
	e.workers.list = []*worker{w}
	if err := e.Alive(); err != nil {
		t.Errorf("Alive with the loop stuck for 3m = %v, want nil until %v", err, loopStuck)
	}
	w.loopTurn.Store(time.Now().Add(-loopStuck - time.Minute).UnixNano())
	if err := e.Alive(); err == nil || !strings.Contains(err.Error(), "loop has not come round") {
		t.Errorf("Alive with the loop stuck for 6m = %v", err)
	}
}
