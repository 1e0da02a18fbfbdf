package pebblestore

import (
	"fmt"
	"log/slog"
	"sync"

	"github.com/cockroachdb/pebble/v2"

	"github.com/eddystream/eddy/state"
)

// DefaultSupplierCacheSize is the size of the block cache that the stores
// of a Supplier share when it is made without WithCache or WithCacheSize.
const DefaultSupplierCacheSize = 64 << 20

// Supplier is the state.BackendSupplier of Pebble stores, the persistent
// supplier eddy uses for a store declared without one. Kafka Streams'
// equivalent is Stores.persistentKeyValueStore. Make one with NewSupplier;
// it is safe for concurrent use.
type Supplier struct {
	cfg *config
	// shared is set when the supplier owns the block cache of its stores
	// (no WithCache was given): the cache is made when the first store
	// opens and freed when the last one closes, so a supplier nobody
	// uses holds no memory and needs no Close.
	shared bool
	mu     struct {
		sync.Mutex
		cache *pebble.Cache // the supplier's reference; nil while no store is open
		open  int           // stores opened and not yet closed
	}
}

var _ state.BackendSupplier = (*Supplier)(nil)

// NewSupplier returns a supplier of Pebble stores opened with opts. All of
// its stores share one block cache: the one given with WithCache, or else
// one of its own of WithCacheSize bytes (default DefaultSupplierCacheSize).
// WithLogger sets where Pebble's messages go when the engine passes no
// logger to Open. It fails if an option is invalid.
func NewSupplier(opts ...Option) (*Supplier, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, fmt.Errorf("pebblestore: new supplier: %w", err)
	}
	s := &Supplier{cfg: cfg, shared: cfg.cache == nil}
	if s.shared && !cfg.cacheSizeSet {
		cfg.cacheSize = DefaultSupplierCacheSize
	}
	return s, nil
}

// Name returns "pebble".
func (*Supplier) Name() string { return "pebble" }

// Persistent returns true: a store keeps its data in its directory.
func (*Supplier) Persistent() bool { return true }

// Open opens the store in dir as the package function Open does, on the
// supplier's shared block cache, with its messages going to log (or, if
// log is nil, to the supplier's logger).
func (s *Supplier) Open(dir string, log *slog.Logger) (state.Backend, error) {
	cfg := *s.cfg
	if log != nil {
		cfg.logger = log
	}
	if s.shared {
		cfg.cache = s.acquire()
	}
	b, err := openConfig(dir, &cfg)
	if err != nil {
		if s.shared {
			s.release()
		}
		return nil, err
	}
	if s.shared {
		b.onClose = s.release
	}
	return b, nil
}

// Destroy removes the store directory dir, as the package function Destroy
// does.
func (*Supplier) Destroy(dir string) error { return Destroy(dir) }

// acquire returns the shared cache, making it if no store is open.
func (s *Supplier) acquire() *pebble.Cache {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.cache == nil {
		s.mu.cache = pebble.NewCache(s.cfg.cacheSize)
	}
	s.mu.open++
	return s.mu.cache
}

// release notes that a store of the supplier closed (or failed to open),
// and frees the shared cache when none is open: each open store holds a
// reference of its own, so the memory goes once the last of them closes.
func (s *Supplier) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.open--
	if s.mu.open == 0 {
		s.mu.cache.Unref()
		s.mu.cache = nil
	}
}
