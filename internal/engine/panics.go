package engine

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"

	"github.com/eddystream/eddy/internal/task"
)

// InternalPanicError is a panic of eddy's own code that the engine
// recovered: a bug. The worker that hit it stops, and Run returns this
// error rather than leaving the worker deadlocked or the process dead.
type InternalPanicError struct {
	// Where names the code that panicked, such as "worker 0 loop".
	Where string
	// Value is what the code panicked with.
	Value any
	// Stack is the panicking goroutine's stack.
	Stack []byte
}

func (e *InternalPanicError) Error() string {
	return fmt.Sprintf("eddy: internal error in %s: panic: %v (this is a bug in eddy; please report it with the stack logged with this error)", e.Where, e.Value)
}

// recoverInternal turns a panic in progress into an *InternalPanicError
// stored in *err. Call it deferred, directly.
func recoverInternal(err *error) {
	if v := recover(); v != nil {
		*err = &InternalPanicError{Where: "a worker's loop", Value: v, Stack: debug.Stack()}
	}
}

// recoverCallback recovers a panic of a group callback (kgo runs them on
// its own goroutines, where a panic would end the process): the worker is
// failed with it and stops at its next loop. w.mu is held.
func (w *worker) recoverCallback(which string) {
	if v := recover(); v != nil {
		err := &InternalPanicError{Where: fmt.Sprintf("worker %d's %s callback", w.idx, which), Value: v, Stack: debug.Stack()}
		if w.mu.fatal == nil {
			w.mu.fatal = err
		}
	}
}

// logPanicStack logs the stack of the panic err carries, if any: once, at
// the place that handles the error, since the error's message leaves it
// out.
func logPanicStack(log *slog.Logger, err error) {
	var user *task.PanicError
	var internal *InternalPanicError
	switch {
	case errors.As(err, &user):
		log.Error("user code panicked", "panic", fmt.Sprint(user.Value), "stack", string(user.Stack))
	case errors.As(err, &internal):
		log.Error("eddy panicked", "where", internal.Where, "panic", fmt.Sprint(internal.Value), "stack", string(internal.Stack))
	}
}
