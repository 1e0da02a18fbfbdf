package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddystream/eddy"
	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/topology"
	"github.com/eddystream/eddy/window"
)

type benchConfig struct {
	brokers    []string
	records    int
	keySize    int
	valueSize  int
	partitions int
	rounds     int
	json       bool
	workloads  string
	intervals  []time.Duration
	guarantees []eddy.Guarantee
	verbose    bool
	out        io.Writer

	// The stateful workloads (restore, failover).
	storeKeys      int
	instances      int
	sessionTimeout time.Duration
	failoverLoad   int
	failoverRounds int
	keepDir        bool

	// keyedKeys is the keyed count's number of distinct keys; abortRounds
	// the abort workload's rounds.
	keyedKeys   int
	abortRounds int
}

// benchResult is one workload's median over the rounds.
type benchResult struct {
	Workload      string   `json:"workload"`
	Records       int      `json:"records"`
	Seconds       float64  `json:"seconds"`
	RecordsPerSec float64  `json:"records_per_sec"`
	RatioVsRaw    *float64 `json:"ratio_vs_raw,omitempty"`
	// RatioVsAtLeastOnce is an exactly-once row's rate over its
	// at-least-once twin's (same workload and commit interval).
	RatioVsAtLeastOnce *float64  `json:"ratio_vs_at_least_once,omitempty"`
	Guarantee          string    `json:"guarantee,omitempty"`
	CommitIntervalMS   int64     `json:"commit_interval_ms,omitempty"`
	Rounds             int       `json:"rounds"`
	AllSeconds         []float64 `json:"all_seconds"`
	Broker             string    `json:"broker"`
	// StoreKeys and CPUs are set on the restore workload's rows.
	StoreKeys int `json:"store_keys,omitempty"`
	CPUs      int `json:"cpus,omitempty"`
}

