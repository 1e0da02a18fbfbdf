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
	verbose    bool
	out        io.Writer
}

// benchResult is one workload's median over the rounds.
type benchResult struct {
	Workload         string    `json:"workload"`
	Records          int       `json:"records"`
	Seconds          float64   `json:"seconds"`
	RecordsPerSec    float64   `json:"records_per_sec"`
	RatioVsRaw       *float64  `json:"ratio_vs_raw,omitempty"`
	Guarantee        string    `json:"guarantee,omitempty"`
	CommitIntervalMS int64     `json:"commit_interval_ms,omitempty"`
	Rounds           int       `json:"rounds"`
	AllSeconds       []float64 `json:"all_seconds"`
	Broker           string    `json:"broker"`
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
	fs.StringVar(&c.workloads, "workloads", "", "comma-separated workloads to run (default all: raw-pipe, eddy-stateless-pipe, eddy-wordcount); ratios need raw-pipe")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	fs.BoolVar(&c.verbose, "v", false, "log what the eddy workloads do (debug level) to stderr")
	fs.Usage = func() {
		fs.Output().Write([]byte(`usage: eddy bench [flags]

Measures, in one run on one broker, a hand-written franz-go consume->produce
pipe (the physical limit), eddy's stateless pipe (MapValues then To) and eddy's
word count, and prints records/s for each and each eddy workload's ratio to the
raw pipe. Every workload reads the same input topic from the start, in its own
consumer group, and is timed from its start until its last output record is
acknowledged by the broker.

`))
		fs.PrintDefaults()
	}
	fs.Parse(args)
	if c.records < 1 || c.keySize < 1 || c.valueSize < 8 || c.partitions < 1 || c.rounds < 1 {
		return errors.New("bench: -records, -key-size, -partitions and -rounds must be positive and -value-size at least 8")
	}
	c.out = os.Stdout
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

func runBench(ctx context.Context, c benchConfig, broker string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.brokers...), kgo.MaxBufferedRecords(100_000), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	run := fmt.Sprintf("bench-%d", time.Now().UnixNano())
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
	type workload struct {
		name  string
		eddy  bool
		outN  int
		run   func(ctx context.Context, id, output string) error
		times []float64
	}
	wls := []*workload{
		{name: "raw-pipe", outN: c.records, run: func(ctx context.Context, id, output string) error { return rawPipe(ctx, c, input, output, id) }},
		{name: "eddy-stateless-pipe", eddy: true, outN: c.records, run: func(ctx context.Context, id, output string) error {
			return eddyPipe(ctx, c, input, output, id, c.records)
		}},
		{name: "eddy-wordcount", eddy: true, outN: words, run: func(ctx context.Context, id, output string) error {
			return eddyWordCount(ctx, c, input, output, id, words)
		}},
	}
	if c.workloads != "" {
		keep := strings.Split(c.workloads, ",")
		wls = slices.DeleteFunc(wls, func(w *workload) bool { return !slices.Contains(keep, w.name) })
		if len(wls) == 0 {
			return fmt.Errorf("bench: no workload matches -workloads %q", c.workloads)
		}
	}
	for round := 0; round < c.rounds; round++ {
		for i, w := range wls {
			id := fmt.Sprintf("%s-%d-%d", run, round, i)
			output := id + "-out"
			if err := createTopic(ctx, adm, output, c.partitions); err != nil {
				return err
			}
			start := time.Now()
			if err := w.run(ctx, id, output); err != nil {
				return fmt.Errorf("%s: %w", w.name, err)
			}
			w.times = append(w.times, time.Since(start).Seconds())
			if !c.json {
				fmt.Fprintf(c.out, "  round %d %-20s %6.2fs\n", round+1, w.name, w.times[len(w.times)-1])
			}
		}
	}
	var rawRate float64
	enc := json.NewEncoder(c.out)
	for _, w := range wls {
		med := median(w.times)
		r := benchResult{Workload: w.name, Records: c.records, Seconds: med, RecordsPerSec: float64(c.records) / med, Rounds: c.rounds, AllSeconds: w.times, Broker: broker}
		if !w.eddy {
			rawRate = r.RecordsPerSec
		} else {
			if rawRate > 0 {
				ratio := r.RecordsPerSec / rawRate
				r.RatioVsRaw = &ratio
			}
			r.Guarantee = eddy.AtLeastOnce.String()
			r.CommitIntervalMS = benchCommitInterval.Milliseconds()
		}
		if c.json {
			if err := enc.Encode(r); err != nil {
				return err
			}
			continue
		}
		line := fmt.Sprintf("%-20s %10.0f records/s  (median %.2fs of %d)", r.Workload, r.RecordsPerSec, med, c.rounds)
		if r.RatioVsRaw != nil {
			line += fmt.Sprintf("  %.2f x raw", *r.RatioVsRaw)
		}
		fmt.Fprintln(c.out, line)
	}
	return nil
}

// benchCommitInterval is the eddy workloads' commit interval: eddy's
// at-least-once default.
const benchCommitInterval = 30 * time.Second

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

// rawPipe is the hand-written franz-go pipe: a group consumer that
// produces every record it reads to output, until all are acknowledged.
func rawPipe(ctx context.Context, c benchConfig, input, output, group string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.brokers...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(input),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.MaxBufferedRecords(100_000), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return err
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
	consumed := 0
	for consumed < c.records {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return err
		}
		fetches.EachRecord(func(r *kgo.Record) {
			consumed++
			cl.Produce(ctx, &kgo.Record{Topic: output, Key: r.Key, Value: r.Value, Timestamp: r.Timestamp}, promise)
		})
	}
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if err, _ := failed.Load().(error); err != nil {
		return err
	}
	return nil
}

// runEddy runs top until output holds want records.
func runEddy(ctx context.Context, c benchConfig, top *topology.Topology, id, output string, want int) error {
	dir, err := os.MkdirTemp("", "eddy-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	app, err := eddy.New(top, eddy.ApplicationID(id), eddy.Brokers(c.brokers...), eddy.StateDir(dir),
		eddy.CommitInterval(benchCommitInterval), eddy.Logger(benchLogger(c.verbose)),
		eddy.KafkaOptions(kgo.RebalanceTimeout(5*time.Second)))
	if err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- app.Run(runCtx) }()
	if err := waitOutput(ctx, c.brokers, output, want, errc); err != nil {
		cancel()
		<-errc
		return err
	}
	cancel()
	return <-errc
}

// waitOutput polls output's end offsets until they add up to want.
func waitOutput(ctx context.Context, brokers []string, output string, want int, errc chan error) error {
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
		ends, err := adm.ListEndOffsets(ctx, output)
		if err != nil {
			continue
		}
		var n int64
		ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
		if n >= int64(want) {
			return nil
		}
	}
}

func eddyPipe(ctx context.Context, c benchConfig, input, output, id string, want int) error {
	b := topology.NewBuilder()
	src := topology.Source(b, input, serde.Bytes(), serde.Bytes())
	topology.MapValues(src, func(v []byte) []byte { return v }).To(output)
	top, err := b.Build()
	if err != nil {
		return err
	}
	return runEddy(ctx, c, top, id, output, want)
}

func eddyWordCount(ctx context.Context, c benchConfig, input, output, id string, want int) error {
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
		return err
	}
	return runEddy(ctx, c, top, id, output, want)
}

func benchLogger(verbose bool) *slog.Logger {
	if !verbose {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
