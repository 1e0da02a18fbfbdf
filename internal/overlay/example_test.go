package overlay_test

import (
	"fmt"
	"log"

	"github.com/eddystream/eddy/internal/overlay"
	"github.com/eddystream/eddy/state"
)

// The engine's use of an Overlay across two transactions: the first aborts,
// the second commits.
func Example() {
	backend := state.NewMemoryBackend()
	ov := overlay.New(backend)
	defer ov.Close()

	ov.Put([]byte("apples"), []byte("3"))
	ov.Discard() // the transaction aborted: the write is dropped

	ov.Put([]byte("pears"), []byte("1"))
	ov.Put([]byte("apples"), []byte("4"))
	ov.Put([]byte("pears"), []byte("2"))
	ov.Delete([]byte("plums"))
	// One changelog record per key, in key order.
	for _, w := range ov.Pending() {
		fmt.Printf("changelog: %s=%q delete=%v\n", w.Key, w.Value, w.Delete)
	}
	// The transaction committed: make its writes part of the store.
	if err := ov.Commit(); err != nil {
		log.Fatal(err)
	}

	it, err := backend.Range(nil, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer it.Close()
	for it.Next() {
		fmt.Printf("store: %s=%s\n", it.Key(), it.Value())
	}
	// Output:
	// changelog: apples="4" delete=false
	// changelog: pears="2" delete=false
	// changelog: plums="" delete=true
	// store: apples=4
	// store: pears=2
}