func bench(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ExitOnError)
	var c benchConfig
	brokers := fs.String("brokers", "", "Kafka bootstrap brokers, comma separated (default: an in-process kfake broker)")
	fs.IntVar(&c.records, "records", 1_000_000, "input records per workload")
	fs.IntVar(&c.keySize, "key-size", 16, "key size in bytes")
	fs.IntVar(&c.valueSize, "value-size", 100, "value size in bytes (lines of words)")
	fs.IntVar(&c.partitions, "partitions", 6, "partitions of the input topic")
	fs.IntVar(&c.rounds, "rounds", 3, "rounds; each workload runs once per round, interleaved, and the median is reported")
	fs.BoolVar(&c.json, "json", false, "print one JSON object per workload")
	intervals := fs.String("commit-intervals", "100ms,1s", "commit intervals of the eddy workloads, comma separated; each is run under every guarantee")
	guarantees := fs.String("guarantees", "at-least-once,exactly-once", "processing guarantees of the eddy workloads, comma separated")
	fs.StringVar(&c.workloads, "workloads", "", "comma-separated workloads to run: raw-pipe, eddy-stateless-pipe, eddy-wordcount (the default: these three; ratios need raw-pipe), eddy-keyed-count, eddy-windowed-count, eddy-stream-table-join, restore, failover, abort")
	fs.IntVar(&c.keyedKeys, "keyed-keys", 100_000, "eddy-keyed-count: distinct keys of its input")
	fs.IntVar(&c.abortRounds, "abort-rounds", 5, "abort: aborts timed per store kind; the median is reported")
	fs.IntVar(&c.storeKeys, "store-keys", 1_000_000, "restore and failover: keys of the store")
	fs.IntVar(&c.instances, "instances", 3, "failover: instances (OS processes) of the application")
	fs.DurationVar(&c.sessionTimeout, "session-timeout", 6*time.Second, "failover: consumer group session timeout of the instances")
	fs.IntVar(&c.failoverLoad, "failover-load", 600, "failover: records/s of steady load on the input while an instance is stopped")
	fs.IntVar(&c.failoverRounds, "failover-rounds", 1, "failover: rounds of the four scenarios; the median is reported")
	fs.BoolVar(&c.keepDir, "keep", false, "restore and failover: keep the instances' logs and state directories (kept anyway after a failure)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	fs.BoolVar(&c.verbose, "v", false, "log what the eddy workloads do (debug level) to stderr")
	fs.Usage = func() {
		fs.Output().Write([]byte(`usage: eddy bench [flags]

Measures, in one run on one broker, a hand-written franz-go consume->produce
pipe (the physical limit), eddy's stateless pipe (MapValues then To) and eddy's
word count, each eddy workload under every -guarantees at every
-commit-intervals, and prints records/s, each eddy row's ratio to the raw pipe
and each exactly-once row's ratio to its at-least-once twin. Every workload
reads the same input topic from the start, in its own consumer group, and is
timed from its start until all its output is visible to a read_committed
reader.

eddy-keyed-count runs only when named: it counts the records of each key
(GroupByKey, Count in a Pebble store, logged, ToStream, To), one store update,
one changelog record and one output record per input record, over an input of
its own with as many records of the same sizes as the others' but only
-keyed-keys distinct keys. Its ratio is to the raw pipe. eddy-windowed-count,
also only when named, counts the same input per key in tumbling one-minute
windows (WindowedBy, Count in a Pebble window store, logged), forwarding every
update: the same records per input as the keyed count. eddy-stream-table-join,
only when named, left-joins the same input with a table of its keys read from
a topic of its own (TableFrom into a Pebble store): one store read and one
output record per input.

Two stateful workloads run only when named in -workloads. Both count the
records of each key of an input holding -store-keys distinct keys, with
instances run as OS processes of this binary. restore compares the raw fetch
rate of the store's changelog (a read_committed kgo consumer) with eddy's
restore of it (changelog.Restorer into Pebble stores), over -rounds rounds.
failover stops the instance running the most tasks, by SIGKILL (crash) and by
SIGTERM (graceful), with 0 and 1 standby replicas, under a steady load, and
reports the time until every moved task produces output again: from the
SIGTERM, or, after a crash, from when the group drops the killed instance
(observed with DescribeGroups; the time from SIGKILL plus -session-timeout is
reported too).

abort, run only when named, times one aborted transaction under exactly-once
(100 ms commit interval): an application with one task (one input partition)
counts -store-keys distinct keys into an in-memory store, and another into a
Pebble store; once each has committed its input, the bench asks its worker to
abort its open transaction (engine.RequestAbort, as a failed commit would),
-abort-rounds times, and reports the median time from the abort until the task
runs again.

`))
		fs.PrintDefaults()
	}
	fs.Parse(args)
	if c.records < 1 || c.keySize < 1 || c.valueSize < 8 || c.partitions < 1 || c.rounds < 1 {
		return errors.New("bench: -records, -key-size, -partitions and -rounds must be positive and -value-size at least 8")
	}
	if c.keyedKeys < 1 || c.abortRounds < 1 {
		return errors.New("bench: -keyed-keys and -abort-rounds must be positive")
	}
	if c.storeKeys < 1 || c.instances < 2 || c.sessionTimeout <= 0 || c.failoverLoad < 1 || c.failoverRounds < 1 {
		return errors.New("bench: -store-keys, -session-timeout, -failover-load and -failover-rounds must be positive and -instances at least 2")
	}
	c.out = os.Stdout
	for _, s := range strings.Split(*intervals, ",") {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return fmt.Errorf("bench: -commit-intervals: %q is not a positive duration", s)
		}
		c.intervals = append(c.intervals, d)
	}
	for _, s := range strings.Split(*guarantees, ",") {
		switch s {
		case "at-least-once":
			c.guarantees = append(c.guarantees, eddy.AtLeastOnce)
		case "exactly-once":
			c.guarantees = append(c.guarantees, eddy.ExactlyOnce)
		default:
			return fmt.Errorf("bench: -guarantees: %q is not at-least-once or exactly-once", s)
		}
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	broker := "external"
	if *brokers == "" {
		cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			return err
		}
		defer cluster.Close()
		c.brokers = cluster.ListenAddrs()
		broker = "kfake"
	} else {
		c.brokers = strings.Split(*brokers, ",")
	}
	return runBench(ctx, c, broker)
}

