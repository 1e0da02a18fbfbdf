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

// Fatalf logs and panics. Pebble calls it when it cannot go on safely (for
// example when it cannot write its MANIFEST), and does not expect it to
// return; its default logger exits the process instead, which loses the
// stack.
func (l slogLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.logger.Error(msg, "store", l.dir)
	panic(fmt.Sprintf("pebblestore: fatal error in store %s: %s", l.dir, msg))
}

func (l slogLogger) log(level slog.Level, format string, args []any) {
	ctx := context.Background()
	if !l.logger.Enabled(ctx, level) {
		return
	}
	l.logger.Log(ctx, level, fmt.Sprintf(format, args...), "store", l.dir)
}
