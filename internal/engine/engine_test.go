package engine

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddystream/eddy/internal/metrics"
	"github.com/eddystream/eddy/internal/settings"
	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/state/pebblestore"
	"github.com/eddystream/eddy/topology"
)

// The tests in this file run the engine on kfake, franz-go's in-process
// broker, and reach into it through Engine.testing.

func fakeCluster(t *testing.T, opts ...kfake.Opt) (*kfake.Cluster, []string) {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, c.ListenAddrs()
}

// testConfig is a configuration for an engine on kfake.
func testConfig(t *testing.T, addrs []string, app string, exactlyOnce bool) Config {
	t.Helper()
	m, err := metrics.New(prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	st := settings.Defaults()
	st.ApplicationID = app
	st.Brokers = addrs
	st.StateDir = t.TempDir()
	st.CommitInterval = 20 * time.Millisecond
	st.Workers = 1
	st.KafkaOptions = []kgo.Opt{kgo.RebalanceTimeout(3 * time.Second)}
	st.Logger = slog.New(slog.DiscardHandler)
	st.ExactlyOnce = exactlyOnce
	st.ReplicationFactor = 1
	st.SessionTimeout = 6 * time.Second
	st.HeartbeatInterval = 200 * time.Millisecond
	st.ProbingRebalanceInterval = time.Minute
	st.TaskTimeout = time.Minute
	st.ShutdownTimeout = 10 * time.Second
	sup, err := pebblestore.NewSupplier()
	if err != nil {
		t.Fatal(err)
	}
	return Config{Settings: st, Metrics: m, DefaultSupplier: sup}
}

// runEngine runs e until the test ends and checks that Run returned nil.
func runEngine(t *testing.T, e *Engine) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Run did not return within 30 s of its context's end")
		}
	})
}

// worker0 waits for the engine's first worker.
func worker0(t *testing.T, e *Engine) *worker {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		e.workers.Lock()
		list := e.workers.list
		e.workers.Unlock()
		if len(list) > 0 {
			return list[0]
		}
	}
	t.Fatal("the engine started no worker")
	return nil
}

func produce(t *testing.T, addrs []string, topic string, partition int32, keys ...string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for _, k := range keys {
		recs = append(recs, &kgo.Record{Topic: topic, Partition: partition, Key: []byte(k), Value: []byte(k)})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// readCommitted reads topic with read_committed until stop says enough or
// the wait runs out, and returns what it read.
func readCommitted(t *testing.T, addrs []string, topic string, wait time.Duration, stop func([]*kgo.Record) bool) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	var got []*kgo.Record
	for !stop(got) && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, r) })
	}
	return got
}

func keys(n int, prefix string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = prefix + strconv.Itoa(i)
	}
	return out
}

// countingPipe copies in to out and counts the records it processed.
func countingPipe(t *testing.T, in, out string, processed *atomic.Int64) *topology.Topology {
	t.Helper()
	b := topology.NewBuilder()
	topology.MapValues(topology.Source(b, in, serde.String(), serde.String()), func(v string) string {
		processed.Add(1)
		return v
	}).To(out)
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return top
}

// keyedCount counts records per key into out, with a logged store.
func keyedCount(t *testing.T, in, out string, opts ...topology.Option) *topology.Topology {
	t.Helper()
	b := topology.NewBuilder()
	topology.Source(b, in, serde.String(), serde.String()).GroupByKey().
		Count(append([]topology.Option{topology.StoreName("counts")}, opts...)...).ToStream().To(out)
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return top
}