// throughputWorkloads are the -workloads names of the throughput
// workloads; all but the keyed count run by default.
var throughputWorkloads = []string{"raw-pipe", "eddy-stateless-pipe", "eddy-wordcount", "eddy-keyed-count", "eddy-windowed-count", "eddy-stream-table-join"}

// defaultWorkloads run when -workloads is not given.
var defaultWorkloads = []string{"raw-pipe", "eddy-stateless-pipe", "eddy-wordcount"}

// runBench runs the throughput workloads, then the stateful ones, that
// -workloads selects.
func runBench(ctx context.Context, c benchConfig, broker string) error {
	run := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	throughput, stateful := defaultWorkloads, []string(nil)
	if c.workloads != "" {
		throughput = nil
		for _, name := range strings.Split(c.workloads, ",") {
			switch {
			case slices.Contains(throughputWorkloads, name):
				throughput = append(throughput, name)
			case slices.Contains(statefulWorkloads, name):
				stateful = append(stateful, name)
			default:
				return fmt.Errorf("bench: -workloads: unknown workload %q; choose from %s, %s", name,
					strings.Join(throughputWorkloads, ", "), strings.Join(statefulWorkloads, ", "))
			}
		}
	}
	if len(throughput) > 0 {
		if err := runThroughput(ctx, c, broker, run, throughput); err != nil {
			return err
		}
	}
	if len(stateful) > 0 {
		return runStateful(ctx, c, broker, run, stateful)
	}
	return nil
}

