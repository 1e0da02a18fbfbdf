package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// failoverResult is one failover scenario's row: the median over its
// rounds of the time until every task of the stopped instance produced
// output again elsewhere.
type failoverResult struct {
	Workload  string `json:"workload"` // "failover"
	Standbys  int    `json:"standbys"`
	Shutdown  string `json:"shutdown"` // "crash" (SIGKILL) or "graceful" (SIGTERM)
	StoreKeys int    `json:"store_keys"`
	// ResumeSeconds is, for each moved task, the time from t0 to its first
	// output appended by another instance, maxed over the moved tasks,
	// median over the rounds. t0 is the SIGTERM for a graceful shutdown;
	// for a crash it is when the group coordinator dropped the killed
	// instance's members, as observed by polling DescribeGroups every
	// 50 ms.
	ResumeSeconds    float64   `json:"resume_seconds"`
	AllResumeSeconds []float64 `json:"all_resume_seconds"`
	// DetectedSeconds (crash only) is the time from the SIGKILL to that
	// detection, median over the rounds. It is below the session timeout
	// by up to a heartbeat interval, because the coordinator counts the
	// session from the last heartbeat, which came before the kill.
	DetectedSeconds *float64 `json:"detected_seconds,omitempty"`
	// ResumeAfterSessionTimeoutSeconds (crash only) is the resume time
	// measured from the SIGKILL plus the session timeout instead, median
	// over the rounds; it can be negative for the reason above.
	ResumeAfterSessionTimeoutSeconds *float64 `json:"resume_after_session_timeout_seconds,omitempty"`
	// TaskResumeSeconds is each moved task's resume time in the last round.
	TaskResumeSeconds map[string]float64 `json:"task_resume_seconds"`
	// StandbyLagAtShutdown is eddy_standby_lag_records summed over the
	// instances just before the last round's shutdown.
	StandbyLagAtShutdown float64 `json:"standby_lag_at_shutdown_records"`
	Instances            int     `json:"instances"`
	Partitions           int     `json:"partitions"`
	SessionTimeoutMS     int64   `json:"session_timeout_ms"`
	LoadPerSec           int     `json:"load_records_per_sec"`
	Rounds               int     `json:"rounds"`
	Broker               string  `json:"broker"`
	CPUs                 int     `json:"cpus"`
}

// failoverRun is what one round of a failover scenario measured.
type failoverRun struct {
	resume, detected, resumeAfterSession float64
	tasks                                map[string]float64
	standbyLag                           float64
}

