package eddy_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddystream/eddy"
	"github.com/eddystream/eddy/serde"
)

// readCommittedCounts reads the last count per word from topic with
// read_committed until want matches or ctx ends.
func readCommittedCounts(ctx context.Context, t *testing.T, addrs []string, topic string, want map[string]int64) map[string]int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got := map[string]int64{}
	for !equalCounts(got, want) && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) {
			n, _ := serde.Int64().Deserialize(topic, r.Value)
			got[string(r.Key)] = n
		})
	}
	return got
}

func produceLines(t *testing.T, addrs []string, topic string, from, n int, want map[string]int64) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for i := from; i < from+n; i++ {
		line := fmt.Sprintf("w%d w%d w%d", i%11, i%7, i%3)
		for _, w := range strings.Fields(line) {
			want[w]++
		}
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(fmt.Sprint(i)), Value: []byte(line)})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func TestExactlyOnceCounts(t *testing.T) {
	addrs := cluster(t, kfake.SeedTopics(4, "lines", "counts"))
	want := map[string]int64{}
	produceLines(t, addrs, "lines", 0, 500, want)
	app := newApp(t, wordCount(t, "lines", "counts"), addrs, "eos", eddy.ProcessingGuarantee(eddy.ExactlyOnce))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- app.Run(ctx) }()
	if got := readCommittedCounts(ctx, t, addrs, "counts", want); !equalCounts(got, want) {
		t.Fatalf("read_committed counts = %v, want %v", got, want)
	}
	app.Close()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// A second instance joining takes tasks from the first while the first
// holds uncommitted work (a 2 s commit interval): the first's transaction
// aborts, its tasks rewind, and no count is applied twice.
func TestAbortedTransactionLeavesNoTrace(t *testing.T) {
	addrs := cluster(t, kfake.SeedTopics(4, "lines", "counts"))
	want := map[string]int64{}
	produceLines(t, addrs, "lines", 0, 300, want)
	top := wordCount(t, "lines", "counts")
	logs := &lockedBuffer{}
	start := func(name string, logTo *lockedBuffer) (*eddy.App, chan error) {
		a, err := eddy.New(top, eddy.ApplicationID("abort"), eddy.Brokers(addrs...), eddy.StateDir(t.TempDir()),
			eddy.ProcessingGuarantee(eddy.ExactlyOnce), eddy.CommitInterval(2*time.Second),
			eddy.Logger(slog.New(slog.NewTextHandler(logTo, &slog.HandlerOptions{Level: slog.LevelDebug})).With("instance", name)),
			eddy.KafkaOptions(kgo.RebalanceTimeout(3*time.Second)))
		if err != nil {
			t.Fatal(err)
		}
		errc := make(chan error, 1)
		go func() { errc <- a.Run(context.Background()) }()
		return a, errc
	}
	a, aerr := start("a", logs)
	// Wait until a has processed records (they sit in its open
	// transaction), then let b join.
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(logs.String(), `msg="task restored and running"`) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	b, berr := start("b", &lockedBuffer{})
	produceLines(t, addrs, "lines", 300, 300, want)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	got := readCommittedCounts(ctx, t, addrs, "counts", want)
	a.Close()
	b.Close()
	if err := <-aerr; err != nil {
		t.Fatal(err)
	}
	if err := <-berr; err != nil {
		t.Fatal(err)
	}
	if !equalCounts(got, want) {
		t.Fatalf("counts = %v, want %v", got, want)
	}
	if !strings.Contains(logs.String(), "transaction aborted") {
		t.Fatalf("instance a never lost tasks mid-transaction; the test did not exercise an abort:\n%s", logs)
	}
	// Read everything once more after both stopped: a count applied twice
	// would show as a final value above the expected one.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	final := readCommittedCounts(ctx2, t, addrs, "counts", map[string]int64{"never": 1})
	for w, n := range want {
		if final[w] != n {
			t.Errorf("final count[%s] = %d, want %d", w, final[w], n)
		}
	}
}

// Under exactly-once, dead letters are part of the transaction: they are
// visible to read_committed readers once committed, with their headers.
func TestDeadLettersUnderExactlyOnce(t *testing.T) {
	addrs := cluster(t, kfake.SeedTopics(1, "in", "out", "dlq"))
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(context.Background(),
		&kgo.Record{Topic: "in", Value: []byte("ok")}, &kgo.Record{Topic: "in", Value: []byte("boom")}, &kgo.Record{Topic: "in", Value: []byte("ok2")},
	).FirstErr(); err != nil {
		t.Fatal(err)
	}
	app := newApp(t, failingTopology(t), addrs, "eos-dlq", eddy.ProcessingGuarantee(eddy.ExactlyOnce),
		eddy.OnProcessingError(eddy.SkipOnProcessingError), eddy.DeadLetterTopic("dlq"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- app.Run(ctx) }()
	reader, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics("dlq", "out"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	var dead, out []*kgo.Record
	for (len(dead) < 1 || len(out) < 2) && ctx.Err() == nil {
		reader.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			if r.Topic == "dlq" {
				dead = append(dead, r)
			} else {
				out = append(out, r)
			}
		})
	}
	app.Close()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if len(dead) != 1 || string(dead[0].Value) != "boom" || len(out) != 2 {
		t.Fatalf("dead letters %d (want the one \"boom\"), outputs %d (want 2)", len(dead), len(out))
	}
	h := map[string]string{}
	for _, x := range dead[0].Headers {
		h[x.Key] = string(x.Value)
	}
	if h[eddy.HeaderErrorKind] != "processing" || h[eddy.HeaderSourceOffset] != "1" || h[eddy.HeaderSourceTopic] != "in" {
		t.Errorf("dead letter headers = %v", h)
	}
}
