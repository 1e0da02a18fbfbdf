package pebblestore

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/eddystream/eddy/state"
)

func ingester(t *testing.T, b state.Backend) state.RunIngester {
	t.Helper()
	ing, ok := b.(state.RunIngester)
	if !ok {
		t.Fatal("the Pebble store is not a state.RunIngester")
	}
	return ing
}

// ingest ingests writes, which must be sorted with unique keys.
func ingest(t *testing.T, b state.Backend, writes ...state.Write) {
	t.Helper()
	if err := ingester(t, b).IngestRun(len(writes), func(i int) state.Write { return writes[i] }); err != nil {
		t.Fatalf("IngestRun: %v", err)
	}
}

func del(key string) state.Write { return state.Write{Key: []byte(key), Delete: true} }

// TestIngestRunOverridesEarlierWrites: a run is newer than the sstables,
// the memtable and the runs before it, and its tombstones delete from all
// three.
func TestIngestRunOverridesEarlierWrites(t *testing.T) {
	b := openT(t, t.TempDir())
	defer b.Close()
	bulk := ingester(t, b)
	if err := b.Apply([]state.Write{put("a", "sst"), put("b", "sst"), put("c", "sst")}); err != nil {
		t.Fatal(err)
	}
	if err := b.(*store).db.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := bulk.ApplyNoSync([]state.Write{put("d", "mem"), put("e", "mem"), put("f", "mem")}); err != nil {
		t.Fatal(err)
	}
	ingest(t, b, put("a", "run1"), del("b"), del("d"), put("e", "run1"), put("g", "run1"), put("h", "run1"))
	ingest(t, b, put("a", "run2"), put("b", ""), del("g"), put("h", "run2"))

	want := []string{"a=run2", "b=", "c=sst", "e=run1", "f=mem", "h=run2"}
	if got := keys(t, b); !slices.Equal(got, want) {
		t.Errorf("after the runs: %q, want %q", got, want)
	}
	for _, k := range []string{"d", "g"} {
		if v, ok, err := b.Get([]byte(k)); err != nil || ok {
			t.Errorf("Get(%q) = %q, %v, %v; want it deleted by a run", k, v, ok, err)
		}
	}
	// Writes after a run override it in turn.
	if err := bulk.ApplyNoSync([]state.Write{put("a", "mem2"), del("h")}); err != nil {
		t.Fatal(err)
	}
	want = []string{"a=mem2", "b=", "c=sst", "e=run1", "f=mem"}
	if got := keys(t, b); !slices.Equal(got, want) {
		t.Errorf("after writes on top of the runs: %q, want %q", got, want)
	}
}

