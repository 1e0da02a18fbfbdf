package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The stateful workloads, restore and failover, run the counting
// application of instance.go over a store of -store-keys keys: one input
// topic holding each key once, counted by instances that run as OS
// processes of this binary. The abort workload (abort.go) counts such an
// input in this process.

// statefulWorkloads are the -workloads names of the stateful workloads,
// which run only when asked for.
var statefulWorkloads = []string{"restore", "failover", "abort"}

// storeKey is the key of store entry i: 16 bytes, like the throughput
// workloads' keys.
func storeKey(i int) []byte { return fmt.Appendf(nil, "k%015d", i) }

// produceStoreInput writes keys records to topic, one per key.
func produceStoreInput(ctx context.Context, cl *kgo.Client, topic string, keys int) error {
	var failed atomic.Value
	for i := range keys {
		cl.Produce(ctx, &kgo.Record{Topic: topic, Key: storeKey(i), Value: []byte("v")}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.Store(err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return fmt.Errorf("produce the store input: %w", err)
	}
	if err, _ := failed.Load().(error); err != nil {
		return fmt.Errorf("produce the store input: %w", err)
	}
	return nil
}

// storeInput creates topic and writes the store input to it.
func (env *statefulEnv) storeInput(ctx context.Context, topic string) error {
	if err := createTopic(ctx, env.adm, topic, env.c.partitions); err != nil {
		return err
	}
	return produceStoreInput(ctx, env.cl, topic, env.c.storeKeys)
}

// createOutputTopic creates a topic whose records carry the time the
// broker appended them (LogAppendTime), so that the failover workload
// reads when each output arrived from the record itself.
func createOutputTopic(ctx context.Context, adm *kadm.Client, topic string, partitions int) error {
	logAppend := "LogAppendTime"
	resp, err := adm.CreateTopic(ctx, int32(partitions), -1, map[string]*string{"message.timestamp.type": &logAppend}, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	return nil
}

// statefulEnv is what the stateful workloads share in one bench run.
type statefulEnv struct {
	c      benchConfig
	broker string
	run    string      // prefix of the run's topics and application ids
	exe    string      // this binary, started as instances
	dir    string      // instance state and logs
	cl     *kgo.Client // produces the store inputs
	adm    *kadm.Client
}

// group is a set of instances of one application.
type group struct {
	appID, output string
	procs         []*instanceProc
}

// startGroup creates output and starts n instances of application appID
// reading input, named instance-0 to instance-<n-1>, and waits for their
// admin endpoints. The caller stops the group (stopAll) whatever
// startGroup returns.
func (env *statefulEnv) startGroup(ctx context.Context, appID, input string, n, standbys int) (*group, error) {
	g := &group{appID: appID, output: appID + "-out"}
	if err := createOutputTopic(ctx, env.adm, g.output, env.c.partitions); err != nil {
		return g, err
	}
	for i := range n {
		name := fmt.Sprintf("instance-%d", i)
		stateDir := filepath.Join(env.dir, appID, name)
		if err := os.MkdirAll(stateDir, 0o755); err != nil {
			return g, err
		}
		p, err := startInstance(env.exe, filepath.Join(env.dir, appID), instanceArgs{
			brokers: env.c.brokers, appID: appID, input: input, output: g.output, name: name,
			stateDir: stateDir, addrFile: filepath.Join(stateDir, "admin-addr"), standbys: standbys,
			sessionTimeout: env.c.sessionTimeout, probing: 5 * time.Second,
		})
		if err != nil {
			return g, err
		}
		g.procs = append(g.procs, p)
	}
	for _, p := range g.procs {
		if err := p.waitAdmin(ctx); err != nil {
			return g, err
		}
	}
	return g, nil
}

// stopAll stops every instance still running with a SIGTERM, and returns
// the first failure.
func (g *group) stopAll() error {
	var first error
	for _, p := range g.procs {
		if err := p.stop(syscall.SIGTERM, 30*time.Second); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// waitReady waits until the running instances of g have produced want
// outputs (want: the store keys once the store input is processed), run
// every task with none restoring, are balanced (each runs at least
// partitions/instances tasks) and, with standbys, hold every standby
// replica with no lag.
func (env *statefulEnv) waitReady(ctx context.Context, g *group, want int64, standbys int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var live []*instanceProc
	for _, p := range g.procs {
		if p.running() {
			live = append(live, p)
		}
	}
	parts := env.c.partitions
	state := "not polled yet"
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		// Checked before polling, so that a poll that failed (state holds
		// its error) counts towards the deadline too.
		if time.Now().After(deadline) {
			return fmt.Errorf("application %s not caught up after %v: %s; instance logs in %s", g.appID, timeout, state, filepath.Join(env.dir, g.appID))
		}
		for _, p := range live {
			if !p.running() {
				return fmt.Errorf("instance %s exited (%v); see %s", p.args.name, p.err, p.log.Name())
			}
		}
		ends, err := env.adm.ListEndOffsets(ctx, g.output)
		if err != nil {
			state = err.Error()
			continue
		}
		var outputs int64
		ends.Each(func(o kadm.ListedOffset) { outputs += o.Offset })
		var running, restoring, standby, lag float64
		balanced := true
		var per []string
		for _, p := range live {
			m, err := p.metrics(ctx)
			if err != nil {
				return err
			}
			running, restoring, standby, lag = running+m.running, restoring+m.restoring, standby+m.standby, lag+m.standbyLag
			balanced = balanced && int(m.running) >= parts/len(live)
			per = append(per, fmt.Sprintf("%s %v running/%v standby", p.args.name, m.running, m.standby))
		}
		if outputs >= want && int(running) == parts && restoring == 0 && balanced &&
			int(standby) == parts*standbys && lag == 0 {
			return nil
		}
		state = fmt.Sprintf("%d of %d outputs; tasks: %s; %v restoring; standby lag %v records",
			outputs, want, strings.Join(per, ", "), restoring, lag)
	}
}

// cpuNote describes the machine for the text output.
func cpuNote() string {
	return fmt.Sprintf("%d CPUs shared by the bench, its instances and the broker if local", runtime.NumCPU())
}

func numCPU() int { return runtime.NumCPU() }

// runStateful runs the stateful workloads named in names: it writes the
// store input once, then runs each workload with application ids of its
// own, and prints their rows.
func runStateful(ctx context.Context, c benchConfig, broker, run string, names []string) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("bench: find this binary to start instances: %w", err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.brokers...), kgo.MaxBufferedRecords(100_000), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	dir, err := os.MkdirTemp("", "eddy-bench-stateful-")
	if err != nil {
		return err
	}
	env := &statefulEnv{c: c, broker: broker, run: run, exe: exe, dir: dir, cl: cl, adm: kadm.NewClient(cl)}
	enc := json.NewEncoder(c.out)
	var rows []any
	for _, name := range names {
		switch name {
		case "restore":
			res, err := env.restoreWorkload(ctx)
			if err != nil {
				return fmt.Errorf("%w (instance logs and state in %s)", err, dir)
			}
			for _, r := range res {
				rows = append(rows, r)
			}
		case "failover":
			res, err := env.failoverWorkload(ctx)
			if err != nil {
				return fmt.Errorf("%w (instance logs and state in %s)", err, dir)
			}
			for _, r := range res {
				rows = append(rows, r)
			}
		case "abort":
			res, err := env.abortWorkload(ctx)
			if err != nil {
				return err
			}
			for _, r := range res {
				rows = append(rows, r)
			}
		}
	}
	for _, row := range rows {
		if c.json {
			if err := enc.Encode(row); err != nil {
				return err
			}
			continue
		}
		switch r := row.(type) {
		case benchResult:
			line := fmt.Sprintf("%-20s %10.0f records/s  (median %.2fs of %d, %d records)", r.Workload, r.RecordsPerSec, r.Seconds, r.Rounds, r.Records)
			if r.RatioVsRaw != nil {
				line += fmt.Sprintf("  %.2f x raw fetch", *r.RatioVsRaw)
			}
			fmt.Fprintln(c.out, line)
		case failoverResult:
			line := fmt.Sprintf("failover standbys %d %-8s resume %.2fs (median of %d)", r.Standbys, r.Shutdown, r.ResumeSeconds, r.Rounds)
			if r.DetectedSeconds != nil {
				line += fmt.Sprintf("  from detection %.2fs after the kill; %.2fs from kill + session timeout", *r.DetectedSeconds, *r.ResumeAfterSessionTimeoutSeconds)
			}
			fmt.Fprintln(c.out, line)
		case abortResult:
			fmt.Fprintf(c.out, "abort %-6s store, %d keys, %s %dms: %.1f ms (median of %d: %v)\n",
				r.Store, r.StoreKeys, r.Guarantee, r.CommitIntervalMS, r.MedianMS, r.Rounds, r.AllMS)
		}
	}
	// Keep the instance logs of a failed run (returned above); a run that
	// succeeded leaves nothing behind unless asked.
	if c.keepDir {
		fmt.Fprintf(os.Stderr, "instance logs and state kept in %s\n", dir)
		return nil
	}
	return os.RemoveAll(dir)
}