// TestCommittedOffsetsAreProcessedOffsets: a task that keeps records
// queued across a commit (here: three records per step) commits only what it
// processed, under both guarantees. Every offset commit the broker
// receives for the input partition is checked against the records
// processed when it was sent (the loop waits for its commit, so the count
// is stable then). Before offsets came from the tasks, exactly-once
// committed kgo's polled position, past records never processed.
func TestCommittedOffsetsAreProcessedOffsets(t *testing.T) {
	for _, eos := range []bool{false, true} {
		t.Run(fmt.Sprintf("exactly_once=%v", eos), func(t *testing.T) {
			c, addrs := fakeCluster(t, kfake.SeedTopics(1, "in", "out"))
			var processed atomic.Int64
			var mu sync.Mutex
			var bad []string
			commits := 0
			// The group consumes only "in" (one partition); recent request
			// versions name topics by id only.
			check := func(_ string, p int32, offset int64) {
				if p != 0 {
					return
				}
				mu.Lock()
				defer mu.Unlock()
				commits++
				if n := processed.Load(); offset != n {
					bad = append(bad, fmt.Sprintf("committed offset %d with %d records processed", offset, n))
				}
			}
			c.KeepControl()
			c.ControlKey(kmsg.TxnOffsetCommit.Int16(), func(req kmsg.Request) (kmsg.Response, error, bool) {
				for _, tp := range req.(*kmsg.TxnOffsetCommitRequest).Topics {
					for _, p := range tp.Partitions {
						check(tp.Topic, p.Partition, p.Offset)
					}
				}
				return nil, nil, false
			})
			c.ControlKey(kmsg.OffsetCommit.Int16(), func(req kmsg.Request) (kmsg.Response, error, bool) {
				for _, tp := range req.(*kmsg.OffsetCommitRequest).Topics {
					for _, p := range tp.Partitions {
						check(tp.Topic, p.Partition, p.Offset)
					}
				}
				return nil, nil, false
			})
			const n = 60
			produce(t, addrs, "in", 0, keys(n, "k")...)
			e := New(countingPipe(t, "in", "out", &processed), testConfig(t, addrs, "offsets", eos))
			e.testing.maxProcess = 3
			runEngine(t, e)
			got := readCommitted(t, addrs, "out", 30*time.Second, func(r []*kgo.Record) bool { return len(r) >= n })
			if len(got) != n {
				t.Fatalf("read %d output records, want %d", len(got), n)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(bad) > 0 {
				t.Fatalf("%d of %d commits were not what the task processed, first: %s", len(bad), commits, bad[0])
			}
			if commits < 2 {
				t.Fatalf("the broker saw %d offset commits of in-0, want several while records were queued", commits)
			}
		})
	}
}

// TestAbortRewindsAPartitionReadForTheFirstTime pins the gap the review
// suspected: a step that must abort (a rebalance took tasks during the
// open transaction) drops the records in hand, including those of a
// partition never committed and first read in that very step; they must
// be read again. (It passed on the code before the reshape too: kgo
// 1.22's session resets such a partition to its reset offset on abort.
// The worker now rewinds it itself, from the offset it noted.)
func TestAbortRewindsAPartitionReadForTheFirstTime(t *testing.T) {
	_, addrs := fakeCluster(t, kfake.SeedTopics(2, "in"), kfake.SeedTopics(1, "out"))
	var processed atomic.Int64
	e := New(countingPipe(t, "in", "out", &processed), testConfig(t, addrs, "firstpoll", true))
	var fired atomic.Bool
	e.testing.beforeStep = func(w *worker, fetches kgo.Fetches) {
		if fired.Load() {
			return
		}
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			if p.Topic == "in" && p.Partition == 1 && len(p.Records) > 0 {
				fired.Store(true)
				w.mu.abortPending = true // as onRevoked sets it
			}
		})
	}
	runEngine(t, e)
	produce(t, addrs, "in", 0, keys(10, "a")...)
	readCommitted(t, addrs, "out", 20*time.Second, func(r []*kgo.Record) bool { return len(r) >= 10 })
	produce(t, addrs, "in", 1, keys(10, "b")...)
	got := readCommitted(t, addrs, "out", 20*time.Second, func(r []*kgo.Record) bool { return len(r) >= 20 })
	if !fired.Load() {
		t.Fatal("no step saw the records of in-1 to abort with")
	}
	if len(got) != 20 {
		t.Fatalf("read %d output records, want 20: the records of in-1 read in the aborting step were skipped", len(got))
	}
}