// failoverWorkload runs every failover scenario (0 and 1 standbys, each
// after a crash and after a graceful shutdown) for -failover-rounds rounds,
// interleaved, and returns a row per scenario.
func (env *statefulEnv) failoverWorkload(ctx context.Context) ([]failoverResult, error) {
	c := env.c
	type scenario struct {
		standbys int
		shutdown string
		runs     []failoverRun
	}
	var scs []*scenario
	for _, standbys := range []int{0, 1} {
		for _, shutdown := range []string{"crash", "graceful"} {
			scs = append(scs, &scenario{standbys: standbys, shutdown: shutdown})
		}
	}
	if !c.json {
		fmt.Fprintf(c.out, "failover: %d keys on %d partitions, %d instances, session timeout %v, load %d records/s, %d rounds; %s\n",
			c.storeKeys, c.partitions, c.instances, c.sessionTimeout, c.failoverLoad, c.failoverRounds, cpuNote())
	}
	for round := range c.failoverRounds {
		for _, sc := range scs {
			appID := fmt.Sprintf("%s-failover-%d-%s-%d", env.run, sc.standbys, sc.shutdown, round)
			r, err := env.failoverRound(ctx, appID, sc.standbys, sc.shutdown)
			if err != nil {
				return nil, fmt.Errorf("failover %d standbys %s: %w", sc.standbys, sc.shutdown, err)
			}
			sc.runs = append(sc.runs, r)
			if !c.json {
				line := fmt.Sprintf("  round %d standbys %d %-8s resume %6.2fs", round+1, sc.standbys, sc.shutdown, r.resume)
				if sc.shutdown == "crash" {
					line += fmt.Sprintf("  (from detection, %.2fs after the kill; %.2fs from kill + session timeout)", r.detected, r.resumeAfterSession)
				}
				fmt.Fprintf(c.out, "%s  tasks %v\n", line, formatTasks(r.tasks))
			}
		}
	}
	var rows []failoverResult
	for _, sc := range scs {
		last := sc.runs[len(sc.runs)-1]
		row := failoverResult{Workload: "failover", Standbys: sc.standbys, Shutdown: sc.shutdown, StoreKeys: c.storeKeys,
			TaskResumeSeconds: last.tasks, StandbyLagAtShutdown: last.standbyLag, Instances: c.instances, Partitions: c.partitions,
			SessionTimeoutMS: c.sessionTimeout.Milliseconds(), LoadPerSec: c.failoverLoad, Rounds: c.failoverRounds, Broker: env.broker, CPUs: numCPU()}
		var detected, after []float64
		for _, r := range sc.runs {
			row.AllResumeSeconds = append(row.AllResumeSeconds, r.resume)
			detected, after = append(detected, r.detected), append(after, r.resumeAfterSession)
		}
		row.ResumeSeconds = median(row.AllResumeSeconds)
		if sc.shutdown == "crash" {
			d, a := median(detected), median(after)
			row.DetectedSeconds, row.ResumeAfterSessionTimeoutSeconds = &d, &a
		}
		rows = append(rows, row)
	}
	return rows, nil
}

func formatTasks(tasks map[string]float64) string {
	var parts []string
	for _, id := range slices.Sorted(maps.Keys(tasks)) {
		parts = append(parts, fmt.Sprintf("%s %.2fs", id, tasks[id]))
	}
	return strings.Join(parts, ", ")
}

