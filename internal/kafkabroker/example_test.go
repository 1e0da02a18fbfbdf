package kafkabroker_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddystream/eddy/internal/kafkabroker"
)

// A test binary starts one broker, points its clients at Addrs, and prints
// the broker's log when something fails. Not run by go test: it would start
// a second broker.
func ExampleStart() {
	ctx := context.Background()
	b, err := kafkabroker.Start(ctx,
		kafkabroker.WithStartTimeout(2*time.Minute),
		kafkabroker.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, nil))))
	if err != nil {
		fmt.Fprintln(os.Stderr, err) // carries the tail of the broker log
		return
	}
	defer b.Close()

	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addrs()...))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	defer cl.Close()
	if err := cl.Ping(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "%v\nbroker log (%s):\n%s\n", err, b.Source(), b.LogTail(40))
	}
}