// TestAbortRestoresNothing: an abort discards the open transaction's
// store writes and rewinds the input, and builds the processors afresh
// over the same stores: no store restores a single record, in memory or
// on disk, and the counts go on from the last commit.
func TestAbortRestoresNothing(t *testing.T) {
	for _, inMemory := range []bool{true, false} {
		t.Run(fmt.Sprintf("in_memory=%v", inMemory), func(t *testing.T) {
			_, addrs := fakeCluster(t, kfake.SeedTopics(1, "in", "out"))
			var opts []topology.Option
			if inMemory {
				opts = append(opts, topology.InMemory())
			}
			cfg := testConfig(t, addrs, "abort", true)
			cfg.CommitInterval = time.Second
			e := New(keyedCount(t, "in", "out", opts...), cfg)
			// Once armed, a step lets records be processed, and the next
			// step, if they are still uncommitted, finds the transaction
			// must abort, as after a rebalance: with uncommitted writes
			// in the stores.
			var armed atomic.Bool
			var phase atomic.Int32
			e.testing.beforeStep = func(w *worker, fetches kgo.Fetches) {
				switch {
				case !armed.Load():
				case phase.Load() == 0 && !fetches.Empty():
					phase.Store(1)
				case phase.Load() == 1 && w.uncommitted:
					phase.Store(2)
					w.mu.abortPending = true
				case phase.Load() == 1:
					phase.Store(0) // committed in between: wait for more
				}
			}
			runEngine(t, e)
			lastCounts := func(want map[string]int64) func([]*kgo.Record) bool {
				return func(recs []*kgo.Record) bool {
					got := map[string]int64{}
					for _, r := range recs {
						n, _ := serde.Int64().Deserialize("out", r.Value)
						got[string(r.Key)] = n
					}
					for k, n := range want {
						if got[k] != n {
							return false
						}
					}
					return true
				}
			}
			want := map[string]int64{"x": 2, "y": 1}
			produce(t, addrs, "in", 0, "x", "y", "x")
			readCommitted(t, addrs, "out", 20*time.Second, lastCounts(want))
			w := worker0(t, e)
			restored := w.restores.restored.Load()

			armed.Store(true)
			for try := 0; w.resets.Load() == 0; try++ {
				if try == 20 {
					t.Fatal("no abort happened")
				}
				produce(t, addrs, "in", 0, "x", "z")
				want["x"]++
				want["z"]++
				for wait := time.Now().Add(3 * time.Second); w.resets.Load() == 0 && phase.Load() != 0 && time.Now().Before(wait); {
					time.Sleep(10 * time.Millisecond)
				}
			}
			produce(t, addrs, "in", 0, "y")
			want["y"]++
			got := readCommitted(t, addrs, "out", 20*time.Second, lastCounts(want))
			if !lastCounts(want)(got) {
				t.Fatalf("counts after the abort are wrong, want %v; output: %v", want, recordsText(got))
			}
			if n := w.restores.restored.Load() - restored; n != 0 {
				t.Fatalf("the abort restored %d records, want none", n)
			}
		})
	}
}

func recordsText(recs []*kgo.Record) []string {
	var out []string
	for _, r := range recs {
		n, _ := serde.Int64().Deserialize("", r.Value)
		out = append(out, fmt.Sprintf("%s=%d", r.Key, n))
	}
	return out
}

