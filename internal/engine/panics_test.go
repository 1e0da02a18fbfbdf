package engine

import (
	"errors"
	"testing"
)

// TestLockedRecoversAPanicAndUnlocks: a panic under the worker's mutex
// comes back as an InternalPanicError with the mutex released, so that the
// worker's deferred shutdown can take it (it used to deadlock there).
func TestLockedRecoversAPanicAndUnlocks(t *testing.T) {
	var w worker
	err := w.locked(func() error { panic("bug") })
	var ip *InternalPanicError
	if !errors.As(err, &ip) || ip.Value != "bug" || len(ip.Stack) == 0 {
		t.Fatalf("locked = %v, want an InternalPanicError with the value and a stack", err)
	}
	if !w.mu.TryLock() {
		t.Fatal("w.mu is still held after the panic")
	}
	w.mu.Unlock()
	if err := w.locked(func() error { return nil }); err != nil {
		t.Fatalf("locked after a recovered panic = %v", err)
	}
}

// TestCallbackPanicFailsTheWorker: a group callback's panic (on kgo's
// goroutine, where it would end the process) becomes the worker's fatal
// error, which its loop returns.
func TestCallbackPanicFailsTheWorker(t *testing.T) {
	var w worker
	func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		defer w.recoverCallback("assigned")
		panic("bug in a callback")
	}()
	var ip *InternalPanicError
	if !errors.As(w.mu.fatal, &ip) || ip.Value != "bug in a callback" {
		t.Fatalf("fatal = %v, want the callback's panic", w.mu.fatal)
	}
}