// runThroughput runs the throughput workloads named in keep.
func runThroughput(ctx context.Context, c benchConfig, broker, run string, keep []string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.brokers...), kgo.MaxBufferedRecords(100_000), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	input := run + "-input"
	if err := createTopic(ctx, adm, input, c.partitions); err != nil {
		return err
	}
	words, err := produceInput(ctx, cl, input, c)
	if err != nil {
		return err
	}
	if !c.json {
		fmt.Fprintf(c.out, "broker %s, %d records of %d-byte keys and %d-byte values on %d partitions (%d words), %d rounds\n",
			broker, c.records, c.keySize, c.valueSize, c.partitions, words, c.rounds)
	}
	keyedInput := run + "-keyed-input"
	table := run + "-table"
	if slices.Contains(keep, "eddy-stream-table-join") {
		// The table first: its records are older than the stream's.
		if err := createTopic(ctx, adm, table, c.partitions); err != nil {
			return err
		}
		if err := produceJoinTable(ctx, cl, table, c); err != nil {
			return err
		}
	}
	if slices.Contains(keep, "eddy-keyed-count") || slices.Contains(keep, "eddy-windowed-count") || slices.Contains(keep, "eddy-stream-table-join") {
		if err := createTopic(ctx, adm, keyedInput, c.partitions); err != nil {
			return err
		}
		if err := produceKeyedInput(ctx, cl, keyedInput, c); err != nil {
			return err
		}
		if !c.json {
			fmt.Fprintf(c.out, "keyed count input: %d records over %d distinct keys\n", c.records, c.keyedKeys)
		}
	}
	// A workload runs once per variant; twins (same workload and commit
	// interval, other guarantee) share the workload name.
	type workload struct {
		name    string
		variant variant
		run     func(ctx context.Context, id, output string) (done time.Time, err error)
		times   []float64
		twin    *workload // the at-least-once twin of an exactly-once row
	}
	wls := []*workload{{name: "raw-pipe", run: func(ctx context.Context, id, output string) (time.Time, error) {
		return rawPipe(ctx, c, input, output, id)
	}}}
	for _, name := range []string{"eddy-stateless-pipe", "eddy-wordcount", "eddy-keyed-count", "eddy-windowed-count", "eddy-stream-table-join"} {
		for _, iv := range c.intervals {
			first := len(wls)
			for _, g := range c.guarantees {
				v := variant{guarantee: g, commitInterval: iv}
				w := &workload{name: name, variant: v}
				if g == eddy.ExactlyOnce && len(wls) > first {
					w.twin = wls[first] // the at-least-once row added just before
				}
				switch name {
				case "eddy-stateless-pipe":
					w.run = func(ctx context.Context, id, output string) (time.Time, error) {
						return eddyPipe(ctx, c, v, input, output, id)
					}
				case "eddy-wordcount":
					w.run = func(ctx context.Context, id, output string) (time.Time, error) {
						return eddyWordCount(ctx, c, v, input, output, id, words)
					}
				case "eddy-stream-table-join":
					w.run = func(ctx context.Context, id, output string) (time.Time, error) {
						return eddyStreamTableJoin(ctx, c, v, keyedInput, table, output, id)
					}
				case "eddy-windowed-count":
					w.run = func(ctx context.Context, id, output string) (time.Time, error) {
						return eddyWindowedCount(ctx, c, v, keyedInput, output, id)
					}
				default:
					w.run = func(ctx context.Context, id, output string) (time.Time, error) {
						return eddyKeyedCount(ctx, c, v, keyedInput, output, id)
					}
				}
				wls = append(wls, w)
			}
		}
	}
	wls = slices.DeleteFunc(wls, func(w *workload) bool { return !slices.Contains(keep, w.name) })
	label := func(w *workload) string {
		if w.variant.commitInterval == 0 {
			return w.name
		}
		return fmt.Sprintf("%s %s %v", w.name, w.variant.guarantee, w.variant.commitInterval)
	}
	for round := 0; round < c.rounds; round++ {
		for i, w := range wls {
			id := fmt.Sprintf("%s-%d-%d", run, round, i)
			output := id + "-out"
			if err := createTopic(ctx, adm, output, c.partitions); err != nil {
				return err
			}
			start := time.Now()
			done, err := w.run(ctx, id, output)
			if err != nil {
				return fmt.Errorf("%s: %w", label(w), err)
			}
			w.times = append(w.times, done.Sub(start).Seconds())
			if !c.json {
				fmt.Fprintf(c.out, "  round %d %-48s %6.2fs\n", round+1, label(w), w.times[len(w.times)-1])
			}
		}
	}
	var rawRate float64
	rates := map[*workload]float64{}
	enc := json.NewEncoder(c.out)
	for _, w := range wls {
		med := median(w.times)
		r := benchResult{Workload: w.name, Records: c.records, Seconds: med, RecordsPerSec: float64(c.records) / med, Rounds: c.rounds, AllSeconds: w.times, Broker: broker}
		rates[w] = r.RecordsPerSec
		if w.variant.commitInterval == 0 {
			rawRate = r.RecordsPerSec
		} else {
			if rawRate > 0 {
				ratio := r.RecordsPerSec / rawRate
				r.RatioVsRaw = &ratio
			}
			if twinRate := rates[w.twin]; w.twin != nil && twinRate > 0 {
				ratio := r.RecordsPerSec / twinRate
				r.RatioVsAtLeastOnce = &ratio
			}
			r.Guarantee = w.variant.guarantee.String()
			r.CommitIntervalMS = w.variant.commitInterval.Milliseconds()
		}
		if c.json {
			if err := enc.Encode(r); err != nil {
				return err
			}
			continue
		}
		line := fmt.Sprintf("%-48s %10.0f records/s  (median %.2fs of %d)", label(w), r.RecordsPerSec, med, c.rounds)
		if r.RatioVsRaw != nil {
			line += fmt.Sprintf("  %.2f x raw", *r.RatioVsRaw)
		}
		if r.RatioVsAtLeastOnce != nil {
			line += fmt.Sprintf("  %.2f x at-least-once", *r.RatioVsAtLeastOnce)
		}
		fmt.Fprintln(c.out, line)
	}
	return nil
}

