package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/eddystream/eddy"
	"github.com/eddystream/eddy/internal/engine"
	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/topology"
)

// abortCommitInterval is the abort workload's commit interval: eddy's
// default under exactly-once.
const abortCommitInterval = 100 * time.Millisecond

// abortTimeout bounds one abort of the abort workload, from the request
// until the task runs again.
const abortTimeout = 5 * time.Minute

// abortResult is the abort workload's row for one store kind.
type abortResult struct {
	Workload         string    `json:"workload"`
	Store            string    `json:"store"`
	StoreKeys        int       `json:"store_keys"`
	Guarantee        string    `json:"guarantee"`
	CommitIntervalMS int64     `json:"commit_interval_ms"`
	MedianMS         float64   `json:"median_ms"`
	AllMS            []float64 `json:"all_ms"`
	Rounds           int       `json:"rounds"`
	Broker           string    `json:"broker"`
	CPUs             int       `json:"cpus"`
}

// abortWorkload writes -store-keys distinct keys to an input topic of one
// partition, then, for an in-memory and a Pebble store in turn, runs an
// application counting them in this process (one task), waits until it
// has committed its whole input, and times -abort-rounds requested aborts
// (engine.RequestAbort) from the abort until the task runs again.
func (env *statefulEnv) abortWorkload(ctx context.Context) ([]abortResult, error) {
	c := env.c
	input := env.run + "-abort-in"
	if err := createTopic(ctx, env.adm, input, 1); err != nil {
		return nil, err
	}
	if err := produceStoreInput(ctx, env.cl, input, c.storeKeys); err != nil {
		return nil, err
	}
	if !c.json {
		fmt.Fprintf(c.out, "abort: one task over %d keys, exactly-once at %v, %d aborts per store; %s\n", c.storeKeys, abortCommitInterval, c.abortRounds, cpuNote())
	}
	var rows []abortResult
	for _, store := range []string{"memory", "pebble"} {
		ms, err := env.timeAborts(ctx, input, store)
		if err != nil {
			return nil, fmt.Errorf("abort (%s store): %w", store, err)
		}
		rows = append(rows, abortResult{Workload: "abort", Store: store, StoreKeys: c.storeKeys, Guarantee: eddy.ExactlyOnce.String(),
			CommitIntervalMS: abortCommitInterval.Milliseconds(), MedianMS: median(ms), AllMS: ms, Rounds: c.abortRounds,
			Broker: env.broker, CPUs: numCPU()})
	}
	return rows, nil
}

// timeAborts runs the counting application over input with a store of
// the given kind, waits until its input is committed, and returns the
// milliseconds each of -abort-rounds requested aborts took.
func (env *statefulEnv) timeAborts(ctx context.Context, input, store string) ([]float64, error) {
	c := env.c
	appID := env.run + "-abort-" + store
	output := appID + "-out"
	if err := createTopic(ctx, env.adm, output, 1); err != nil {
		return nil, err
	}
	opts := []topology.Option{topology.StoreName(benchStore)}
	if store == "memory" {
		opts = append(opts, topology.InMemory())
	}
	b := topology.NewBuilder()
	topology.Source(b, input, serde.Bytes(), serde.Bytes()).GroupByKey().Count(opts...).ToStream().To(output)
	top, err := b.Build()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(env.dir, "abort-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	app, err := eddy.New(top, eddy.ApplicationID(appID), eddy.Brokers(c.brokers...), eddy.StateDir(dir),
		eddy.ProcessingGuarantee(eddy.ExactlyOnce), eddy.CommitInterval(abortCommitInterval), eddy.Logger(benchLogger(c.verbose)))
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- app.Run(runCtx) }()
	stop := func(err error) error {
		cancel()
		if rerr := <-errc; err == nil {
			err = rerr
		}
		return err
	}
	loadStart := time.Now()
	if err := waitCommitted(ctx, c.brokers, appID, input, "", errc); err != nil {
		return nil, stop(fmt.Errorf("load the store: %w", err))
	}
	if !c.json {
		fmt.Fprintf(c.out, "  %s store loaded and committed in %.1fs\n", store, time.Since(loadStart).Seconds())
	}
	var ms []float64
	for round := range c.abortRounds {
		took := make(chan time.Duration, 1)
		if !engine.RequestAbort(appID, func(_ int, d time.Duration) { took <- d }) {
			return nil, stop(fmt.Errorf("no engine of %s runs in this process", appID))
		}
		select {
		case d := <-took:
			ms = append(ms, float64(d.Microseconds())/1000)
		case err := <-errc:
			if err == nil {
				err = fmt.Errorf("the application stopped early")
			}
			return nil, err
		case <-time.After(abortTimeout):
			return nil, stop(fmt.Errorf("abort %d: the task did not run again within %v", round+1, abortTimeout))
		case <-ctx.Done():
			return nil, stop(ctx.Err())
		}
		if !c.json {
			fmt.Fprintf(c.out, "  round %d abort %-6s %9.1f ms\n", round+1, store, ms[len(ms)-1])
		}
	}
	return ms, stop(nil)
}
