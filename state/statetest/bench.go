package statetest

import (
	"encoding/binary"
	"strconv"
	"testing"

	"github.com/eddystream/eddy/state"
)

// Benchmark shape: 16-byte keys and 100-byte values, about the size of a
// keyed aggregate with a serialized struct value.
const (
	benchKeySize   = 16
	benchValueSize = 100
)

// benchKey writes the key of record i into buf: big-endian i spread over
// the key, so consecutive records are not consecutive keys.
func benchKey(buf []byte, i uint64) []byte {
	binary.BigEndian.PutUint64(buf[:8], i*0x9e3779b97f4a7c15) // a bijection on uint64
	binary.BigEndian.PutUint64(buf[8:16], i)
	return buf[:benchKeySize]
}

// RunBackendBenchmarks measures a backend on the workloads of a task's
// store: batched writes as at a commit, point reads, and a full scan. open
// must return a new, empty backend; the benchmarks close what they open.
// Sizes are reported as bytes of keys and values, so MB/s compares across
// backends.
func RunBackendBenchmarks(b *testing.B, open func(b *testing.B) state.Backend) {
	for _, size := range []int{1, 100, 1000} {
		b.Run("Apply/batch="+strconv.Itoa(size), func(b *testing.B) { benchApply(b, open(b), size) })
	}
	const preload = 100_000
	b.Run("Get/keys=100k", func(b *testing.B) { benchGet(b, open(b), preload) })
	b.Run("Range/keys=100k", func(b *testing.B) { benchRange(b, open(b), preload) })
}

func closeAfter(b *testing.B, backend state.Backend) {
	b.Cleanup(func() {
		if err := backend.Close(); err != nil {
			b.Errorf("Close: %v", err)
		}
	})
}

// benchApply applies batches of size writes to distinct keys, reusing the
// key and value buffers as an engine does.
func benchApply(b *testing.B, backend state.Backend, size int) {
	closeAfter(b, backend)
	batch := make([]state.Write, size)
	bufs := make([]byte, size*(benchKeySize+benchValueSize))
	for i := range batch {
		off := i * (benchKeySize + benchValueSize)
		batch[i].Key = bufs[off : off+benchKeySize]
		batch[i].Value = bufs[off+benchKeySize : off+benchKeySize+benchValueSize]
	}
	b.SetBytes(int64(size * (benchKeySize + benchValueSize)))
	b.ReportAllocs()
	var n uint64
	for b.Loop() {
		for i := range batch {
			benchKey(batch[i].Key, n)
			n++
		}
		if err := backend.Apply(batch); err != nil {
			b.Fatalf("Apply: %v", err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/write")
}

func preloadKeys(b *testing.B, backend state.Backend, n int) {
	b.Helper()
	value := make([]byte, benchValueSize)
	const batchSize = 1000
	batch := make([]state.Write, 0, batchSize)
	for i := range n {
		batch = append(batch, state.Write{Key: benchKey(make([]byte, benchKeySize), uint64(i)), Value: value})
		if len(batch) == batchSize || i == n-1 {
			if err := backend.Apply(batch); err != nil {
				b.Fatalf("Apply: %v", err)
			}
			batch = batch[:0]
		}
	}
}

func benchGet(b *testing.B, backend state.Backend, n int) {
	closeAfter(b, backend)
	preloadKeys(b, backend, n)
	key := make([]byte, benchKeySize)
	b.SetBytes(benchKeySize + benchValueSize)
	b.ReportAllocs()
	var i uint64
	for b.Loop() {
		_, ok, err := backend.Get(benchKey(key, i%uint64(n)))
		if err != nil || !ok {
			b.Fatalf("Get: ok %v, err %v", ok, err)
		}
		i++
	}
}

func benchRange(b *testing.B, backend state.Backend, n int) {
	closeAfter(b, backend)
	preloadKeys(b, backend, n)
	b.SetBytes(int64(n * (benchKeySize + benchValueSize)))
	b.ReportAllocs()
	for b.Loop() {
		it, err := backend.Range(nil, nil)
		if err != nil {
			b.Fatalf("Range: %v", err)
		}
		count := 0
		for it.Next() {
			count++
		}
		if err := it.Err(); err != nil || count != n {
			b.Fatalf("Range: %d keys, err %v; want %d", count, err, n)
		}
		if err := it.Close(); err != nil {
			b.Fatalf("Close: %v", err)
		}
	}
}
