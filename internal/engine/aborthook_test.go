package engine

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddystream/eddy/internal/metrics"
	"github.com/eddystream/eddy/internal/settings"
	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/state/pebblestore"
	"github.com/eddystream/eddy/topology"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// produceKeys writes one record per key k0..k<keys-1>, rounds times over.
func produceKeys(t *testing.T, addrs []string, topic string, keys, rounds int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for range rounds {
		for k := range keys {
			recs = append(recs, &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "k%d", k), Value: []byte("v")})
		}
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// waitCounts reads topic with read_committed until every key k0..k<keys-1>
// has count want as its last value, or fails at the deadline.
func waitCounts(t *testing.T, addrs []string, topic string, keys int, want int64, deadline time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got := map[string]int64{}
	complete := func() bool {
		for k := range keys {
			if got[fmt.Sprintf("k%d", k)] != want {
				return false
			}
		}
		return len(got) == keys
	}
	for !complete() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("committed counts not all %d after %v: %v", want, deadline, got)
		}
		fs.EachRecord(func(r *kgo.Record) {
			n, err := serde.Int64().Deserialize(topic, r.Value)
			if err != nil {
				t.Errorf("count of %s: %v", r.Key, err)
			}
			got[string(r.Key)] = n
		})
	}
}

// TestRequestAbortAbortsAndReportsWhenTasksRunAgain: under exactly-once,
// RequestAbort makes the worker abort its open transaction (the log says
// so), done is called once every task runs again (two tasks with in-memory
// stores, which restore from their changelogs after an abort), counting
// goes on exactly (no input lost or counted twice by the abort), and once
// Run has returned the engine is no longer a target.
func TestRequestAbortAbortsAndReportsWhenTasksRunAgain(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "in", "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	addrs := c.ListenAddrs()
	const keys = 50
	produceKeys(t, addrs, "in", keys, 4)

	b := topology.NewBuilder()
	topology.Source(b, "in", serde.String(), serde.String()).
		GroupByKey().Count(topology.StoreName("counts"), topology.InMemory()).ToStream().To("out")
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	m, err := metrics.New(prometheus.NewRegistry(), prometheus.Labels{"application": "aborthook"})
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	const appID = "aborthook"
	st := settings.Defaults()
	st.ApplicationID, st.Brokers, st.StateDir = appID, addrs, t.TempDir()
	st.CommitInterval, st.Workers, st.ExactlyOnce = 50*time.Millisecond, 1, true
	st.KafkaOptions = []kgo.Opt{kgo.RebalanceTimeout(2 * time.Second)}
	st.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	st.ReplicationFactor, st.SessionTimeout, st.HeartbeatInterval = -1, 10*time.Second, time.Second
	st.ProbingRebalanceInterval = 10 * time.Minute
	st.TaskTimeout, st.ShutdownTimeout = time.Minute, 30*time.Second
	sup, err := pebblestore.NewSupplier()
	if err != nil {
		t.Fatal(err)
	}
	e := New(top, Config{Settings: st, Metrics: m, DefaultSupplier: sup})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- e.Run(ctx) }()
	waitCounts(t, addrs, "out", keys, 4, 30*time.Second)

	if RequestAbort("another-app", func(int, time.Duration) { t.Error("done called for another application") }) {
		t.Fatal("RequestAbort of an application that does not run reported true")
	}
	type report struct {
		worker int
		took   time.Duration
	}
	reports := make(chan report, 4)
	if !RequestAbort(appID, func(w int, took time.Duration) { reports <- report{w, took} }) {
		t.Fatal("RequestAbort of the running engine reported false")
	}
	select {
	case r := <-reports:
		if r.worker != 0 || r.took <= 0 {
			t.Fatalf("done(%d, %v), want worker 0 and a positive duration", r.worker, r.took)
		}
	case err := <-errc:
		t.Fatalf("the engine stopped before the abort was reported: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatalf("the requested abort was never reported; log:\n%s", logs.String())
	}
	log := logs.String()
	if !strings.Contains(log, `msg="aborting on request (eddy bench)" worker=0 running_tasks=2`) ||
		!strings.Contains(log, `msg="transaction aborted; tasks rewind to the last committed offsets"`) {
		t.Fatalf("the log does not show the requested abort of both tasks:\n%s", log)
	}

	// The abort dropped nothing and counted nothing twice.
	produceKeys(t, addrs, "in", keys, 2)
	waitCounts(t, addrs, "out", keys, 6, 30*time.Second)
	select {
	case r := <-reports:
		t.Fatalf("done called again (%v) for one request", r)
	default:
	}

	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if RequestAbort(appID, func(int, time.Duration) {}) {
		t.Fatal("RequestAbort reported true after Run returned")
	}
}
