// Command aggregates keeps, per key, the sum, count, minimum and maximum
// of int64 values (8 bytes big-endian, as Kafka's LongSerializer) and
// emits each new aggregate as JSON to -stats, plus a passthrough of every
// input record to -passthrough.
//
// It needs a real cluster (-brokers) and runs until interrupted. The
// end-to-end suite uses it to check that every input record is reflected,
// and how records that do not deserialize are handled.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/eddystream/eddy"
	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/topology"
)

// Stats is the aggregate kept per key.
type Stats struct {
	Sum   int64 `json:"sum"`
	Count int64 `json:"count"`
	Min   int64 `json:"min"`
	Max   int64 `json:"max"`
}

// Topology reads input, passes every record through to passthrough, and
// aggregates per key into the store "stats", emitting updates to stats.
func Topology(input, passthrough, stats string) (*topology.Topology, error) {
	b := topology.NewBuilder()
	in := topology.Source(b, input, serde.String(), serde.Int64(), topology.Named("input"))
	in.To(passthrough, topology.Named("passthrough"))
	agg := topology.Aggregate(in.GroupByKey(), func() Stats { return Stats{} }, func(_ string, v int64, s Stats) Stats {
		if s.Count == 0 || v < s.Min {
			s.Min = v
		}
		if s.Count == 0 || v > s.Max {
			s.Max = v
		}
		s.Sum += v
		s.Count++
		return s
	}, serde.JSON[Stats](), topology.StoreName("stats"), topology.Named("aggregate"))
	agg.ToStream(topology.Named("stats-stream")).To(stats, topology.Named("stats-sink"))
	return b.Build()
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "aggregates:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		brokers        = flag.String("brokers", "", "Kafka bootstrap brokers, comma separated (required)")
		input          = flag.String("input", "numbers", "input topic (string keys, int64 values)")
		passthrough    = flag.String("passthrough", "numbers-passthrough", "passthrough output topic")
		stats          = flag.String("stats", "numbers-stats", "aggregate output topic (JSON)")
		appID          = flag.String("app", "aggregates", "application id")
		stateDir       = flag.String("state-dir", "", "state directory (default: eddy's)")
		commitInterval = flag.Duration("commit-interval", 0, "commit interval (default: eddy's)")
		sessionTimeout = flag.Duration("session-timeout", 0, "consumer group session timeout (default: eddy's)")
		skipBad        = flag.Bool("skip-bad-records", false, "skip input records that do not deserialize instead of failing")
		guarantee      = flag.String("guarantee", "at-least-once", "processing guarantee: at-least-once or exactly-once")
	)
	flag.Parse()
	if *brokers == "" {
		return fmt.Errorf("-brokers is required")
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	top, err := Topology(*input, *passthrough, *stats)
	if err != nil {
		return err
	}
	opts := []eddy.Option{eddy.ApplicationID(*appID), eddy.Logger(log), eddy.Brokers(strings.Split(*brokers, ",")...)}
	if *stateDir != "" {
		opts = append(opts, eddy.StateDir(*stateDir))
	}
	if *commitInterval > 0 {
		opts = append(opts, eddy.CommitInterval(*commitInterval))
	}
	if *sessionTimeout > 0 {
		opts = append(opts, eddy.SessionTimeout(*sessionTimeout))
	}
	if *skipBad {
		opts = append(opts, eddy.OnDeserializationError(eddy.SkipOnDeserializationError))
	}
	switch *guarantee {
	case "at-least-once":
	case "exactly-once":
		opts = append(opts, eddy.ProcessingGuarantee(eddy.ExactlyOnce))
	default:
		return fmt.Errorf("-guarantee %q: want at-least-once or exactly-once", *guarantee)
	}
	app, err := eddy.New(top, opts...)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	err = app.Run(ctx)
	log.Info("stopped", "skipped_records", app.SkippedRecords(), "ran", time.Since(start).Round(time.Millisecond))
	return err
}
