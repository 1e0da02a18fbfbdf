package pebblestore_test

import (
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/cockroachdb/pebble/v2"

	"github.com/eddystream/eddy/state"
	"github.com/eddystream/eddy/state/pebblestore"
)

// Opening a task's store the way the engine does: with a block cache shared
// by all stores of the process, and a wipe when the store is corrupt.
func ExampleOpen() {
	stateDir, err := os.MkdirTemp("", "eddy-state")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(stateDir)

	cache := pebble.NewCache(64 << 20) // one budget for every store
	defer cache.Unref()

	dir := filepath.Join(stateDir, "0_3", "counts")
	store, err := pebblestore.Open(dir, pebblestore.WithCache(cache))
	if errors.Is(err, state.ErrCorruptStore) {
		// Wipe it; the engine then restores it from its changelog.
		if err = pebblestore.Destroy(dir); err == nil {
			store, err = pebblestore.Open(dir, pebblestore.WithCache(cache))
		}
	}
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	if err := store.Apply([]state.Write{{Key: []byte("apples"), Value: []byte("4")}}); err != nil {
		log.Fatal(err)
	}
	v, ok, err := store.Get([]byte("apples"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(v), ok)
	// Output: 4 true
}
