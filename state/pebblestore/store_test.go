package pebblestore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/eddystream/eddy/state"
	"github.com/eddystream/eddy/state/statetest"
)

// quiet keeps Pebble's messages, and the corruption it is shown, out of
// the test output.
var quiet = WithLogger(slog.New(slog.DiscardHandler))

func openT(t *testing.T, dir string, opts ...Option) state.Backend {
	t.Helper()
	b, err := Open(dir, append([]Option{quiet}, opts...)...)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return b
}

func TestConformance(t *testing.T) {
	statetest.RunBackendTests(t, func(t *testing.T) state.Backend {
		return openT(t, filepath.Join(t.TempDir(), "store"))
	})
}

func TestConformanceSmallMemTable(t *testing.T) {
	// With a 64 KiB memtable the larger tests flush and compact while they
	// run, so reads cross memtables and sstables.
	statetest.RunBackendTests(t, func(t *testing.T) state.Backend {
		return openT(t, filepath.Join(t.TempDir(), "store"), WithMemTableSize(64<<10))
	})
}

func put(key, value string) state.Write {
	return state.Write{Key: []byte(key), Value: []byte(value)}
}

func keys(t *testing.T, b state.Backend) []string {
	t.Helper()
	it, err := b.Range(nil, nil)
	if err != nil {
		t.Fatalf("Range: %v", err)
	}
	defer it.Close()
	var out []string
	for it.Next() {
		out = append(out, string(it.Key())+"="+string(it.Value()))
	}
	if err := it.Err(); err != nil {
		t.Fatalf("Range: %v", err)
	}
	return out
}

func TestDataSurvivesReopen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	b := openT(t, dir)
	if err := b.Apply([]state.Write{put("a", "1"), put("b", "2"), put("c", "3")}); err != nil {
		t.Fatal(err)
	}
	if err := b.(*store).db.Flush(); err != nil { // "a".."c" in an sstable
		t.Fatal(err)
	}
	if err := b.Apply([]state.Write{put("b", "22"), {Key: []byte("c"), Delete: true}, put("d", "")}); err != nil {
		t.Fatal(err) // and these only in the WAL
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	b = openT(t, dir)
	defer b.Close()
	if got, want := keys(t, b), []string{"a=1", "b=22", "d="}; !slices.Equal(got, want) {
		t.Errorf("after reopen: %q, want %q", got, want)
	}
}

// TestRangeDeleteSurvivesReopen: a range tombstone over keys in an
// sstable and in the memtable keeps them deleted after a reopen, whether
// the tombstone was still in the WAL or had been flushed, while keys
// written after it survive.
func TestRangeDeleteSurvivesReopen(t *testing.T) {
	for _, flush := range []bool{false, true} {
		t.Run(fmt.Sprintf("flushed=%v", flush), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "store")
			b := openT(t, dir)
			var batch []state.Write
			for i := range 100 {
				batch = append(batch, put(fmt.Sprintf("seg%d/%02d", i/50, i%50), "v"))
			}
			if err := b.Apply(batch); err != nil {
				t.Fatal(err)
			}
			if err := b.(*store).db.Flush(); err != nil { // seg0 and seg1 in an sstable
				t.Fatal(err)
			}
			rec := b.(state.OffsetRecorder)
			if err := rec.ApplyAt([]state.Write{
				put("seg0/new", "memtable"),
				{Key: []byte("seg0/"), End: []byte("seg0/\xff"), DeleteRange: true},
				put("seg0/99", "after"),
			}, 42, true); err != nil {
				t.Fatal(err)
			}
			if flush {
				if err := b.(*store).db.Flush(); err != nil {
					t.Fatal(err)
				}
			}
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}

			b = openT(t, dir)
			defer b.Close()
			got := keys(t, b)
			if len(got) != 51 || got[0] != "seg0/99=after" || got[1] != "seg1/00=v" {
				t.Errorf("after reopen the store holds %d keys, first %q; want seg0/99=after and the 50 keys of seg1", len(got), got[:min(2, len(got))])
			}
			if next, ok, err := b.(state.OffsetRecorder).RecordedOffset(); err != nil || !ok || next != 42 {
				t.Errorf("after reopen RecordedOffset = %d, %v, %v; want 42", next, ok, err)
			}
		})
	}
}

