// Command aggregates keeps, per key, the sum, count, minimum and maximum
// of int64 values (8 bytes big-endian, as Kafka's LongSerializer) and
// emits each new aggregate as JSON to -stats, plus a passthrough of every
// input record to -passthrough.
//
// With -windowed it also counts the records per key in tumbling windows of
// -window-size, each record at the event time -window-base plus its value
// in milliseconds (so that the exact count of every window follows from
// the values alone), and forwards every count to -windowed.
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
	"github.com/eddystream/eddy/processor"
	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/topology"
	"github.com/eddystream/eddy/window"
)

// Stats is the aggregate kept per key.
type Stats struct {
	Sum   int64 `json:"sum"`
	Count int64 `json:"count"`
	Min   int64 `json:"min"`
	Max   int64 `json:"max"`
}

// Windowed configures the optional windowed count: none if Topic is "".
type Windowed struct {
	Topic string
	Base  time.Time
	Size  time.Duration
}

// Topology reads input, passes every record through to passthrough, and
// aggregates per key into the store "stats", emitting updates to stats;
// with a windowed topic, it also counts per key and window into the store
// "windowed".
func Topology(input, passthrough, stats string, windowed Windowed) (*topology.Topology, error) {
	b := topology.NewBuilder()
	in := topology.Source(b, input, serde.String(), serde.Int64(), topology.Named("input"))
	if windowed.Topic != "" {
		w, err := window.TimeWindowsOfSizeAndGrace(windowed.Size, time.Hour)
		if err != nil {
			return nil, err
		}
		base := windowed.Base.UnixMilli()
		// The event time follows from the value alone, whenever and
		// however often the record is processed.
		timed := topology.ProcessValues(in, processor.Func(func(ctx processor.Context[string, int64], r processor.Record[string, int64]) error {
			r.Timestamp = time.UnixMilli(base + r.Value)
			return ctx.Forward(r)
		}), nil, topology.Named("event-time")).WithSerdes(serde.String(), serde.Int64())
		topology.WindowedBy(timed.GroupByKey(), w).Count(topology.StoreName("windowed"), topology.Named("windowed-count")).
			ToStream(topology.Named("windowed-stream")).To(windowed.Topic, topology.Named("windowed-sink"))
	}
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
		windowed    Windowed
		baseMs      int64
	)
	flag.StringVar(&windowed.Topic, "windowed", "", "windowed count output topic (none if empty)")
	flag.Int64Var(&baseMs, "window-base", 0, "the event time, in Unix milliseconds, of value 0 for the windowed count")
	flag.DurationVar(&windowed.Size, "window-size", time.Second, "the size of the windowed count's tumbling windows")
	flag.Parse()
	if f.Brokers == "" {
		return fmt.Errorf("-brokers is required")
	}
	log := f.Logger()
	windowed.Base = time.UnixMilli(baseMs)
	top, err := Topology(*input, *passthrough, *stats, windowed)
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