// TestSlowStoreOpenKeepsTheMemberInTheGroup: opening a task's store takes
// longer than the session timeout, and the member still heartbeats (no
// callback waits on the disk), and a second member's join completes
// meanwhile with both members in the group, each with tasks. A member
// whose group goroutine waited on the open could not rejoin in time, and
// the group would go on without it.
func TestSlowStoreOpenKeepsTheMemberInTheGroup(t *testing.T) {
	_, addrs := fakeCluster(t, kfake.SeedTopics(4, "in", "out"),
		kfake.BrokerConfigs(map[string]string{"group.min.session.timeout.ms": "1000"}))
	release := make(chan struct{})
	var releaseOnce sync.Once
	defer releaseOnce.Do(func() { close(release) })
	var blocked atomic.Int32
	cfgA := testConfig(t, addrs, "slowopen", false)
	cfgA.SessionTimeout = 2 * time.Second
	a := New(keyedCount(t, "in", "out"), cfgA)
	a.testing.beforeOpenStore = func(string) {
		blocked.Add(1)
		<-release
	}
	runEngine(t, a)
	for wait := time.Now().Add(20 * time.Second); blocked.Load() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(wait) {
			t.Fatal("no store open began")
		}
	}
	cfgB := testConfig(t, addrs, "slowopen", false)
	cfgB.SessionTimeout = 2 * time.Second
	runEngine(t, New(keyedCount(t, "in", "out"), cfgB))

	adm := kadmClient(t, addrs)
	deadline := time.Now().Add(30 * time.Second)
	for {
		described, err := adm.DescribeGroups(context.Background(), "slowopen")
		if err == nil {
			g := described["slowopen"]
			withTasks := 0
			for _, m := range g.Members {
				if ca, ok := m.Assigned.AsConsumer(); ok && len(ca.Topics) > 0 {
					withTasks++
				}
			}
			if g.State == "Stable" && len(g.Members) == 2 && withTasks == 2 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the group did not settle with both members holding tasks while one member's store open was slow (last: %v)", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if blocked.Load() == 0 {
		t.Fatal("no store open was blocked")
	}
	releaseOnce.Do(func() { close(release) })
	produce(t, addrs, "in", 0, "k0")
	produce(t, addrs, "in", 3, "k3")
	got := readCommitted(t, addrs, "out", 30*time.Second, func(r []*kgo.Record) bool { return len(r) >= 2 })
	if len(got) < 2 {
		t.Fatalf("read %d output records after the slow open ended, want 2", len(got))
	}
}

