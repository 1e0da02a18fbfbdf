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
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddystream/eddy"
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
	var (
		brokers        = flag.String("brokers", "", "Kafka bootstrap brokers, comma separated; empty starts an in-process broker with a sample text")
		input          = flag.String("input", "lines", "input topic (lines of text); several, comma separated, are read as one co-partitioned stream")
		output         = flag.String("output", "word-counts", "output topic (word -> count, int64)")
		appID          = flag.String("app", "wordcount", "application id")
		stateDir       = flag.String("state-dir", "", "state directory (default: a temporary directory when embedded, $TMPDIR/eddy otherwise)")
		commitInterval = flag.Duration("commit-interval", 0, "commit interval (default: eddy's, 30s; 100ms when embedded)")
		sessionTimeout = flag.Duration("session-timeout", 0, "consumer group session timeout (default: eddy's)")
		workers        = flag.Int("workers", 1, "workers (group members) in this instance")
		inMemory       = flag.Bool("in-memory", false, "keep the counts store in memory instead of on disk")
		skipBad        = flag.Bool("skip-bad-records", false, "skip input records that do not deserialize instead of failing")
		verbose        = flag.Bool("v", false, "debug logging")
	)
	flag.Parse()
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	top, err := Topology(*input, *output, *inMemory)
	if err != nil {
		return err
	}
	opts := []eddy.Option{eddy.ApplicationID(*appID), eddy.Logger(log), eddy.Workers(*workers)}
	if *commitInterval > 0 {
		opts = append(opts, eddy.CommitInterval(*commitInterval))
	}
	if *sessionTimeout > 0 {
		opts = append(opts, eddy.SessionTimeout(*sessionTimeout))
	}
	if *skipBad {
		opts = append(opts, eddy.OnDeserializationError(eddy.SkipOnDeserializationError))
	}
	if *brokers == "" {
		return runEmbedded(top, *input, *output, *appID, *stateDir, *commitInterval, opts, log)
	}
	if *stateDir != "" {
		opts = append(opts, eddy.StateDir(*stateDir))
	}
	opts = append(opts, eddy.Brokers(strings.Split(*brokers, ",")...))
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

	adm := kadm.NewClient(cl)
	if err := waitConsumed(ctx, adm, appID, input, runErr); err != nil {
		return err
	}
	stopApp()
	if err := <-runErr; err != nil {
		return err
	}
	got, err := readCounts(ctx, addrs, output)
	if err != nil {
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
	for w, n := range want {
		if got[w] != n {
			return fmt.Errorf("count of %q is %d, want %d", w, got[w], n)
		}
	}
	fmt.Printf("counted %d words in %d lines in %.1fs\n", len(got), len(recs), time.Since(start).Seconds())
	return nil
}

// waitConsumed waits until the application has committed the end of every
// input partition and of its repartition topic.
func waitConsumed(ctx context.Context, adm *kadm.Client, group, input string, runErr chan error) error {
	topics := []string{input, group + "-words-repartition"}
	for {
		select {
		case err := <-runErr:
			if err == nil {
				err = errors.New("the application stopped early")
			}
			return err
		case <-ctx.Done():
			return fmt.Errorf("the sample was not counted in time: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
		// Committed offsets first, end offsets second: a task commits its
		// input only after flushing its repartition records, so ends listed
		// afterwards include them.
		committed, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			continue
		}
		ends, err := adm.ListEndOffsets(ctx, topics...)
		if err != nil {
			continue
		}
		done := len(ends) == len(topics)
		ends.Each(func(o kadm.ListedOffset) {
			c, ok := committed.Lookup(o.Topic, o.Partition)
			if o.Err != nil || o.Offset > 0 && (!ok || c.At < o.Offset) {
				done = false
			}
		})
		if done {
			return nil
		}
	}
}

// readCounts reads output from the start and keeps the last count per word.
func readCounts(ctx context.Context, addrs []string, output string) (map[string]int64, error) {
	adm, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		return nil, err
	}
	defer adm.Close()
	ends, err := kadm.NewClient(adm).ListEndOffsets(ctx, output)
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(output), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	counts := map[string]int64{}
	remaining := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			remaining[o.Partition] = o.Offset
		}
	})
	for len(remaining) > 0 {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			return nil, err
		}
		fs.EachRecord(func(r *kgo.Record) {
			n, err := serde.Int64().Deserialize(output, r.Value)
			if err == nil {
				counts[string(r.Key)] = n
			}
			if r.Offset+1 >= remaining[r.Partition] {
				delete(remaining, r.Partition)
			}
		})
	}
	return counts, nil
}