// TestApplyIsDurable crashes a store right after Apply returns, losing
// everything that was not synced, and checks that the batch survives.
func TestApplyIsDurable(t *testing.T) {
	mem := vfs.NewCrashableMem()
	withMem := func(fs vfs.FS) Option { return func(c *config) { c.fs = fs } }
	b := openT(t, "/store", withMem(mem))
	if err := b.Apply([]state.Write{put("committed", "yes"), put("other", "1")}); err != nil {
		t.Fatal(err)
	}
	crashed := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	b = openT(t, "/store", withMem(crashed))
	defer b.Close()
	if got, want := keys(t, b), []string{"committed=yes", "other=1"}; !slices.Equal(got, want) {
		t.Errorf("after a crash right after Apply: %q, want %q", got, want)
	}
}

// TestApplyNoSyncIsDurableAfterSync: batches applied without sync may be
// lost in a crash until Sync, and are all there after it.
func TestApplyNoSyncIsDurableAfterSync(t *testing.T) {
	mem := vfs.NewCrashableMem()
	withMem := func(fs vfs.FS) Option { return func(c *config) { c.fs = fs } }
	b := openT(t, "/store", withMem(mem))
	bulk, ok := b.(state.BulkApplier)
	if !ok {
		t.Fatal("the Pebble store is not a state.BulkApplier")
	}
	if err := bulk.ApplyNoSync([]state.Write{put("a", "1")}); err != nil {
		t.Fatal(err)
	}
	if err := bulk.ApplyNoSync([]state.Write{put("b", "2"), put("c", "3")}); err != nil {
		t.Fatal(err)
	}
	lost := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
	if err := bulk.Sync(); err != nil {
		t.Fatal(err)
	}
	synced := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := bulk.Sync(); !errors.Is(err, state.ErrClosed) {
		t.Errorf("Sync after Close = %v, want ErrClosed", err)
	}

	b = openT(t, "/store", withMem(lost))
	if got := keys(t, b); len(got) != 0 {
		t.Errorf("unsynced batches survived a crash: %q (the test's crash model drops all unsynced data)", got)
	}
	b.Close()
	b = openT(t, "/store", withMem(synced))
	defer b.Close()
	if got, want := keys(t, b), []string{"a=1", "b=2", "c=3"}; !slices.Equal(got, want) {
		t.Errorf("after Sync and a crash: %q, want %q", got, want)
	}
}

// TestDamagedWALTailReadsAsTornWrite pins a limit of detection: damage to
// the last record of the newest WAL looks like a write torn by a crash, and
// Pebble drops the record without an error, as RocksDB does by default.
// The offset recorded in the same batch (state.OffsetRecorder) is lost with
// it, so the store itself tells that it is behind the checkpoint file:
// its recorded offset is the one of the last surviving batch.
func TestDamagedWALTailReadsAsTornWrite(t *testing.T) {
	dir := writeStore(t)
	logs, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil || len(logs) == 0 {
		t.Fatalf("no WAL in the store (err %v)", err)
	}
	slices.Sort(logs)
	garble(t, logs[len(logs)-1], -100, 50) // in the last record
	b := openT(t, dir)
	defer b.Close()
	if _, ok, err := b.Get([]byte("in-wal-2")); ok || err != nil {
		t.Errorf("Get of the damaged last record: ok %v, err %v; Pebble now detects this, update the docs of Open", ok, err)
	}
	if _, ok, err := b.Get([]byte("in-wal-1")); !ok || err != nil {
		t.Errorf("Get of the record before the damage: ok %v, err %v; want it kept", ok, err)
	}
	const checkpointed = 1002 // what a checkpoint written after the last batch holds
	next, ok, err := b.(state.OffsetRecorder).RecordedOffset()
	if err != nil || !ok || next != 1001 {
		t.Errorf("RecordedOffset after losing the last batch = %d, %v, %v; want 1001, the offset of the batch before it", next, ok, err)
	}
	if next >= checkpointed {
		t.Errorf("the recorded offset %d does not show that the store is behind the checkpoint's %d", next, checkpointed)
	}
}

