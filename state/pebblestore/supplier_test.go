package pebblestore

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/eddystream/eddy/state"
	"github.com/eddystream/eddy/state/statetest"
)

func newSupplierT(t *testing.T, opts ...Option) *Supplier {
	t.Helper()
	sup, err := NewSupplier(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return sup
}

func TestSupplierConformance(t *testing.T) {
	sup := newSupplierT(t, WithCacheSize(1<<20))
	statetest.RunSupplierTests(t, sup)
	statetest.RunBackendTests(t, func(t *testing.T) state.Backend {
		b, err := sup.Open(t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
	if sup.mu.cache != nil || sup.mu.open != 0 {
		t.Errorf("with every store closed, the supplier holds a cache (%v) and counts %d open stores", sup.mu.cache != nil, sup.mu.open)
	}
}

// TestSupplierSharesOneCache checks that a supplier's stores share one
// cache, that a store that fails to open gives back its share, and that
// the cache is freed when the last store closes (pebble's invariant checks,
// on under -race, panic on a cache freed twice or leaked).
func TestSupplierSharesOneCache(t *testing.T) {
	sup := newSupplierT(t)
	if sup.cfg.cacheSize != DefaultSupplierCacheSize {
		t.Errorf("the shared cache size is %d, want DefaultSupplierCacheSize", sup.cfg.cacheSize)
	}
	dir := t.TempDir()
	var stores []state.Backend
	var cache *pebble.Cache
	for i := range 3 {
		b, err := sup.Open(filepath.Join(dir, fmt.Sprint(i)), nil)
		if err != nil {
			t.Fatal(err)
		}
		stores = append(stores, b)
		if i == 0 {
			cache = sup.mu.cache
		} else if sup.mu.cache != cache {
			t.Fatalf("store %d got another cache", i)
		}
	}
	// A second open of an open store fails, and gives its share back.
	if _, err := sup.Open(filepath.Join(dir, "0"), nil); err == nil {
		t.Fatal("a second Open of an open store succeeded")
	}
	if sup.mu.open != 3 {
		t.Errorf("%d stores counted open, want 3", sup.mu.open)
	}
	for _, b := range stores {
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if sup.mu.cache != nil || sup.mu.open != 0 {
		t.Errorf("after the last Close the supplier still holds a cache (%v) or counts %d stores", sup.mu.cache != nil, sup.mu.open)
	}
	// The next store gets a fresh cache.
	b, err := sup.Open(filepath.Join(dir, "0"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok, err := b.Get([]byte("missing")); err != nil || ok {
		t.Errorf("Get = %q, %v, %v", v, ok, err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestSupplierWithCallersCache(t *testing.T) {
	cache := pebble.NewCache(1 << 20)
	defer cache.Unref()
	sup := newSupplierT(t, WithCache(cache))
	b, err := sup.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if sup.mu.cache != nil {
		t.Error("the supplier made a cache of its own although WithCache was given")
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestSupplierInvalidOption(t *testing.T) {
	if _, err := NewSupplier(WithCacheSize(-1)); err == nil {
		t.Error("NewSupplier(WithCacheSize(-1)) succeeded")
	}
}
