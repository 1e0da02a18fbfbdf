package pebblestore

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Defaults, sized for a process that hosts dozens of task stores.
const (
	// DefaultMemTableSize is the memtable size of a store opened without
	// WithMemTableSize: Pebble's own default, kept on purpose. A store holds
	// at most two memtables (one filling, one flushing), so fifty stores
	// take at most 400 MiB of write buffers, where Kafka Streams' 16 MiB
	// RocksDB write buffers (three per store) would take 2.4 GiB.
	DefaultMemTableSize = 4 << 20
	// DefaultCacheSize is the size of the block cache a store gets for
	// itself when it is opened without WithCache or WithCacheSize.
	DefaultCacheSize = 8 << 20
)

// Option configures Open and NewSupplier.
type Option func(*config)

type config struct {
	cache        *pebble.Cache
	cacheSize    int64
	cacheSizeSet bool // WithCacheSize was given
	memTableSize uint64
	logger       *slog.Logger
	// fs is the file system of the store: vfs.Default, except in tests that
	// inject faults or crashes.
	fs   vfs.FS
	errs []error
}

// WithCache makes the store use a block cache shared with other stores, so
// that one memory budget covers all of a process's stores: create it once
// with pebble.NewCache(size) and pass it to every Open. The store takes its
// own reference to the cache; the creator releases its reference with
// Unref when it has opened the stores (the memory is freed when the last
// store using it is closed). Kafka Streams reaches the same through a
// RocksDBConfigSetter that shares one LRUCache.
//
// Default: each store has a cache of its own of DefaultCacheSize bytes.
func WithCache(c *pebble.Cache) Option {
	return func(cfg *config) {
		if c == nil {
			cfg.errs = append(cfg.errs, errors.New("WithCache: the cache is nil; pass one made by pebble.NewCache"))
			return
		}
		cfg.cache = c
	}
}

// WithCacheSize sets the size in bytes of the store's own block cache, or,
// given to NewSupplier, of the cache its stores share. It is ignored when
// WithCache is also given.
//
// Default: DefaultCacheSize (8 MiB) for Open, DefaultSupplierCacheSize
// (64 MiB) for NewSupplier.
func WithCacheSize(bytes int64) Option {
	return func(cfg *config) {
		if bytes <= 0 {
			cfg.errs = append(cfg.errs, fmt.Errorf("WithCacheSize(%d): the size must be positive", bytes))
			return
		}
		cfg.cacheSize, cfg.cacheSizeSet = bytes, true
	}
}

// WithMemTableSize sets the size in bytes of the store's memtable, the
// in-memory write buffer that Pebble flushes to an sstable when it is full.
// A larger memtable absorbs more overwrites of hot keys before they reach
// disk, at the cost of memory per store and of a longer WAL replay after a
// crash. Kafka Streams' equivalent is RocksDB's write_buffer_size (16 MiB
// there, for a handful of stores per instance).
//
// Default: DefaultMemTableSize (4 MiB).
func WithMemTableSize(bytes uint64) Option {
	return func(cfg *config) {
		const minSize, maxSize = 64 << 10, 4 << 30 // Pebble rejects 4 GiB and more
		if bytes < minSize || bytes >= maxSize {
			cfg.errs = append(cfg.errs, fmt.Errorf("WithMemTableSize(%d): the size must be at least 64 KiB and less than 4 GiB", bytes))
			return
		}
		cfg.memTableSize = bytes
	}
}

// WithLogger sets where Pebble's own messages go. Pebble's informational
// messages (WAL replay, flushes, compactions) are logged at Debug level, its
// errors at Error level; each record carries the store directory as the
// attribute "store".
//
// Default: slog.Default(), so that at the usual Info level a store is
// silent unless something goes wrong.
func WithLogger(l *slog.Logger) Option {
	return func(cfg *config) {
		if l == nil {
			cfg.errs = append(cfg.errs, errors.New("WithLogger: the logger is nil; pass slog.New(slog.DiscardHandler) to discard Pebble's messages"))
			return
		}
		cfg.logger = l
	}
}

// newConfig applies opts over the defaults and validates them in one pass.
func newConfig(opts []Option) (*config, error) {
	cfg := &config{
		cacheSize:    DefaultCacheSize,
		memTableSize: DefaultMemTableSize,
		logger:       slog.Default(),
		fs:           vfs.Default,
	}
	for _, opt := range opts {
		opt(cfg)
	}
	if err := errors.Join(cfg.errs...); err != nil {
		return nil, err
	}
	return cfg, nil
}