func TestApproximateCount(t *testing.T) {
	b := openT(t, filepath.Join(t.TempDir(), "store"))
	defer b.Close()
	s := b.(*store)
	wantCount := func(when string, want int64) {
		t.Helper()
		got, err := s.ApproximateCount()
		if err != nil || got != want {
			t.Errorf("%s: ApproximateCount = %d, %v; want %d", when, got, err, want)
		}
	}
	wantCount("empty", 0)
	var batch []state.Write
	for i := range 1000 {
		batch = append(batch, put(fmt.Sprintf("k%04d", i), "v"))
	}
	if err := b.Apply(batch); err != nil {
		t.Fatal(err)
	}
	wantCount("1000 keys in the memtable", 1000)
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	wantCount("1000 keys in an sstable", 1000)

	var deletes []state.Write
	for i := range 100 {
		deletes = append(deletes, state.Write{Key: fmt.Appendf(nil, "k%04d", i), Delete: true})
	}
	if err := b.Apply(deletes); err != nil {
		t.Fatal(err)
	}
	wantCount("100 deletes in the memtable", 900)
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	wantCount("100 deletes in a second sstable", 900)
	if err := s.db.Compact(context.Background(), []byte{userTag, 'k'}, []byte{userTag, 'l'}, false); err != nil {
		t.Fatal(err)
	}
	wantCount("after compaction", 900)
}

func TestApproximateSize(t *testing.T) {
	b := openT(t, filepath.Join(t.TempDir(), "store"))
	defer b.Close()
	s := b.(*store)
	size := func() int64 {
		t.Helper()
		n, err := s.ApproximateSize()
		if err != nil {
			t.Fatalf("ApproximateSize: %v", err)
		}
		return n
	}
	if got := size(); got != 0 {
		t.Errorf("empty store: ApproximateSize = %d, want 0", got)
	}
	// Random values, which do not compress, keep the sstable near the raw
	// size of the data.
	rnd := rand.New(rand.NewPCG(1, 2))
	var batch []state.Write
	for i := range 1000 {
		value := make([]byte, 100)
		for j := range value {
			value[j] = byte(rnd.Uint32())
		}
		batch = append(batch, state.Write{Key: fmt.Appendf(nil, "k%04d", i), Value: value})
	}
	const raw = 1000 * (5 + 100)
	if err := b.Apply(batch); err != nil {
		t.Fatal(err)
	}
	if got := size(); got != raw {
		t.Errorf("1000 keys in the memtable: ApproximateSize = %d, want their %d raw bytes", got, raw)
	}
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := size(); got < raw*9/10 || got > raw*3/2 {
		t.Errorf("1000 keys in an sstable: ApproximateSize = %d, want about %d", got, raw)
	}

	var deletes []state.Write
	for _, w := range batch {
		deletes = append(deletes, state.Write{Key: w.Key, Delete: true})
	}
	if err := b.Apply(deletes); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	before := size()
	if err := s.db.Compact(context.Background(), []byte{userTag, 'k'}, []byte{userTag, 'l'}, false); err != nil {
		t.Fatal(err)
	}
	if got := size(); got >= before || got > raw/10 {
		t.Errorf("after deleting every key and compacting: ApproximateSize = %d, want it well below %d (%d before compaction)", got, raw, before)
	}
}

