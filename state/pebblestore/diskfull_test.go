package pebblestore

import (
	"errors"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/eddystream/eddy/state"
)

// diskFull fails every write to a file with ENOSPC while it is on.
func diskFull() *errorfs.Toggle {
	return &errorfs.Toggle{Injector: errorfs.InjectorFunc(func(op errorfs.Op) error {
		if op.Kind.ReadOrWrite() == errorfs.OpIsWrite {
			return syscall.ENOSPC
		}
		return nil
	})}
}

// withinDeadline runs fn and fails the test if it has not returned within
// a minute: a hang, not a slow disk.
func withinDeadline(t *testing.T, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatalf("%s hung", what)
	}
}

// TestFullDiskIsAnError: a write that fails on a full disk (Pebble's fatal
// commit error) returns an error naming the store and the cause, every
// later call fails alike, Close returns, and once the disk has room the
// store opens again with every write applied before the failure. Pebble
// calls its logger's Fatalf there, which used to panic through Apply.
func TestFullDiskIsAnError(t *testing.T) {
	for _, op := range []string{"Apply", "ApplyNoSync+Sync"} {
		t.Run(op, func(t *testing.T) {
			mem := vfs.NewMem()
			full := diskFull()
			fs := errorfs.Wrap(mem, full)
			b := openT(t, "/store", func(c *config) { c.fs = fs })
			if err := b.Apply([]state.Write{put("before", "1")}); err != nil {
				t.Fatal(err)
			}
			full.On()
			var err error
			withinDeadline(t, op, func() {
				if op == "Apply" {
					err = b.Apply([]state.Write{put("during", "2")})
					return
				}
				bulk := b.(state.BulkApplier)
				if err = bulk.ApplyNoSync([]state.Write{put("during", "2")}); err == nil {
					err = bulk.Sync()
				}
			})
			if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "/store") {
				t.Fatalf("%s on a full disk = %v, want an error naming the store and wrapping ENOSPC", op, err)
			}
			if errors.Is(err, state.ErrCorruptStore) {
				t.Errorf("a full disk reads as corruption: %v (the engine would wipe the store)", err)
			}
			if _, _, gerr := b.Get([]byte("before")); !errors.Is(gerr, syscall.ENOSPC) {
				t.Errorf("Get after the failure = %v, want the failure", gerr)
			}
			if aerr := b.Apply([]state.Write{put("after", "3")}); !errors.Is(aerr, syscall.ENOSPC) {
				t.Errorf("Apply after the failure = %v, want the failure", aerr)
			}
			withinDeadline(t, "Close", func() { _ = b.Close() })
			full.Off()
			b = openT(t, "/store", func(c *config) { c.fs = mem })
			defer b.Close()
			got := keys(t, b)
			if !slices.Contains(got, "before=1") || slices.Contains(got, "after=3") {
				t.Errorf("after the disk has room again: %q, want before=1 kept (and during=2 at most)", got)
			}
		})
	}
}
