package pebblestore

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/eddystream/eddy/state"
)

// writeStore creates a closed store in a new directory with 1000 keys in a
// flushed sstable and two more keys, in two batches, only in the WAL, and
// returns the directory.
//
// Its batches record changelog offsets (state.OffsetRecorder): the store's
// recorded offset is 1002, the offset a checkpoint file written after the
// last batch would hold.
func writeStore(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "store")
	b, err := Open(dir, quiet)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	var batch []state.Write
	for i := range 1000 {
		batch = append(batch, state.Write{Key: fmt.Appendf(nil, "key-%04d", i), Value: bytes.Repeat([]byte{byte(i)}, 50)})
	}
	// Each batch records the changelog offset after it, as a task's
	// commits do: 1000 after the first, 1001 and 1002 after the others.
	rec := b.(state.OffsetRecorder)
	if err := rec.ApplyAt(batch, 1000, true); err != nil {
		t.Fatalf("ApplyAt: %v", err)
	}
	if err := b.(*store).db.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	// The second value spans WAL blocks (of 32 KiB), which is what lets
	// Pebble prove damage to the first record is not a torn tail.
	for i, size := range []int{1, 64 << 10} {
		key := fmt.Appendf(nil, "in-wal-%d", i+1)
		if err := rec.ApplyAt([]state.Write{{Key: key, Value: make([]byte, size)}}, int64(1001+i), true); err != nil {
			t.Fatalf("ApplyAt: %v", err)
		}
		// Pebble proves that damage to a record is not a torn tail by the
		// synced offset that the chunks of later records carry. Its WAL
		// writer wakes a synced commit before it updates that offset, so
		// the next record may carry the offset from before the sync, and
		// the damage then reads as a torn tail (1 run in 10 on a loaded
		// machine). A second sync starts only once the first has updated
		// the offset.
		if err := b.(state.BulkApplier).Sync(); err != nil {
			t.Fatalf("Sync: %v", err)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return dir
}

// storeFile returns the path of the one file in dir whose name matches
// pattern.
func storeFile(t *testing.T, dir, pattern string) string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(dir, pattern))
	if err != nil || len(matches) != 1 {
		t.Fatalf("want one file %s in the store, found %q (err %v)", pattern, matches, err)
	}
	return matches[0]
}

// offsetOf returns the offset of the first occurrence of s in the file at
// path.
func offsetOf(t *testing.T, path, s string) int64 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(data, []byte(s))
	if i < 0 {
		t.Fatalf("%q is not in %s", s, path)
	}
	return int64(i)
}

// garble overwrites n bytes of the file at path from offset off (from the
// end when off is negative) with 0xa5.
func garble(t *testing.T, path string, off int64, n int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if off < 0 {
		info, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		off += info.Size()
	}
	if _, err := f.WriteAt(bytes.Repeat([]byte{0xa5}, n), off); err != nil {
		t.Fatal(err)
	}
}

// readAll opens the store in dir and reads every key, returning the first
// error. Damage that Open cannot see must surface here.
func readAll(dir string) error {
	b, err := Open(dir, quiet)
	if err != nil {
		return err
	}
	defer b.Close()
	for i := range 1000 {
		if _, _, err := b.Get(fmt.Appendf(nil, "key-%04d", i)); err != nil {
			return err
		}
	}
	it, err := b.Range(nil, nil)
	if err != nil {
		return err
	}
	defer it.Close()
	n := 0
	for it.Next() {
		n++
	}
	if it.Err() == nil && n != 1002 {
		return fmt.Errorf("the store reads back %d keys, not 1002, and reports no error", n)
	}
	return it.Err()
}

func TestCorruptStoreIsReported(t *testing.T) {
	tests := []struct {
		name    string
		corrupt func(t *testing.T, dir string)
	}{
		{"MANIFEST truncated", func(t *testing.T, dir string) {
			if err := os.Truncate(storeFile(t, dir, "MANIFEST-*"), 0); err != nil {
				t.Fatal(err)
			}
		}},
		{"MANIFEST garbled", func(t *testing.T, dir string) {
			garble(t, storeFile(t, dir, "MANIFEST-*"), 0, 16)
		}},
		{"MANIFEST removed", func(t *testing.T, dir string) {
			if err := os.Remove(storeFile(t, dir, "MANIFEST-*")); err != nil {
				t.Fatal(err)
			}
		}},
		{"manifest marker removed", func(t *testing.T, dir string) {
			if err := os.Remove(storeFile(t, dir, "marker.manifest.*")); err != nil {
				t.Fatal(err)
			}
		}},
		{"format marker removed", func(t *testing.T, dir string) {
			if err := os.Remove(storeFile(t, dir, "marker.format-version.*")); err != nil {
				t.Fatal(err)
			}
		}},
		{"OPTIONS garbled", func(t *testing.T, dir string) {
			garble(t, storeFile(t, dir, "OPTIONS-*"), 0, 64)
		}},
		{"sstable footer garbled", func(t *testing.T, dir string) {
			garble(t, storeFile(t, dir, "*.sst"), -40, 40)
		}},
		{"sstable data garbled", func(t *testing.T, dir string) {
			garble(t, storeFile(t, dir, "*.sst"), 100, 200)
		}},
		{"sstable truncated", func(t *testing.T, dir string) {
			path := storeFile(t, dir, "*.sst")
			info, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, info.Size()/2); err != nil {
				t.Fatal(err)
			}
		}},
		{"sstable removed", func(t *testing.T, dir string) {
			if err := os.Remove(storeFile(t, dir, "*.sst")); err != nil {
				t.Fatal(err)
			}
		}},
		{"WAL record garbled", func(t *testing.T, dir string) {
			// The first of the two records in the newest WAL. Damage to the
			// last record could be a write torn by a crash, which Pebble
			// tolerates; the second record, in a later WAL block, proves
			// that the first was synced.
			logs, err := filepath.Glob(filepath.Join(dir, "*.log"))
			if err != nil || len(logs) == 0 {
				t.Fatalf("no WAL in the store (err %v)", err)
			}
			slices.Sort(logs)
			garble(t, logs[len(logs)-1], offsetOf(t, logs[len(logs)-1], "in-wal-1"), 8) // the key of the first record
		}},
		{"path is a regular file", func(t *testing.T, dir string) {
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dir, []byte("not a store"), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"directory of something else", func(t *testing.T, dir string) {
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("hello"), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeStore(t)
			tt.corrupt(t, dir)
			err := readAll(dir)
			t.Logf("error: %v", err)
			if !errors.Is(err, state.ErrCorruptStore) {
				t.Fatalf("reading a store with %s: err = %v, want ErrCorruptStore", tt.name, err)
			}
			// The engine's answer: wipe and start over.
			if err := Destroy(dir); err != nil {
				t.Fatalf("Destroy: %v", err)
			}
			b, err := Open(dir, quiet)
			if err != nil {
				t.Fatalf("Open after Destroy: %v", err)
			}
			if _, ok, err := b.Get([]byte("key-0001")); ok || err != nil {
				t.Errorf("a destroyed store still reads key-0001 (ok %v, err %v)", ok, err)
			}
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
