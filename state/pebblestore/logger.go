package pebblestore

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/cockroachdb/pebble/v2"
)

// slogLogger routes Pebble's log messages to slog. Pebble's default logger
// writes every message, including routine ones such as WAL replay at open,
// to the standard log package; with dozens of stores that drowns the
// application's own logs.
type slogLogger struct {
	logger *slog.Logger
	dir    string
}

var _ pebble.Logger = slogLogger{}

// Infof logs Pebble's routine messages at Debug level.
func (l slogLogger) Infof(format string, args ...any) {
	l.log(slog.LevelDebug, format, args)
}

// Errorf logs Pebble's errors, such as failed background compactions.
func (l slogLogger) Errorf(format string, args ...any) {
	l.log(slog.LevelError, format, args)
}

// Fatalf logs and panics with a *fatalError. Pebble calls it when it
// cannot go on safely (a WAL write that failed on a full disk, a MANIFEST
// it cannot write) and does not expect it to return: its default logger
// exits the process. When the call happens inside a call of the store's
// (a commit, above all), the store recovers the panic and returns it as an
// error, and fails every later call: the engine then fails the task with
// the store's name and path instead of the process dying or the panic
// unwinding through the engine. A Fatalf on one of Pebble's background
// goroutines (a flush or compaction that cannot write its MANIFEST) still
// ends the process, loudly: nothing above that goroutine could recover it.
func (l slogLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.logger.Error(msg, "store", l.dir)
	fe := &fatalError{msg: fmt.Sprintf("pebble: fatal error in store %s: %s", l.dir, msg)}
	for _, a := range args {
		if err, ok := a.(error); ok {
			fe.err = err
			break
		}
	}
	panic(fe)
}

// fatalError is what Fatalf panics with: Pebble's message and the error
// among its arguments, if any, so that callers can match the cause
// (syscall.ENOSPC, say).
type fatalError struct {
	msg string
	err error
}

func (e *fatalError) Error() string { return e.msg }
func (e *fatalError) Unwrap() error { return e.err }

func (l slogLogger) log(level slog.Level, format string, args []any) {
	ctx := context.Background()
	if !l.logger.Enabled(ctx, level) {
		return
	}
	l.logger.Log(ctx, level, fmt.Sprintf(format, args...), "store", l.dir)
}