// failoverRound runs one scenario once under application id appID: it
// starts the instances, waits until they have counted the store input
// and, with standbys, until the standbys have caught up, starts a steady
// load on every input partition, stops the instance running the most
// tasks (SIGKILL for a crash, SIGTERM for a graceful shutdown) and waits
// until every task it ran has produced output from another instance.
func (env *statefulEnv) failoverRound(ctx context.Context, appID string, standbys int, shutdown string) (r failoverRun, err error) {
	c := env.c
	// The instances start on an empty input, so that the group balances
	// the tasks at once (no instance is behind on any task's state) and
	// no instance keeps a copy of a task it ran only at first: without
	// standbys, the tasks of the stopped instance restore in full.
	input := appID + "-in"
	if err := createTopic(ctx, env.adm, input, c.partitions); err != nil {
		return r, err
	}
	g, err := env.startGroup(ctx, appID, input, c.instances, standbys)
	defer func() {
		if err2 := g.stopAll(); err == nil {
			err = err2
		}
	}()
	if err != nil {
		return r, err
	}
	if err := env.waitReady(ctx, g, 0, standbys, 5*time.Minute); err != nil {
		return r, err
	}
	if err := produceStoreInput(ctx, env.cl, input, c.storeKeys); err != nil {
		return r, err
	}
	if err := env.waitReady(ctx, g, int64(c.storeKeys), standbys, 10*time.Minute); err != nil {
		return r, err
	}

	w, err := watchOutput(c.brokers, g.output)
	if err != nil {
		return r, err
	}
	defer w.stop()
	load, err := startLoad(c.brokers, input, c.storeKeys, c.failoverLoad)
	if err != nil {
		return r, err
	}
	defer func() {
		if err2 := load.stop(); err == nil {
			err = err2
		}
	}()
	// Let the load flow until every task has produced output under it,
	// and a little longer, so that standbys run at their steady lag.
	settled := time.Now().Add(3 * time.Second)
	if err := poll(ctx, 50*time.Millisecond, 2*time.Minute, func() (bool, error) {
		return time.Now().After(settled) && w.partitionsSeen() == c.partitions, nil
	}); err != nil {
		return r, fmt.Errorf("waiting for output on every partition under load: %w", err)
	}

	owned, err := assignment(ctx, env.adm, appID, input)
	if err != nil {
		return r, err
	}
	var victim *instanceProc
	for _, p := range g.procs {
		if victim == nil || len(owned[p.args.name]) > len(owned[victim.args.name]) {
			victim = p
		}
	}
	moved := owned[victim.args.name]
	if len(moved) == 0 {
		return r, fmt.Errorf("no instance owns a task: %v", owned)
	}
	for _, p := range g.procs {
		m, err := p.metrics(ctx)
		if err != nil {
			return r, err
		}
		r.standbyLag += m.standbyLag
	}

	sig := syscall.SIGKILL
	if shutdown == "graceful" {
		sig = syscall.SIGTERM
	}
	w.arm(victim.args.name)
	stopped := time.Now()
	if err := victim.cmd.Process.Signal(sig); err != nil {
		return r, fmt.Errorf("signal %s: %w", victim.args.name, err)
	}
	t0 := stopped
	if shutdown == "crash" {
		if err := poll(ctx, 50*time.Millisecond, c.sessionTimeout+time.Minute, func() (bool, error) {
			owned, err := assignment(ctx, env.adm, appID, input)
			_, present := owned[victim.args.name]
			return err == nil && !present, nil
		}); err != nil {
			return r, fmt.Errorf("waiting for the group to drop %s: %w", victim.args.name, err)
		}
		t0 = time.Now()
		r.detected = t0.Sub(stopped).Seconds()
	}

	var firsts map[int32]time.Time
	if err := poll(ctx, 50*time.Millisecond, c.sessionTimeout+5*time.Minute, func() (bool, error) {
		firsts = w.firstOutputs(moved)
		return len(firsts) == len(moved), nil
	}); err != nil {
		return r, fmt.Errorf("waiting for output of the moved tasks %v (got %v); instance logs in %s: %w", moved, firsts, g.procs[0].log.Name(), err)
	}
	r.tasks = map[string]float64{}
	var last time.Time
	for p, at := range firsts {
		r.tasks[fmt.Sprintf("0_%d", p)] = at.Sub(t0).Seconds()
		if at.After(last) {
			last = at
		}
	}
	r.resume = last.Sub(t0).Seconds()
	if shutdown == "crash" {
		r.resumeAfterSession = last.Sub(stopped.Add(c.sessionTimeout)).Seconds()
	}
	if shutdown == "graceful" {
		if err := victim.stop(syscall.SIGTERM, 30*time.Second); err != nil {
			return r, err
		}
	}
	return r, nil
}

// poll calls done every interval until it reports true, fails, ctx ends
// or timeout passes.
func poll(ctx context.Context, interval, timeout time.Duration, done func() (bool, error)) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	deadline := time.Now().Add(timeout)
	for {
		ok, err := done()
		if err != nil || ok {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// assignment returns the input partitions assigned to each instance of
// group (by client id, which is the instance's name), decoded from the
// consumer-protocol envelope of the members' assignments.
func assignment(ctx context.Context, adm *kadm.Client, group, input string) (map[string][]int32, error) {
	described, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return nil, fmt.Errorf("describe group %s: %w", group, err)
	}
	d, ok := described[group]
	if !ok || d.Err != nil {
		return nil, fmt.Errorf("describe group %s: %v", group, d.Err)
	}
	owned := map[string][]int32{}
	for _, m := range d.Members {
		if _, ok := owned[m.ClientID]; !ok {
			owned[m.ClientID] = nil // listed, even while it owns nothing
		}
		if a, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range a.Topics {
				if t.Topic == input {
					owned[m.ClientID] = append(owned[m.ClientID], t.Partitions...)
				}
			}
		}
	}
	return owned, nil
}