func kadmClient(t *testing.T, addrs []string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// cutOffACommit makes kfake cut off, once armed, the first commit whose
// end is in flight: the worker's End is cancelled as a waiting rebalance
// cancels it, and the broker commits once the client has given up on the
// answer. w is the engine's worker; cut says that it happened.
func cutOffACommit(c *kfake.Cluster, e *Engine) (w *atomic.Pointer[worker], armed, cut *atomic.Bool) {
	w, armed, cut = new(atomic.Pointer[worker]), new(atomic.Bool), new(atomic.Bool)
	e.testing.beforeStep = func(wk *worker, _ kgo.Fetches) { w.Store(wk) }
	c.KeepControl()
	c.ControlKey(kmsg.EndTxn.Int16(), func(req kmsg.Request) (kmsg.Response, error, bool) {
		wk := w.Load()
		if !armed.Load() || !req.(*kmsg.EndTxnRequest).Commit || wk == nil || cut.Load() {
			return nil, nil, false
		}
		cancel := wk.endCancel.Load()
		if cancel == nil {
			return nil, nil, false
		}
		cut.Store(true)
		(*cancel)(errRebalanceWaiting)
		for deadline := time.Now().Add(10 * time.Second); wk.endCancel.Load() != nil && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		return nil, nil, false
	})
	return w, armed, cut
}

// TestCommitCutOffInFlightIsNotRedone: a transaction's end is cut off
// (its context ends, as when a rebalance starts waiting or the attempt's
// deadline passes) after the request to commit left the client. The
// coordinator commits it, but End reports an error: the worker must find
// out that the transaction committed, not rewind and process its input a
// second time. Seen in a chaos run as thousands of inputs whose output
// appeared twice while every aggregate stayed exact.
func TestCommitCutOffInFlightIsNotRedone(t *testing.T) {
	c, addrs := fakeCluster(t, kfake.SeedTopics(1, "in", "out"))
	var processed atomic.Int64
	e := New(countingPipe(t, "in", "out", &processed), testConfig(t, addrs, "cutoff", true))
	_, armed, cut := cutOffACommit(c, e)
	runEngine(t, e)
	produce(t, addrs, "in", 0, keys(10, "a")...)
	readCommitted(t, addrs, "out", 20*time.Second, func(r []*kgo.Record) bool { return len(r) >= 10 })
	armed.Store(true)
	produce(t, addrs, "in", 0, keys(10, "b")...)
	for deadline := time.Now().Add(20 * time.Second); !cut.Load() && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if !cut.Load() {
		t.Fatal("no commit was cut off")
	}
	produce(t, addrs, "in", 0, keys(10, "c")...)
	got := readCommitted(t, addrs, "out", 20*time.Second, func(r []*kgo.Record) bool {
		for _, rec := range r {
			if string(rec.Key) == "c9" {
				return true
			}
		}
		return false
	})
	seen := map[string]int{}
	var twice []string
	for _, r := range got {
		if seen[string(r.Key)]++; seen[string(r.Key)] == 2 {
			twice = append(twice, string(r.Key))
		}
	}
	if len(seen) != 30 || len(twice) > 0 {
		t.Fatalf("read %d distinct outputs of 30 inputs, %d of them twice (%v)", len(seen), len(twice), twice)
	}
}

// TestFencedByItsOwnEpochBumpReplacesTheWorker: after a transaction's end
// is cut off, the coordinator may have bumped the producer's epoch in an
// answer the client never saw (KIP-890), so the client's next producer-id
// request is fenced (CI: TestExactlyOnceSurvivesLosingTheGroupCoordinator
// once stopped its instance with PRODUCER_FENCED). That is not another
// instance: the worker is replaced instead of the application failing,
// and every input still comes out exactly once.
func TestFencedByItsOwnEpochBumpReplacesTheWorker(t *testing.T) {
	c, addrs := fakeCluster(t, kfake.SeedTopics(1, "in", "out"))
	var processed atomic.Int64
	e := New(countingPipe(t, "in", "out", &processed), testConfig(t, addrs, "selffenced", true))
	w, armed, cut := cutOffACommit(c, e)
	var fenced atomic.Bool
	c.ControlKey(kmsg.InitProducerID.Int16(), func(req kmsg.Request) (kmsg.Response, error, bool) {
		if !cut.Load() || fenced.Load() {
			return nil, nil, false
		}
		fenced.Store(true)
		resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
		resp.ErrorCode = kerr.ProducerFenced.Code
		return resp, nil, true
	})
	runEngine(t, e) // fails the test if Run returns an error
	produce(t, addrs, "in", 0, keys(10, "a")...)
	readCommitted(t, addrs, "out", 20*time.Second, func(r []*kgo.Record) bool { return len(r) >= 10 })
	first := w.Load()
	armed.Store(true)
	produce(t, addrs, "in", 0, keys(10, "b")...)
	for deadline := time.Now().Add(20 * time.Second); !fenced.Load() && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if !fenced.Load() {
		t.Fatal("the producer was never fenced after the cut-off end")
	}
	produce(t, addrs, "in", 0, keys(10, "c")...)
	got := readCommitted(t, addrs, "out", 30*time.Second, func(r []*kgo.Record) bool {
		return slices.ContainsFunc(r, func(rec *kgo.Record) bool { return string(rec.Key) == "c9" })
	})
	seen := map[string]int{}
	for _, r := range got {
		seen[string(r.Key)]++
	}
	for k, n := range seen {
		if n > 1 {
			t.Errorf("%s came out %d times", k, n)
		}
	}
	if len(seen) != 30 {
		t.Fatalf("read %d distinct outputs of 30 inputs", len(seen))
	}
	if w.Load() == first {
		t.Fatal("the worker was not replaced")
	}
}