// TestIngestRunIsDurable crashes the store right after IngestRun returns,
// losing everything not synced: the run survives, and so do the batches
// applied without sync before it. Close and reopen keep it too.
func TestIngestRunIsDurable(t *testing.T) {
	mem := vfs.NewCrashableMem()
	withMem := func(fs vfs.FS) Option { return func(c *config) { c.fs = fs } }
	b := openT(t, "/store", withMem(mem))
	if err := ingester(t, b).ApplyNoSync([]state.Write{put("z-before", "1")}); err != nil {
		t.Fatal(err)
	}
	// The run's span leaves out "z-before": Pebble does not flush the
	// memtable for it, so only IngestRun's sync keeps it.
	ingest(t, b, put("a", "1"), put("b", "2"), del("c"))
	crashed := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	want := []string{"a=1", "b=2", "z-before=1"}
	for name, fs := range map[string]vfs.FS{"reopen": mem, "crash": crashed} {
		b := openT(t, "/store", withMem(fs))
		if got := keys(t, b); !slices.Equal(got, want) {
			t.Errorf("after %s: %q, want %q", name, got, want)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestIngestRunOutOfOrder: a run whose keys are not strictly increasing
// fails, applies nothing and leaves no file behind.
func TestIngestRunOutOfOrder(t *testing.T) {
	dir := t.TempDir()
	b := openT(t, dir)
	defer b.Close()
	ing := ingester(t, b)
	for _, run := range [][]state.Write{
		{put("b", "1"), put("a", "1")},
		{put("a", "1"), put("a", "2")},
		{put("a", "1"), del("a")},
	} {
		err := ing.IngestRun(len(run), func(i int) state.Write { return run[i] })
		if err == nil || !strings.Contains(err.Error(), "not above the key") {
			t.Errorf("IngestRun(%v) = %v, want an error about the order", run, err)
		}
	}
	if got := keys(t, b); len(got) != 0 {
		t.Errorf("failed runs left %q", got)
	}
	if left := ingestFiles(t, vfs.Default, dir); len(left) != 0 {
		t.Errorf("failed runs left files %q", left)
	}
	if err := ing.IngestRun(0, nil); err != nil {
		t.Errorf("IngestRun of an empty run: %v", err)
	}
}

func ingestFiles(t *testing.T, fs vfs.FS, dir string) []string {
	t.Helper()
	names, err := fs.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	return slices.DeleteFunc(names, func(n string) bool { return !strings.HasPrefix(n, ingestFilePrefix) })
}

// TestOpenRemovesInterruptedIngest: the files of an ingest cut short by a
// crash neither stop Open nor stay.
func TestOpenRemovesInterruptedIngest(t *testing.T) {
	dir := t.TempDir()
	b := openT(t, dir)
	ingest(t, b, put("a", "1"))
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		f, err := vfs.Default.Create(vfs.Default.PathJoin(dir, fmt.Sprintf("%s%d%s", ingestFilePrefix, i, ingestFileSuffix)), vfs.WriteCategoryUnspecified)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte("half a table")); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	b = openT(t, dir)
	defer b.Close()
	if got, want := keys(t, b), []string{"a=1"}; !slices.Equal(got, want) {
		t.Errorf("after reopen: %q, want %q", got, want)
	}
	if left := ingestFiles(t, vfs.Default, dir); len(left) != 0 {
		t.Errorf("Open left %q", left)
	}
}

func TestIngestRunAfterClose(t *testing.T) {
	b := openT(t, t.TempDir())
	ing := ingester(t, b)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ing.IngestRun(1, func(int) state.Write { return put("a", "1") }); !errors.Is(err, state.ErrClosed) {
		t.Errorf("IngestRun after Close = %v, want ErrClosed", err)
	}
}

// TestIngestRunsMatchBatches applies random writes over a small keyspace,
// some as batches and some as runs, split into several tables where the
// machine has several CPUs, and compares the store with a map.
func TestIngestRunsMatchBatches(t *testing.T) {
	defer func(n int) { minTableWrites = n }(minTableWrites)
	minTableWrites = 100 // split runs into tables on a machine of several CPUs
	for seed := range uint64(8) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 1))
			b := openT(t, t.TempDir(), WithMemTableSize(64<<10))
			defer b.Close()
			ing := ingester(t, b)
			model := map[string]string{}
			keyspace := 3000
			for range 12 {
				n := rng.IntN(2000) + 1
				run := map[string]state.Write{}
				for range n {
					k := fmt.Sprintf("k%05d", rng.IntN(keyspace))
					w := put(k, fmt.Sprintf("v%d", rng.IntN(1000)))
					if rng.IntN(4) == 0 {
						w = del(k)
					}
					run[k] = w
				}
				writes := slices.SortedFunc(maps.Values(run), func(a, b state.Write) int { return bytes.Compare(a.Key, b.Key) })
				for _, w := range writes {
					if w.Delete {
						delete(model, string(w.Key))
					} else {
						model[string(w.Key)] = string(w.Value)
					}
				}
				if rng.IntN(3) == 0 {
					if err := ing.ApplyNoSync(writes); err != nil {
						t.Fatal(err)
					}
				} else {
					ingest(t, b, writes...)
				}
			}
			want := make([]string, 0, len(model))
			for _, k := range slices.Sorted(maps.Keys(model)) {
				want = append(want, k+"="+model[k])
			}
			if got := keys(t, b); !slices.Equal(got, want) {
				t.Fatalf("the store holds %d keys, the model %d; they differ", len(got), len(want))
			}
			if n, err := b.(state.Counter).ApproximateCount(); err != nil || n <= 0 {
				t.Errorf("ApproximateCount = %d, %v; want a positive count", n, err)
			}
		})
	}
}