// variant is a processing guarantee and a commit interval.
type variant struct {
	guarantee      eddy.Guarantee
	commitInterval time.Duration
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func createTopic(ctx context.Context, adm *kadm.Client, topic string, partitions int) error {
	resp, err := adm.CreateTopic(ctx, int32(partitions), -1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	return nil
}

var benchWords = strings.Fields("stream table task state store changelog partition offset commit restore broker topic record key value group member leader replica fetch produce")

// produceInput writes the input: random keys and values made of words,
// cut to size. It returns the number of words in all values, which is the
// word count's number of output records.
func produceInput(ctx context.Context, cl *kgo.Client, topic string, c benchConfig) (int, error) {
	rng := rand.New(rand.NewPCG(1, 2))
	words := 0
	var failed atomic.Value
	for i := 0; i < c.records; i++ {
		key := make([]byte, c.keySize)
		for j := range key {
			key[j] = 'a' + byte(rng.IntN(26))
		}
		var sb strings.Builder
		for sb.Len() < c.valueSize {
			sb.WriteString(benchWords[rng.IntN(len(benchWords))])
			sb.WriteByte(' ')
		}
		value := []byte(sb.String()[:c.valueSize])
		words += len(strings.Fields(string(value)))
		cl.Produce(ctx, &kgo.Record{Topic: topic, Key: key, Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.Store(err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return 0, err
	}
	if err, _ := failed.Load().(error); err != nil {
		return 0, fmt.Errorf("produce the input: %w", err)
	}
	return words, nil
}

// keyedInputKeys draws the keyed input's c.keyedKeys distinct random keys
// from rng.
func keyedInputKeys(rng *rand.Rand, c benchConfig) [][]byte {
	keys := make([][]byte, c.keyedKeys)
	seen := map[string]bool{}
	for i := range keys {
		for {
			k := make([]byte, c.keySize)
			for j := range k {
				k[j] = 'a' + byte(rng.IntN(26))
			}
			if !seen[string(k)] {
				seen[string(k)] = true
				keys[i] = k
				break
			}
		}
	}
	return keys
}

// produceJoinTable writes the stream-table join's table: one record per
// key of the keyed input, with a value of c.valueSize bytes.
func produceJoinTable(ctx context.Context, cl *kgo.Client, topic string, c benchConfig) error {
	keys := keyedInputKeys(rand.New(rand.NewPCG(3, 4)), c)
	value := []byte(strings.Repeat("t", c.valueSize))
	recs := make([]*kgo.Record, len(keys))
	for i, k := range keys {
		recs[i] = &kgo.Record{Topic: topic, Key: k, Value: value}
	}
	return cl.ProduceSync(ctx, recs...).FirstErr()
}

// produceKeyedInput writes the keyed count's input: as many records as
// the other workloads' input, of the same key and value sizes, whose keys
// cycle through c.keyedKeys distinct random keys.
func produceKeyedInput(ctx context.Context, cl *kgo.Client, topic string, c benchConfig) error {
	rng := rand.New(rand.NewPCG(3, 4))
	keys := keyedInputKeys(rng, c)
	var failed atomic.Value
	for i := 0; i < c.records; i++ {
		var sb strings.Builder
		for sb.Len() < c.valueSize {
			sb.WriteString(benchWords[rng.IntN(len(benchWords))])
			sb.WriteByte(' ')
		}
		cl.Produce(ctx, &kgo.Record{Topic: topic, Key: keys[i%len(keys)], Value: []byte(sb.String()[:c.valueSize])}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.Store(err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	if err, _ := failed.Load().(error); err != nil {
		return fmt.Errorf("produce the keyed count input: %w", err)
	}
	return nil
}

// rawPipe is the hand-written franz-go pipe: a group consumer that
// produces every record it reads to output, until all are acknowledged.
func rawPipe(ctx context.Context, c benchConfig, input, output, group string) (time.Time, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.brokers...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(input),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.MaxBufferedRecords(100_000), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return time.Time{}, err
	}
	defer cl.Close()
	var acked atomic.Int64
	var failed atomic.Value
	done := make(chan struct{})
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			failed.Store(err)
		}
		if acked.Add(1) == int64(c.records) {
			close(done)
		}
	}
	var finished time.Time
	consumed := 0
	for consumed < c.records {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return time.Time{}, err
		}
		fetches.EachRecord(func(r *kgo.Record) {
			consumed++
			cl.Produce(ctx, &kgo.Record{Topic: output, Key: r.Key, Value: r.Value, Timestamp: r.Timestamp}, promise)
		})
	}
	select {
	case <-done:
		finished = time.Now()
	case <-ctx.Done():
		return time.Time{}, ctx.Err()
	}
	if err, _ := failed.Load().(error); err != nil {
		return time.Time{}, err
	}
	return finished, nil
}

// runEddy runs top until output holds want records.
// runEddy runs top until every output is visible to a read_committed
// reader: under at-least-once, when output holds want records; under
// exactly-once, when the group has committed input (and, for a workload
// with a repartition topic, that too) to its end, since outputs become
// visible with the transaction that commits their input.
func runEddy(ctx context.Context, c benchConfig, v variant, top *topology.Topology, id, input, repartition, output string, want int) (time.Time, error) {
	dir, err := os.MkdirTemp("", "eddy-bench-")
	if err != nil {
		return time.Time{}, err
	}
	defer os.RemoveAll(dir)
	app, err := eddy.New(top, eddy.ApplicationID(id), eddy.Brokers(c.brokers...), eddy.StateDir(dir),
		eddy.ProcessingGuarantee(v.guarantee), eddy.CommitInterval(v.commitInterval), eddy.Logger(benchLogger(c.verbose)),
		eddy.KafkaOptions(kgo.RebalanceTimeout(5*time.Second)))
	if err != nil {
		return time.Time{}, err
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- app.Run(runCtx) }()
	wait := func() error { return waitOutput(ctx, c.brokers, output, want, errc) }
	if v.guarantee == eddy.ExactlyOnce {
		wait = func() error { return waitCommitted(ctx, c.brokers, id, input, repartition, errc) }
	}
	if err := wait(); err != nil {
		cancel()
		<-errc
		return time.Time{}, err
	}
	// The output is complete: the run's time ends here, before shutdown.
	done := time.Now()
	cancel()
	return done, <-errc
}

// pollUntil calls done every 20 ms with an admin client until it reports
// true, the application stops (errc) or ctx ends.
func pollUntil(ctx context.Context, brokers []string, errc chan error, done func(*kadm.Client) bool) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-errc:
			if err == nil {
				err = errors.New("the application stopped early")
			}
			return err
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		if done(adm) {
			return nil
		}
	}
}

// waitOutput waits until output's end offsets add up to want.
func waitOutput(ctx context.Context, brokers []string, output string, want int, errc chan error) error {
	return pollUntil(ctx, brokers, errc, func(adm *kadm.Client) bool {
		ends, err := adm.ListEndOffsets(ctx, output)
		if err != nil {
			return false
		}
		var n int64
		ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
		return n >= int64(want)
	})
}

// waitCommitted waits until group has committed input to its end and,
// when repartition is set, that transactional topic to its end: a
// partition written in transactions ends with a commit marker, so its
// committed offset stops one short of the end once no transaction is
// open (last stable offset = end).
func waitCommitted(ctx context.Context, brokers []string, group, input, repartition string, errc chan error) error {
	topics := []string{input}
	if repartition != "" {
		topics = append(topics, repartition)
	}
	return pollUntil(ctx, brokers, errc, func(adm *kadm.Client) bool {
		committed, err1 := adm.FetchOffsets(ctx, group)
		ends, err2 := adm.ListEndOffsets(ctx, topics...)
		stable, err3 := adm.ListCommittedOffsets(ctx, topics...)
		if err1 != nil || err2 != nil || err3 != nil || len(ends) < len(topics) {
			return false
		}
		done := true
		ends.Each(func(e kadm.ListedOffset) {
			c, ok := committed.Lookup(e.Topic, e.Partition)
			st, _ := stable.Lookup(e.Topic, e.Partition)
			switch {
			case e.Err != nil:
				done = false
			case e.Offset == 0:
			case e.Topic == input && (!ok || c.At < e.Offset):
				done = false
			case e.Topic == repartition && (!ok || st.Offset != e.Offset || c.At < e.Offset-1):
				done = false
			}
		})
		return done
	})
}

func eddyPipe(ctx context.Context, c benchConfig, v variant, input, output, id string) (time.Time, error) {
	b := topology.NewBuilder()
	src := topology.Source(b, input, serde.Bytes(), serde.Bytes())
	topology.MapValues(src, func(v []byte) []byte { return v }).To(output)
	top, err := b.Build()
	if err != nil {
		return time.Time{}, err
	}
	return runEddy(ctx, c, v, top, id, input, "", output, c.records)
}

func eddyWordCount(ctx context.Context, c benchConfig, v variant, input, output, id string, want int) (time.Time, error) {
	b := topology.NewBuilder()
	src := topology.Source(b, input, serde.String(), serde.String())
	words := topology.FlatMap(src, func(_ string, line string) []topology.KeyValue[string, string] {
		fs := strings.Fields(line)
		out := make([]topology.KeyValue[string, string], len(fs))
		for i, w := range fs {
			out[i] = topology.KV(w, w)
		}
		return out
	})
	words.GroupByKey().Count(topology.StoreName("counts")).ToStream().To(output)
	top, err := b.Build()
	if err != nil {
		return time.Time{}, err
	}
	return runEddy(ctx, c, v, top, id, input, id+"-counts-repartition", output, want)
}

// eddyKeyedCount counts the records of each key of input into a Pebble
// store (the default), with one output record per input record. The key
// does not change, so there is no repartition topic.
func eddyKeyedCount(ctx context.Context, c benchConfig, v variant, input, output, id string) (time.Time, error) {
	b := topology.NewBuilder()
	src := topology.Source(b, input, serde.Bytes(), serde.Bytes())
	src.GroupByKey().Count(topology.StoreName("counts")).ToStream().To(output)
	top, err := b.Build()
	if err != nil {
		return time.Time{}, err
	}
	return runEddy(ctx, c, v, top, id, input, "", output, c.records)
}

// eddyWindowedCount counts the keyed input per key in tumbling one-minute
// windows (no grace) in a Pebble window store, logged, forwarding every
// update: one window store update, one changelog record and one output
// record per input record, as the keyed count, plus the window arithmetic
// and the segmented layout.
func eddyWindowedCount(ctx context.Context, c benchConfig, v variant, input, output, id string) (time.Time, error) {
	w, err := window.TimeWindowsOfSizeWithNoGrace(time.Minute)
	if err != nil {
		return time.Time{}, err
	}
	b := topology.NewBuilder()
	src := topology.Source(b, input, serde.Bytes(), serde.Bytes())
	topology.WindowedBy(src.GroupByKey(), w).Count(topology.StoreName("windowed-counts")).ToStream().To(output)
	top, err := b.Build()
	if err != nil {
		return time.Time{}, err
	}
	return runEddy(ctx, c, v, top, id, input, "", output, c.records)
}

// eddyStreamTableJoin joins the keyed input with a table of its keys read
// from a topic (TableFrom into a Pebble store, then LeftJoinTable): one
// store read and one output record per input record, besides reading the
// table itself. A left join, so that the output count does not depend on
// whether a key's table record was read before its first stream record.
func eddyStreamTableJoin(ctx context.Context, c benchConfig, v variant, input, table, output, id string) (time.Time, error) {
	b := topology.NewBuilder()
	t := topology.TableFrom(b, table, serde.Bytes(), serde.Bytes(), topology.StoreName("table"))
	src := topology.Source(b, input, serde.Bytes(), serde.Bytes())
	topology.LeftJoinTable(src, t, func(_, v, _ []byte) []byte { return v }).To(output)
	top, err := b.Build()
	if err != nil {
		return time.Time{}, err
	}
	return runEddy(ctx, c, v, top, id, input, "", output, c.records)
}

func benchLogger(verbose bool) *slog.Logger {
	if !verbose {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
