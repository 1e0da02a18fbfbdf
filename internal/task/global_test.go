package task

import (
	"fmt"
	"sync"
	"testing"

	"github.com/eddystream/eddy/state"
)

// Readers on several goroutines read a global store while one goroutine
// applies batches (run with -race): a Get sees a whole batch or none of
// it, and a Range sees the store as it was when the scan began.
func TestGlobalStoreConcurrentReads(t *testing.T) {
	b := state.NewMemoryBackend()
	defer b.Close()
	g := NewGlobalStore("g", b)
	const batches = 200
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			for range batches {
				// Each batch writes "a" and "b" with the same value.
				va, okA, err := g.Get([]byte("a"))
				if err != nil {
					errs <- err
					return
				}
				it, err := g.Range(nil, nil)
				if err != nil {
					errs <- err
					return
				}
				var vals []string
				for it.Next() {
					vals = append(vals, string(it.Value()))
				}
				if err := it.Close(); err != nil {
					errs <- err
					return
				}
				if len(vals) == 2 && vals[0] != vals[1] {
					errs <- fmt.Errorf("a scan saw a and b from different batches: %q", vals)
					return
				}
				if okA && len(va) == 0 {
					errs <- fmt.Errorf("empty value of a")
					return
				}
			}
		})
	}
	for i := range batches {
		v := []byte(fmt.Sprint(i))
		if err := g.Apply([]state.Write{{Key: []byte("a"), Value: v}, {Key: []byte("b"), Value: v}}); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if v, ok, err := g.Get([]byte("a")); err != nil || !ok || string(v) != fmt.Sprint(batches-1) {
		t.Errorf("Get(a) = %q, %v, %v after the last batch", v, ok, err)
	}
}
