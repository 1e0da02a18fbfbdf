package engine

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestNotReadySaysWhy: a worker that lost its tasks, or whose group
// membership fails, says so, rather than what its last assignment implied
// (after a session expiry /readyz used to say the tasks were restoring).
func TestNotReadySaysWhy(t *testing.T) {
	e := &Engine{cfg: Config{SessionTimeout: 10 * time.Second, TaskTimeout: time.Minute}}
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

}
