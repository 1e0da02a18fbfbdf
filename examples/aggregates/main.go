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
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/eddystream/eddy"
	"github.com/eddystream/eddy/examples/internal/appflags"
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
	f := appflags.Register(flag.CommandLine, "aggregates", "Kafka bootstrap brokers, comma separated (required)")
	var (
		input       = flag.String("input", "numbers", "input topic (string keys, int64 values)")
		passthrough = flag.String("passthrough", "numbers-passthrough", "passthrough output topic")
		stats       = flag.String("stats", "numbers-stats", "aggregate output topic (JSON)")
	)
	flag.Parse()
	if f.Brokers == "" {
		return fmt.Errorf("-brokers is required")
	}
	log := f.Logger()
	top, err := Topology(*input, *passthrough, *stats)
	if err != nil {
		return err
	}
	opts, err := f.Options(log)
	if err != nil {
		return err
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
