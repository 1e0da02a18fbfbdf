package state_test

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/eddystream/eddy/state"
	"github.com/eddystream/eddy/state/statetest"
)

func TestMemoryBackendConformance(t *testing.T) {
	statetest.RunBackendTests(t, func(t *testing.T) state.Backend {
		return state.NewMemoryBackend()
	})
}

func TestMemoryBackendCountIsExact(t *testing.T) {
	b := state.NewMemoryBackend()
	defer b.Close()
	counter, ok := b.(state.Counter)
	if !ok {
		t.Fatal("the memory backend does not implement Counter")
	}
	wantCount := func(want int64) {
		t.Helper()
		got, err := counter.ApproximateCount()
		if err != nil || got != want {
			t.Fatalf("ApproximateCount = %d, %v; want %d", got, err, want)
		}
	}
	wantCount(0)
	var batch []state.Write
	for i := range 1000 {
		batch = append(batch, state.Write{Key: fmt.Appendf(nil, "k%d", i), Value: []byte("v")})
	}
	if err := b.Apply(batch); err != nil {
		t.Fatal(err)
	}
	wantCount(1000)
	// Overwrites do not count twice; deletes of absent keys change nothing.
	if err := b.Apply(append(batch[:500:500],
		state.Write{Key: []byte("k1"), Delete: true},
		state.Write{Key: []byte("absent"), Delete: true},
	)); err != nil {
		t.Fatal(err)
	}
	wantCount(999)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := counter.ApproximateCount(); err == nil {
		t.Error("ApproximateCount after Close returned no error")
	}
}

func TestMemoryBackendSizeIsExact(t *testing.T) {
	b := state.NewMemoryBackend()
	defer b.Close()
	sizer, ok := b.(state.Sizer)
	if !ok {
		t.Fatal("the memory backend does not implement Sizer")
	}
	steps := []struct {
		name  string
		batch []state.Write
		want  int64
	}{
		{"empty", nil, 0},
		{"two puts", []state.Write{
			{Key: []byte("a"), Value: []byte("123")},
			{Key: []byte("bb"), Value: []byte("4567")},
		}, 4 + 6},
		{"an overwrite counts the new value only", []state.Write{
			{Key: []byte("a"), Value: []byte("1")},
		}, 2 + 6},
		{"an empty value counts its key", []state.Write{
			{Key: []byte("c"), Value: nil},
		}, 2 + 6 + 1},
		{"the last write to a key in a batch wins", []state.Write{
			{Key: []byte("d"), Value: []byte("xxxxxxxx")},
			{Key: []byte("d"), Value: []byte("y")},
		}, 2 + 6 + 1 + 2},
		{"deleting an absent key changes nothing", []state.Write{
			{Key: []byte("absent"), Delete: true},
		}, 2 + 6 + 1 + 2},
		{"deletes shrink it to zero", []state.Write{
			{Key: []byte("a"), Delete: true},
			{Key: []byte("bb"), Delete: true},
			{Key: []byte("c"), Delete: true},
			{Key: []byte("d"), Delete: true},
			{Key: []byte("d"), Delete: true},
		}, 0},
	}
	for _, step := range steps {
		if err := b.Apply(step.batch); err != nil {
			t.Fatalf("%s: Apply: %v", step.name, err)
		}
		got, err := sizer.ApproximateSize()
		if err != nil || got != step.want {
			t.Fatalf("%s: ApproximateSize = %d, %v; want %d", step.name, got, err, step.want)
		}
	}
}

func BenchmarkMemoryBackend(b *testing.B) {
	statetest.RunBackendBenchmarks(b, func(b *testing.B) state.Backend {
		return state.NewMemoryBackend()
	})
}

// BenchmarkMemoryBackendBytesPerKey reports the heap the memory backend
// holds per key, for 100k keys of 16 bytes with 100-byte values: the
// "memory per stored key" figure. 116 of those bytes are the data itself.
func BenchmarkMemoryBackendBytesPerKey(b *testing.B) {
	const n, keySize, valueSize = 100_000, 16, 100
	value := make([]byte, valueSize)
	var perKey float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		backend := state.NewMemoryBackend()
		batch := make([]state.Write, 0, 1000)
		for i := range n {
			key := fmt.Appendf(make([]byte, 0, keySize), "%0*d", keySize, i)
			batch = append(batch, state.Write{Key: key, Value: value})
			if len(batch) == cap(batch) {
				if err := backend.Apply(batch); err != nil {
					b.Fatal(err)
				}
				batch = batch[:0]
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perKey = float64(after.HeapAlloc-before.HeapAlloc) / n
		runtime.KeepAlive(backend)
		if err := backend.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(perKey, "heap-bytes/key")
}
