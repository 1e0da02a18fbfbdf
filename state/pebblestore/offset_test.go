package pebblestore

import (
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/eddystream/eddy/state"
)

func recordedOffset(t *testing.T, b state.Backend) (int64, bool) {
	t.Helper()
	next, ok, err := b.(state.OffsetRecorder).RecordedOffset()
	if err != nil {
		t.Fatalf("RecordedOffset: %v", err)
	}
	return next, ok
}

func TestRecordedOffsetSurvivesReopen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	b := openT(t, dir)
	if next, ok := recordedOffset(t, b); ok {
		t.Fatalf("a new store has recorded offset %d", next)
	}
	rec := b.(state.OffsetRecorder)
	// Keys that look like the store's metadata stay the user's.
	if err := rec.ApplyAt([]state.Write{put("\x00offset", "mine"), put("\x00format", "mine too"), put("a", "1")}, 10, true); err != nil {
		t.Fatal(err)
	}
	if err := rec.ApplyAt(nil, 25, true); err != nil {
		t.Fatal(err)
	}
	if err := rec.ApplyAt([]state.Write{put("b", "2")}, -1, true); err == nil {
		t.Error("ApplyAt with a negative offset succeeded")
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := rec.RecordedOffset(); !errors.Is(err, state.ErrClosed) {
		t.Errorf("RecordedOffset after Close: err = %v, want ErrClosed", err)
	}

	b = openT(t, dir)
	defer b.Close()
	if next, ok := recordedOffset(t, b); !ok || next != 25 {
		t.Errorf("after a reopen the recorded offset is %d (ok %v), want 25", next, ok)
	}
	if got, want := keys(t, b), []string{"\x00format=mine too", "\x00offset=mine", "a=1"}; !slices.Equal(got, want) {
		t.Errorf("keys = %q, want %q", got, want)
	}
	if n, err := b.(state.Counter).ApproximateCount(); err != nil || n != 3 {
		t.Errorf("ApproximateCount = %d, %v; want 3, the user's keys", n, err)
	}
}

// TestApplyAtNoSyncIsDurableAfterSync: a batch and its offset applied
// without sync may be lost together in a crash, until Sync.
func TestApplyAtNoSyncIsDurableAfterSync(t *testing.T) {
	mem := vfs.NewCrashableMem()
	withMem := func(fs vfs.FS) Option { return func(c *config) { c.fs = fs } }
	b := openT(t, "/store", withMem(mem))
	rec := b.(state.OffsetRecorder)
	if err := rec.ApplyAt([]state.Write{put("a", "1")}, 1, true); err != nil {
		t.Fatal(err)
	}
	if err := rec.ApplyAt([]state.Write{put("b", "2")}, 2, false); err != nil {
		t.Fatal(err)
	}
	lost := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
	if err := b.(state.BulkApplier).Sync(); err != nil {
		t.Fatal(err)
	}
	synced := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	b = openT(t, "/store", withMem(lost))
	if next, ok := recordedOffset(t, b); !ok || next != 1 {
		t.Errorf("after losing the unsynced batch: recorded offset %d (ok %v), want 1", next, ok)
	}
	if got, want := keys(t, b), []string{"a=1"}; !slices.Equal(got, want) {
		t.Errorf("after losing the unsynced batch: %q, want %q", got, want)
	}
	b.Close()
	b = openT(t, "/store", withMem(synced))
	defer b.Close()
	if next, ok := recordedOffset(t, b); !ok || next != 2 {
		t.Errorf("after Sync: recorded offset %d (ok %v), want 2", next, ok)
	}
}

// TestIngestRunThenRecordOffset is the restore path: runs ingested, then
// the end offset recorded on its own.
func TestIngestRunThenRecordOffset(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	b := openT(t, dir)
	run := []state.Write{put("a", "1"), put("b", "2"), put("c", "3")}
	if err := b.(state.RunIngester).IngestRun(len(run), func(i int) state.Write { return run[i] }); err != nil {
		t.Fatal(err)
	}
	if err := b.(state.OffsetRecorder).ApplyAt(nil, 3, true); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = openT(t, dir)
	defer b.Close()
	if next, ok := recordedOffset(t, b); !ok || next != 3 {
		t.Errorf("recorded offset %d (ok %v), want 3", next, ok)
	}
	if got, want := keys(t, b), []string{"a=1", "b=2", "c=3"}; !slices.Equal(got, want) {
		t.Errorf("keys = %q, want %q", got, want)
	}
}

// TestOldFormatReadsAsCorrupt: a store of the layout before format 2, with
// the user's keys bare and no format marker, must not be read as one of
// today's.
func TestOldFormatReadsAsCorrupt(t *testing.T) {
	for name, write := range map[string]func(db *pebble.DB) error{
		"untagged keys": func(db *pebble.DB) error {
			return db.Set([]byte("\x01user-key"), []byte("v"), pebble.Sync)
		},
		"another format": func(db *pebble.DB) error {
			return db.Set(formatKey, []byte("eddy-pebblestore-1"), pebble.Sync)
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "store")
			db, err := pebble.Open(dir, &pebble.Options{Logger: slogLogger{logger: slog.New(slog.DiscardHandler), dir: dir}})
			if err != nil {
				t.Fatal(err)
			}
			if err := write(db); err != nil {
				t.Fatal(err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			b, err := Open(dir, quiet)
			if !errors.Is(err, state.ErrCorruptStore) {
				if b != nil {
					b.Close()
				}
				t.Fatalf("Open of a store of another format: err = %v, want ErrCorruptStore", err)
			}
			t.Logf("error: %v", err)
			// The engine then destroys it and opens it anew.
			if err := Destroy(dir); err != nil {
				t.Fatal(err)
			}
			b = openT(t, dir)
			defer b.Close()
			if got := keys(t, b); len(got) != 0 {
				t.Errorf("a store destroyed and opened again holds %q", got)
			}
		})
	}
}
