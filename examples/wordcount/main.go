// Command wordcount counts words with eddy.
//
// With no flags it starts an in-process Kafka broker (franz-go's kfake),
// writes a bounded sample text to it, runs the word-count topology until
// every line is counted, prints the final count per word read back from the
// output topic, and exits. With -brokers it runs against a real cluster
// until interrupted (SIGINT or SIGTERM), reading -input and writing
// -output, which must exist.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddystream/eddy"
	"github.com/eddystream/eddy/examples/internal/appflags"
	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/topology"
)

// Topology is the word count: split lines into lower-case words, re-key by
// word (a repartition), count per word in a persistent store, and write
// every new count to output.
func Topology(input, output string, inMemory bool) (*topology.Topology, error) {
	b := topology.NewBuilder()
	// Several comma-separated inputs are read as one co-partitioned stream.
	lines := topology.SourceTopics(b, strings.Split(input, ","), serde.String(), serde.String(), topology.Named("lines"))
	words := topology.FlatMap(lines, func(_ string, line string) []topology.KeyValue[string, string] {
		fields := strings.FieldsFunc(strings.ToLower(line), func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '\'')
		})
		out := make([]topology.KeyValue[string, string], len(fields))
		for i, w := range fields {
			out[i] = topology.KV(w, w)
		}
		return out
	}, topology.Named("split-words"))
	opts := []topology.Option{topology.StoreName("counts"), topology.Named("count")}
	if inMemory {
		opts = append(opts, topology.InMemory())
	}
	words.GroupByKey(topology.Named("words")).Count(opts...).ToStream(topology.Named("counts-stream")).To(output, topology.Named("output"))
	return b.Build()
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "wordcount:", err)
		os.Exit(1)
	}
}

func run() error {
	f := appflags.Register(flag.CommandLine, "wordcount", "Kafka bootstrap brokers, comma separated; empty starts an in-process broker with a sample text")
	var (
		input    = flag.String("input", "lines", "input topic (lines of text); several, comma separated, are read as one co-partitioned stream")
		output   = flag.String("output", "word-counts", "output topic (word -> count, int64)")
		inMemory = flag.Bool("in-memory", false, "keep the counts store in memory instead of on disk")
	)
	flag.Parse()
	log := f.Logger()
	top, err := Topology(*input, *output, *inMemory)
	if err != nil {
		return err
	}
	opts, err := f.Options(log)
	if err != nil {
		return err
	}
	if f.Brokers == "" {
		if f.Secured() {
			return errors.New("-tls and -sasl-mechanism need -brokers: the in-process broker takes neither")
		}
		return runEmbedded(top, *input, *output, f.AppID, f.StateDir, f.CommitInterval, opts, log)
	}
	app, err := eddy.New(top, opts...)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return app.Run(ctx)
}

// sample is the bounded text the embedded quickstart counts.
var sample = []string{
	"A stream is a table in motion and a table is a stream at rest",
	"Every partition is a task and every task owns its state",
	"State lives in local stores backed by compacted changelog topics",
	"When an instance fails another one restores the state from the changelog",
	"Scaling out means starting another instance of the same application",
}

const sampleRepeats = 200

func runEmbedded(top *topology.Topology, input, output, appID, stateDir string, commitInterval time.Duration, opts []eddy.Option, log *slog.Logger) error {
	start := time.Now()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, input, output))
	if err != nil {
		return fmt.Errorf("start the in-process broker: %w", err)
	}
	defer cluster.Close()
	addrs := cluster.ListenAddrs()
	if stateDir == "" {
		if stateDir, err = os.MkdirTemp("", "eddy-wordcount-"); err != nil {
			return err
		}
		defer os.RemoveAll(stateDir)
	}
	if commitInterval == 0 {
		opts = append(opts, eddy.CommitInterval(100*time.Millisecond))
	}
	opts = append(opts, eddy.Brokers(addrs...), eddy.StateDir(filepath.Clean(stateDir)),
		// One member joins alone: a short rebalance timeout keeps the
		// embedded broker from waiting for members that will not come.
		eddy.KafkaOptions(kgo.RebalanceTimeout(2*time.Second)))

	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	want := map[string]int64{}
	var recs []*kgo.Record
	for i := 0; i < sampleRepeats; i++ {
		for _, line := range sample {
			recs = append(recs, &kgo.Record{Topic: input, Key: []byte(fmt.Sprint(i)), Value: []byte(line)})
			for _, w := range strings.Fields(strings.ToLower(line)) {
				want[w]++
			}
		}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("produce the sample: %w", err)
	}
	log.Info("sample written", "lines", len(recs), "broker", addrs[0])

	app, err := eddy.New(top, opts...)
	if err != nil {
		return err
	}
	runCtx, stopApp := context.WithCancel(ctx)
	defer stopApp()
	runErr := make(chan error, 1)
	go func() { runErr <- app.Run(runCtx) }()

	got, err := readCounts(ctx, addrs, output, want, runErr)
	if err != nil {
		return err
	}
	stopApp()
	if err := <-runErr; err != nil {
		return err
	}
	words := make([]string, 0, len(got))
	for w := range got {
		words = append(words, w)
	}
	sort.Strings(words)
	for _, w := range words {
		fmt.Printf("%-12s %d\n", w, got[w])
	}
	fmt.Printf("counted %d words in %d lines in %.1fs\n", len(got), len(recs), time.Since(start).Seconds())
	return nil
}

// readCounts reads output from the start, read_committed, keeping the last
// count per word, until the counts equal want: then every line is counted
// and committed, under either guarantee.
func readCounts(ctx context.Context, addrs []string, output string, want map[string]int64, runErr chan error) (map[string]int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(output),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	counts := map[string]int64{}
	for !maps.Equal(counts, want) {
		pollCtx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		fs := cl.PollFetches(pollCtx)
		cancel()
		select {
		case err := <-runErr:
			if err == nil {
				err = errors.New("the application stopped early")
			}
			return nil, err
		default:
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("the sample was not counted in time: %w", ctx.Err())
		}
		fs.EachRecord(func(r *kgo.Record) {
			if n, err := serde.Int64().Deserialize(output, r.Value); err == nil {
				counts[string(r.Key)] = n
			}
		})
	}
	return counts, nil
}