// outputWatcher reads an output topic of the counting application from
// its end and remembers, once armed with the name of the instance about to
// stop, the first record each partition gets from another instance: the
// first output of a moved task. Output topics are created with
// LogAppendTime, so a record's timestamp is when the broker appended it;
// on a broker that ignores that setting, the time the watcher read it is
// used instead.
type outputWatcher struct {
	cl     *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}

	mu struct {
		sync.Mutex
		seen   map[int32]bool
		victim string
		since  time.Time
		first  map[int32]time.Time
	}
}

// watchOutput starts watching topic; stop ends it.
func watchOutput(brokers []string, topic string) (*outputWatcher, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()),
		kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &outputWatcher{cl: cl, cancel: cancel, done: make(chan struct{})}
	w.mu.seen = map[int32]bool{}
	w.mu.first = map[int32]time.Time{}
	go func() {
		defer close(w.done)
		for ctx.Err() == nil {
			fetches := cl.PollFetches(ctx)
			now := time.Now()
			fetches.EachRecord(func(r *kgo.Record) { w.add(r, now) })
		}
	}()
	return w, nil
}

func (w *outputWatcher) add(r *kgo.Record, now time.Time) {
	at := r.Timestamp
	if r.Attrs.TimestampType() != 1 { // not LogAppendTime
		at = now
	}
	producer, _, _ := strings.Cut(string(r.Value), " ")
	w.mu.Lock()
	defer w.mu.Unlock()
	w.mu.seen[r.Partition] = true
	if w.mu.victim == "" || producer == w.mu.victim || at.Before(w.mu.since) {
		return
	}
	if _, ok := w.mu.first[r.Partition]; !ok {
		w.mu.first[r.Partition] = at
	}
}

// arm starts looking for outputs of other instances than victim. The
// broker stamps times in milliseconds, so since is rounded down to one.
func (w *outputWatcher) arm(victim string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.mu.victim, w.mu.since = victim, time.Now().Truncate(time.Millisecond)
}

func (w *outputWatcher) partitionsSeen() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.mu.seen)
}

// firstOutputs returns the first output since arm of those of partitions
// that have one.
func (w *outputWatcher) firstOutputs(partitions []int32) map[int32]time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[int32]time.Time{}
	for _, p := range partitions {
		if at, ok := w.mu.first[p]; ok {
			out[p] = at
		}
	}
	return out
}

func (w *outputWatcher) stop() {
	w.cancel()
	<-w.done
	w.cl.Close()
}

// loadGen produces a steady load of updates to random store keys, so that
// every input partition gets records all the time.
type loadGen struct {
	cl     *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}
	failed error // the first produce error, read after done closes
	mu     sync.Mutex
}

// startLoad starts producing rate records/s to topic; stop ends it.
func startLoad(brokers []string, topic string, keys, rate int) (*loadGen, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &loadGen{cl: cl, cancel: cancel, done: make(chan struct{})}
	promise := func(_ *kgo.Record, err error) {
		if err != nil && !errors.Is(err, context.Canceled) {
			l.mu.Lock()
			if l.failed == nil {
				l.failed = err
			}
			l.mu.Unlock()
		}
	}
	go func() {
		defer close(l.done)
		const interval = 10 * time.Millisecond
		tick := time.NewTicker(interval)
		defer tick.Stop()
		rng := rand.New(rand.NewPCG(3, 4))
		var owed float64
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			for owed += float64(rate) * interval.Seconds(); owed >= 1; owed-- {
				cl.Produce(ctx, &kgo.Record{Topic: topic, Key: storeKey(rng.IntN(keys)), Value: []byte("v")}, promise)
			}
		}
	}()
	return l, nil
}

// stop ends the load, waits for what was produced, and returns the first
// produce error.
func (l *loadGen) stop() error {
	l.cancel()
	<-l.done
	flushCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l.cl.Flush(flushCtx)
	l.cl.Close()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failed != nil {
		return fmt.Errorf("produce the load: %w", l.failed)
	}
	return nil
}
