package changelog

import (
	"fmt"
	"log/slog"
	"time"
)

// RestoreOption configures a Restorer; pass options to NewRestorer.
type RestoreOption func(*restoreConfig)

type restoreConfig struct {
	logger           *slog.Logger
	progressInterval time.Duration
	batchSize        int
	fetchMaxBytes    int32
	concurrency      int
	listener         RestoreListener
}

func defaultRestoreConfig() restoreConfig {
	return restoreConfig{
		logger:           slog.Default(),
		progressInterval: 10 * time.Second,
		batchSize:        10_000,
		fetchMaxBytes:    8 << 20,
		concurrency:      4,
	}
}

func (c *restoreConfig) validate() error {
	switch {
	case c.logger == nil:
		return fmt.Errorf("changelog: WithLogger(nil): pass a logger, or slog.New(slog.DiscardHandler) to log nothing")
	case c.progressInterval <= 0:
		return fmt.Errorf("changelog: WithProgressInterval(%s): the interval must be positive", c.progressInterval)
	case c.batchSize < 1:
		return fmt.Errorf("changelog: WithBatchSize(%d): the batch size must be at least 1", c.batchSize)
	case c.fetchMaxBytes < 1:
		return fmt.Errorf("changelog: WithFetchMaxBytes(%d): the size must be at least 1", c.fetchMaxBytes)
	case c.concurrency < 1:
		return fmt.Errorf("changelog: WithConcurrency(%d): the concurrency must be at least 1", c.concurrency)
	}
	return nil
}

// WithLogger sets where a Restorer logs: the plan of each restore (Info, or
// Warn when a checkpoint turns out to be unusable), its progress, its
// completion, and retried errors (Warn). Default: slog.Default().
func WithLogger(l *slog.Logger) RestoreOption {
	return func(c *restoreConfig) { c.logger = l }
}

// WithProgressInterval sets how often a running restore logs its progress,
// as "restoring <topic>-<partition>: <read>/<total> offsets, <n> records
// applied". Default: 10s.
func WithProgressInterval(d time.Duration) RestoreOption {
	return func(c *restoreConfig) { c.progressInterval = d }
}

// WithBatchSize sets the most records a RestoreTarget gets in one
// ApplyBatch call. A batch is never larger than one fetch, so it is
// often smaller. Default: 10000. (Kafka Streams bounds its restore batches
// with the restore consumer's max.poll.records, default 1000.)
func WithBatchSize(n int) RestoreOption {
	return func(c *restoreConfig) { c.batchSize = n }
}

// WithFetchMaxBytes sets the most bytes one restore fetch asks for. The
// broker returns at least one whole record batch however large, and a
// restore holds up to three fetches in memory at a time (one being applied,
// one queued, one in flight). Default: 8 MiB. (Kafka Streams uses the
// restore consumer's max.partition.fetch.bytes, default 1 MiB.)
func WithFetchMaxBytes(n int32) RestoreOption {
	return func(c *restoreConfig) { c.fetchMaxBytes = n }
}

// WithConcurrency sets how many partitions Restorer.RestoreAll restores at
// once. Default: 4.
func WithConcurrency(n int) RestoreOption {
	return func(c *restoreConfig) { c.concurrency = n }
}

// WithListener sets a listener for every restore's start, batches and end.
// Default: none.
func WithListener(l RestoreListener) RestoreOption {
	return func(c *restoreConfig) { c.listener = l }
}