func TestSharedCache(t *testing.T) {
	cache := pebble.NewCache(1 << 20)
	dir := t.TempDir()
	var stores []state.Backend
	for i := range 3 {
		stores = append(stores, openT(t, filepath.Join(dir, fmt.Sprint(i)), WithCache(cache)))
	}
	cache.Unref() // the stores hold their own references
	for i, b := range stores {
		if err := b.Apply([]state.Write{put("store", fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
		if err := b.(*store).db.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	for i, b := range stores {
		if v, ok, err := b.Get([]byte("store")); err != nil || !ok || string(v) != fmt.Sprint(i) {
			t.Errorf("store %d: Get = %q, %v, %v", i, v, ok, err)
		}
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
}

// recordingHandler keeps the records logged through it.
type recordingHandler struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler            { return h }
func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r)
	return nil
}

func TestPebbleLogsGoToSlog(t *testing.T) {
	var std bytes.Buffer
	log.SetOutput(&std) // where Pebble's default logger writes
	t.Cleanup(func() { log.SetOutput(os.Stderr) })

	h := &recordingHandler{}
	dir := filepath.Join(t.TempDir(), "store")
	b, err := Open(dir, WithLogger(slog.New(h)))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if std.Len() > 0 {
		t.Errorf("Pebble wrote to the standard logger: %q", std.String())
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.records) == 0 {
		t.Fatal("no Pebble message reached the slog logger (Pebble logs the WALs it replays at open)")
	}
	for _, r := range h.records {
		if r.Level != slog.LevelDebug {
			t.Errorf("routine message %q logged at %v, want Debug", r.Message, r.Level)
		}
		var store string
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "store" {
				store = a.Value.String()
			}
			return true
		})
		if store != dir {
			t.Errorf("message %q has store %q, want %q", r.Message, store, dir)
		}
	}
}

func TestFatalfPanics(t *testing.T) {
	defer func() {
		if r := recover(); r == nil {
			t.Error("Fatalf returned; Pebble does not expect it to")
		}
	}()
	slogLogger{logger: slog.New(slog.DiscardHandler), dir: "d"}.Fatalf("boom %d", 1)
}

func TestOpenTwiceInProcess(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	b := openT(t, dir)
	defer b.Close()
	_, err := Open(dir, quiet)
	if err == nil {
		t.Fatal("a second Open of an open store succeeded")
	}
	if errors.Is(err, state.ErrCorruptStore) {
		t.Errorf("a store open elsewhere reads as corrupt, which would make the engine wipe it: %v", err)
	}
	if err := Destroy(dir); err == nil {
		t.Error("Destroy removed an open store")
	}
	if _, ok, err := b.Get([]byte("k")); ok || err != nil {
		t.Errorf("the open store is damaged by the refused Open and Destroy: ok %v, err %v", ok, err)
	}
}

func TestDestroy(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	b := openT(t, dir)
	if err := b.Apply([]state.Write{put("k", "v")}); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := Destroy(dir); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the directory survived Destroy: %v", err)
	}
	if err := Destroy(dir); err != nil {
		t.Errorf("Destroy of a missing directory: %v", err)
	}
}

func TestInvalidOptions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	_, err := Open(dir, WithMemTableSize(1), WithCacheSize(0), WithCache(nil), WithLogger(nil))
	if err == nil {
		t.Fatal("Open accepted invalid options")
	}
	for _, opt := range []string{"WithMemTableSize", "WithCacheSize", "WithCache", "WithLogger"} {
		if !bytes.Contains([]byte(err.Error()), []byte(opt)) {
			t.Errorf("the error does not name %s: %v", opt, err)
		}
	}
	if errors.Is(err, state.ErrCorruptStore) {
		t.Errorf("invalid options read as a corrupt store: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open with invalid options touched the directory: %v", err)
	}
}

func TestEnvironmentalErrorsAreNotCorruption(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.EACCES, syscall.EROFS, syscall.ENOSPC, syscall.EMFILE} {
		err := openError("dir", fmt.Errorf("pebble: %w", &fs.PathError{Op: "open", Path: "dir/MANIFEST-000001", Err: errno}))
		if errors.Is(err, state.ErrCorruptStore) {
			t.Errorf("%v reads as corruption: wiping the store cannot fix it", errno)
		}
		if !errors.Is(err, errno) {
			t.Errorf("the error %v lost its cause %v", err, errno)
		}
	}
	if err := openError("dir", errors.New("pebble: unknown")); !errors.Is(err, state.ErrCorruptStore) {
		t.Errorf("an unrecognized error of pebble.Open does not read as corruption: %v", err)
	}
}

func BenchmarkStore(b *testing.B) {
	statetest.RunBackendBenchmarks(b, func(b *testing.B) state.Backend {
		s, err := Open(filepath.Join(b.TempDir(), "store"), quiet)
		if err != nil {
			b.Fatal(err)
		}
		return s
	})
}
