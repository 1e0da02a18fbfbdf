package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddystream/eddy/changelog"
	intchangelog "github.com/eddystream/eddy/internal/changelog"
	"github.com/eddystream/eddy/state"
	"github.com/eddystream/eddy/state/pebblestore"
)

// restoreFetchBytes is the per-partition fetch size of both sides of the
// restore workload: intintchangelog.Restorer's default, given to the raw
// consumer too so that both ask for as much per fetch.
const restoreFetchBytes = 8 << 20

// restoreCacheBytes is the block cache shared by the restored stores, the
// size of the engine's shared cache.
const restoreCacheBytes = 64 << 20

// restoreWorkload builds the store once (one instance counts the store
// input, then stops), then measures, interleaved round by round, the raw
// fetch rate of its changelog topic and the rate at which eddy's restore
// path (intintchangelog.Restorer into Pebble stores in a fresh directory, all
// partitions at once, as the engine restores a new instance's tasks)
// rebuilds the stores from it. It returns the two rows, the restore row
// with its ratio to the raw fetch.
func (env *statefulEnv) restoreWorkload(ctx context.Context) ([]benchResult, error) {
	c := env.c
	appID := env.run + "-restore"
	if err := env.storeInput(ctx, appID+"-in"); err != nil {
		return nil, err
	}
	g, err := env.startGroup(ctx, appID, appID+"-in", 1, 0)
	if err == nil {
		err = env.waitReady(ctx, g, int64(c.storeKeys), 0, 10*time.Minute)
	}
	if err2 := g.stopAll(); err == nil {
		err = err2
	}
	if err != nil {
		return nil, fmt.Errorf("restore: build the store: %w", err)
	}
	topic := changelog.TopicName(appID, benchStore)
	if !c.json {
		fmt.Fprintf(c.out, "restore: changelog %s (%d keys, %d partitions), %d rounds; %s\n", topic, c.storeKeys, c.partitions, c.rounds, cpuNote())
	}
	var rawTimes, restoreTimes []float64
	var rawRecords, restoredRecords int64
	for round := range c.rounds {
		n, d, err := rawFetch(ctx, c.brokers, topic)
		if err != nil {
			return nil, fmt.Errorf("restore: raw fetch of %s: %w", topic, err)
		}
		rawRecords = n
		rawTimes = append(rawTimes, d.Seconds())
		dir := filepath.Join(env.dir, "restore-"+strconv.Itoa(round))
		n, d, err = restoreStores(ctx, c.brokers, topic, c.partitions, dir)
		if err != nil {
			return nil, fmt.Errorf("restore: restoring %s: %w", topic, err)
		}
		if err := os.RemoveAll(dir); err != nil {
			return nil, err
		}
		restoredRecords = n
		restoreTimes = append(restoreTimes, d.Seconds())
		if !c.json {
			fmt.Fprintf(c.out, "  round %d raw-changelog-fetch %6.2fs  eddy-restore %6.2fs\n", round+1, rawTimes[round], restoreTimes[round])
		}
	}
	raw := benchResult{Workload: "raw-changelog-fetch", Records: int(rawRecords), Seconds: median(rawTimes), Rounds: c.rounds,
		AllSeconds: rawTimes, Broker: env.broker, StoreKeys: c.storeKeys, CPUs: numCPU()}
	raw.RecordsPerSec = float64(raw.Records) / raw.Seconds
	res := benchResult{Workload: "eddy-restore", Records: int(restoredRecords), Seconds: median(restoreTimes), Rounds: c.rounds,
		AllSeconds: restoreTimes, Broker: env.broker, StoreKeys: c.storeKeys, CPUs: numCPU()}
	res.RecordsPerSec = float64(res.Records) / res.Seconds
	ratio := res.RecordsPerSec / raw.RecordsPerSec
	res.RatioVsRaw = &ratio
	return []benchResult{raw, res}, nil
}

// rawFetch reads every partition of topic from its log start to its last
// stable offset (listed first, inside the timed span, as the Restorer
// does) with a plain read_committed kgo consumer, and returns the records
// read and the time taken from creating the client.
func rawFetch(ctx context.Context, brokers []string, topic string) (int64, time.Duration, error) {
	start := time.Now()
	adminCl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return 0, 0, err
	}
	defer adminCl.Close()
	adm := kadm.NewClient(adminCl)
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return 0, 0, fmt.Errorf("list start offsets: %w", err)
	}
	ends, err := adm.ListCommittedOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return 0, 0, fmt.Errorf("list end offsets: %w", err)
	}
	offsets := map[int32]kgo.Offset{}
	remaining := map[int32]int64{} // partition → end offset, while not reached
	starts.Each(func(o kadm.ListedOffset) {
		if e, ok := ends.Lookup(topic, o.Partition); ok && e.Offset > o.Offset {
			offsets[o.Partition] = kgo.NewOffset().At(o.Offset)
			remaining[o.Partition] = e.Offset
		}
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}), kgo.FetchMaxPartitionBytes(restoreFetchBytes))
	if err != nil {
		return 0, 0, err
	}
	defer cl.Close()
	var n int64
	for len(remaining) > 0 {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return 0, 0, err
		}
		var fetchErr error
		fetches.EachError(func(_ string, _ int32, err error) { fetchErr = err })
		if fetchErr != nil {
			return 0, 0, fetchErr
		}
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			n += int64(len(p.Records))
			// The bench's changelogs are written at-least-once, without
			// transaction markers, so a partition ends with a record.
			if k := len(p.Records); k > 0 && p.Records[k-1].Offset+1 >= remaining[p.Partition] {
				delete(remaining, p.Partition)
			}
		})
	}
	return n, time.Since(start), nil
}

// restoreStores restores every partition of topic into a Pebble store of
// its own under dir, as the engine does for a new instance's tasks: one
// Restorer on one non-consuming client, all partitions at once, stores on
// one shared block cache. It returns the records applied and the time from
// creating the client and opening the stores until the last store is
// restored; closing the stores is not timed.
func restoreStores(ctx context.Context, brokers []string, topic string, partitions int, dir string) (int64, time.Duration, error) {
	discard := slog.New(slog.DiscardHandler)
	cache := pebble.NewCache(restoreCacheBytes)
	defer cache.Unref()
	start := time.Now()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return 0, 0, err
	}
	defer cl.Close()
	var (
		jobs   []intchangelog.RestoreJob
		stores []state.Backend
	)
	defer func() {
		for _, b := range stores {
			b.Close()
		}
	}()
	for p := range partitions {
		b, err := pebblestore.Open(filepath.Join(dir, strconv.Itoa(p)), pebblestore.WithCache(cache), pebblestore.WithLogger(discard))
		if err != nil {
			return 0, 0, err
		}
		stores = append(stores, b)
		jobs = append(jobs, intchangelog.RestoreJob{
			Partition:  changelog.TopicPartition{Topic: topic, Partition: int32(p)},
			Checkpoint: intchangelog.NoCheckpoint,
			Target:     intchangelog.NewStoreTarget(b),
		})
	}
	r, err := intchangelog.NewRestorer(cl, intchangelog.WithLogger(discard), intchangelog.WithConcurrency(partitions))
	if err != nil {
		return 0, 0, err
	}
	// Each restore syncs its StoreTarget before it returns, as in the
	// engine, so the time covers durable stores.
	results, errs := r.RestoreAll(ctx, jobs)
	took := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return 0, 0, err
	}
	var n int64
	for _, res := range results {
		n += res.Records
	}
	return n, took, nil
}
