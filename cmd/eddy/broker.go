package main

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"time"

	"github.com/eddystream/eddy/internal/kafkabroker"
)

// broker starts a real broker the way the end-to-end suite does and runs
// until interrupted.
func broker(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("broker", flag.ExitOnError)
	timeout := fs.Duration("start-timeout", 3*time.Minute, "how long to wait for the broker to answer (includes the first download of the jars)")
	fs.Usage = func() {
		fs.Output().Write([]byte(`usage: eddy broker [flags]

Starts an Apache Kafka broker (KRaft, single node) and prints a line
KAFKA_BROKERS=host:port, then runs until interrupted. It uses KAFKA_BROKERS if
that is set, else a testcontainers container if a Docker engine answers, else a
broker JVM from the Apache Kafka jars on Maven Central (cached after the first
run under the user's cache directory).

`))
		fs.PrintDefaults()
	}
	fs.Parse(args)
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	return kafkabroker.Serve(ctx, os.Stdout, kafkabroker.WithLogger(log), kafkabroker.WithStartTimeout(*timeout))
}
