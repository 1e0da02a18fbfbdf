package eddy_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddystream/eddy"
	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/topology"
)

// rejectProducesTo makes the cluster answer every produce request that
// writes to topic with NOT_ENOUGH_REPLICAS while on is set, as a broker
// does when fewer replicas are in sync than the topic's
// min.insync.replicas; with silent set too, it answers nothing instead,
// as a broker that hangs. rejected counts the requests it answered so.
func rejectProducesTo(c *kfake.Cluster, topic string, id [16]byte, on, silent *atomic.Bool, rejected *atomic.Int64) {
	answerProducesTo(c, topic, id, func() (int16, bool) {
		if !on.Load() {
			return 0, false
		}
		rejected.Add(1)
		if silent.Load() {
			return 0, true
		}
		return kerr.NotEnoughReplicas.Code, true
	})
}

// stallRig is an application copying "in" to "out" on a cluster that can
// reject every write to "out".
type stallRig struct {
	t        *testing.T
	addrs    []string
	cl       *kgo.Client
	reject   atomic.Bool
	silent   atomic.Bool
	rejected atomic.Int64
	reg      *prometheus.Registry
	logs     *lockedBuffer
	app      *eddy.App
	errc     chan error
}

func newStallRig(t *testing.T, g eddy.Guarantee, opts ...eddy.Option) *stallRig {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "in", "out"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	r := &stallRig{t: t, addrs: c.ListenAddrs(), reg: prometheus.NewRegistry(), logs: &lockedBuffer{}, errc: make(chan error, 1)}
	if r.cl, err = kgo.NewClient(kgo.SeedBrokers(r.addrs...)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.cl.Close)
	details, err := kadm.NewClient(r.cl).ListTopics(context.Background(), "out")
	if err != nil {
		t.Fatal(err)
	}
	rejectProducesTo(c, "out", details["out"].ID, &r.reject, &r.silent, &r.rejected)
	b := topology.NewBuilder()
	topology.Source(b, "in", serde.String(), serde.String()).To("out")
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	r.app = newApp(t, top, r.addrs, "stall", append([]eddy.Option{
		eddy.ProcessingGuarantee(g), eddy.MetricsRegistry(r.reg),
		eddy.Logger(slog.New(slog.NewTextHandler(r.logs, nil))),
		// Retry the rejected records quickly, so that each commit attempt
		// fails in well under a second.
		eddy.KafkaOptions(kgo.RebalanceTimeout(2*time.Second), kgo.MetadataMinAge(20*time.Millisecond),
			kgo.RetryBackoffFn(func(int) time.Duration { return 20 * time.Millisecond })),
	}, opts...)...)
	return r
}

func (r *stallRig) run() {
	go func() { r.errc <- r.app.Run(context.Background()) }()
}

// produce writes values v<from> to v<to-1> to "in".
func (r *stallRig) produce(from, to int) {
	r.t.Helper()
	var recs []*kgo.Record
	for i := from; i < to; i++ {
		recs = append(recs, &kgo.Record{Topic: "in", Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf("v%d", i))})
	}
	if err := r.cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		r.t.Fatal(err)
	}
}

// waitFor polls cond until it holds, failing the test after hangLimit.
func (r *stallRig) waitFor(what string, cond func() bool) {
	r.t.Helper()
	deadline := time.Now().Add(hangLimit)
	for !cond() {
		select {
		case err := <-r.errc:
			r.t.Fatalf("waiting for %s: Run returned %v; log:\n%s", what, err, r.logs)
		default:
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("waiting for %s: not within %v; log:\n%s", what, hangLimit, r.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// gauge sums the series of the named metric.
func (r *stallRig) gauge(name string) float64 {
	mfs, err := r.reg.Gather()
	if err != nil {
		r.t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

// outValues reads "out" (read_committed) from the start until it has n
// distinct values, returning how many times each was read.
func (r *stallRig) outValues(n int) map[string]int {
	r.t.Helper()
	reader, err := kgo.NewClient(kgo.SeedBrokers(r.addrs...), kgo.ConsumeTopics("out"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		r.t.Fatal(err)
	}
	defer reader.Close()
	ctx, cancel := context.WithTimeout(context.Background(), hangLimit)
	defer cancel()
	seen := map[string]int{}
	for len(seen) < n {
		fs := reader.PollFetches(ctx)
		if ctx.Err() != nil {
			r.t.Fatalf("read %d distinct values from out, want %d; log:\n%s", len(seen), n, r.logs)
		}
		fs.EachRecord(func(rec *kgo.Record) { seen[string(rec.Value)]++ })
	}
	return seen
}

// TestCommitStallIsReportedAndRecovers: while every write to the output
// topic is rejected with NOT_ENOUGH_REPLICAS, each commit attempt fails
// within its deadline with a warning naming the error, topic and
// partition; /readyz says why, eddy_commit_stalled_seconds grows, the
// consumer lag grows with the input, and the application keeps running.
// Once writes are accepted again, every record comes out (exactly once
// under exactly-once) and readiness returns. The commit used to block in
// Flush for as long as the rejection lasted, with no log line and health
// that read 200.
func TestCommitStallIsReportedAndRecovers(t *testing.T) {
	for _, g := range []eddy.Guarantee{eddy.AtLeastOnce, eddy.ExactlyOnce} {
		t.Run(g.String(), func(t *testing.T) {
			r := newStallRig(t, g, eddy.CommitInterval(100*time.Millisecond))
			r.run()
			r.produce(0, 20)
			r.waitFor("the first records out and ready", func() bool { return r.app.Ready() == nil && len(r.outValues(20)) == 20 })

			r.reject.Store(true)
			r.produce(20, 40)
			var why error
			r.waitFor("/readyz to report the stall", func() bool {
				why = r.app.Ready()
				return why != nil && strings.Contains(why.Error(), "commits have failed")
			})
			for _, want := range []string{"NOT_ENOUGH_REPLICAS", "out-"} {
				if !strings.Contains(why.Error(), want) {
					t.Errorf("Ready = %q, want it to name %s", why, want)
				}
			}
			if err := r.app.Alive(); err != nil {
				t.Errorf("Alive during a stall = %v, want nil: the application runs and will recover", err)
			}
			r.waitFor("eddy_commit_stalled_seconds > 0", func() bool { return r.gauge("eddy_commit_stalled_seconds") > 0 })
			r.waitFor("a second failed attempt", func() bool { return strings.Count(r.logs.String(), "commit attempt failed") >= 2 })
			if logs := r.logs.String(); !strings.Contains(logs, "NOT_ENOUGH_REPLICAS") || !strings.Contains(logs, "produce to out-") {
				t.Errorf("the warnings do not name the cause:\n%s", logs)
			}
			r.waitFor("the consumer lag to show the stalled input", func() bool { return r.gauge("eddy_consumer_lag_records") > 0 })

			r.reject.Store(false)
			seen := r.outValues(40)
			r.waitFor("ready again", func() bool { return r.app.Ready() == nil })
			if v := r.gauge("eddy_commit_stalled_seconds"); v != 0 {
				t.Errorf("eddy_commit_stalled_seconds = %v after recovery, want 0", v)
			}
			r.waitFor("the consumer lag back to 0", func() bool { return r.gauge("eddy_consumer_lag_records") == 0 })
			if err := r.app.Close(); err != nil {
				t.Fatal(err)
			}
			if err := <-r.errc; err != nil {
				t.Fatalf("Run = %v after a stall it recovered from", err)
			}
			if g == eddy.ExactlyOnce {
				for v, n := range seen {
					if n != 1 {
						t.Errorf("%s was read %d times under exactly-once", v, n)
					}
				}
			}
			if r.rejected.Load() == 0 {
				t.Fatal("no produce was rejected: the test did not stall anything")
			}
		})
	}
}

// TestCommitStallFailsAfterTheTaskTimeout: commits that keep failing end
// Run once TaskTimeout has passed, with an error naming the cause, and
// /healthz then fails.
func TestCommitStallFailsAfterTheTaskTimeout(t *testing.T) {
	for _, g := range []eddy.Guarantee{eddy.AtLeastOnce, eddy.ExactlyOnce} {
		t.Run(g.String(), func(t *testing.T) {
			r := newStallRig(t, g, eddy.CommitInterval(100*time.Millisecond), eddy.TaskTimeout(2*time.Second))
			r.reject.Store(true)
			r.produce(0, 10)
			start := time.Now()
			err := runUntilReturn(t, r.app)
			took := time.Since(start)
			var ct *eddy.CommitTimeoutError
			if !errors.As(err, &ct) || !errors.Is(err, kerr.NotEnoughReplicas) || !strings.Contains(err.Error(), "out-") {
				t.Fatalf("Run = %v, want a CommitTimeoutError naming NOT_ENOUGH_REPLICAS and the partition", err)
			}
			if ct.Stalled < 2*time.Second {
				t.Errorf("failed after commits stalled %v, before the 2s task timeout", ct.Stalled)
			}
			if r.app.Alive() == nil {
				t.Error("Alive = nil after Run failed")
			}
			t.Logf("Run failed %v after it started, after %d attempts", took.Round(time.Millisecond), ct.Attempts)
		})
	}
}

// TestCloseReturnsDuringACommitStall: Close returns within the shutdown
// timeout while every write is rejected, or not answered at all (SIGTERM
// used to be ignored), and /healthz fails while the application shuts
// down.
func TestCloseReturnsDuringACommitStall(t *testing.T) {
	for _, g := range []eddy.Guarantee{eddy.AtLeastOnce, eddy.ExactlyOnce} {
		for _, silent := range []bool{false, true} {
			name := g.String() + "/rejected"
			if silent {
				name = g.String() + "/unanswered"
			}
			t.Run(name, func(t *testing.T) {
				r := newStallRig(t, g, eddy.CommitInterval(100*time.Millisecond), eddy.ShutdownTimeout(3*time.Second))
				r.run()
				r.produce(0, 10)
				r.waitFor("some records out", func() bool { return len(r.outValues(10)) == 10 })
				r.silent.Store(silent)
				r.reject.Store(true)
				r.produce(10, 20)
				r.waitFor("a produce to stall", func() bool { return r.rejected.Load() > 0 })
				start := time.Now()
				closed := make(chan struct{})
				go func() {
					defer close(closed)
					r.app.Close()
				}()
				r.waitFor("Alive to fail while shutting down", func() bool {
					select {
					case <-closed:
						return true
					default:
					}
					return r.app.Alive() != nil
				})
				select {
				case <-closed:
				case <-time.After(hangLimit):
					t.Fatalf("Close did not return within %v", hangLimit)
				}
				err := <-r.errc
				took := time.Since(start)
				t.Logf("Close returned after %v; Run = %v", took.Round(time.Millisecond), err)
				if took > 3*time.Second+5*time.Second {
					t.Errorf("Close took %v, past the 3s shutdown timeout and its grace", took)
				}
				if err == nil {
					t.Error("Run = nil, but its last work could not be committed")
				}
			})
		}
	}
}

// TestFullProducerBufferCommitsEarly: under at-least-once with a long
// commit interval, outputs the brokers do not acknowledge pile up in the
// producer until producing blocks the loop, with no commit attempt (and so
// no deadline) to notice. A buffer half full now commits early, whose
// bounded flush fails the run at the task timeout instead.
func TestFullProducerBufferCommitsEarly(t *testing.T) {
	r := newStallRig(t, eddy.AtLeastOnce, eddy.CommitInterval(time.Hour), eddy.TaskTimeout(3*time.Second))
	r.silent.Store(true)
	r.reject.Store(true)
	const n = 60_000 // above half the producer's buffer
	for from := 0; from < n; from += 10_000 {
		r.produce(from, from+10_000)
	}
	err := runUntilReturn(t, r.app)
	var ct *eddy.CommitTimeoutError
	if !errors.As(err, &ct) {
		t.Fatalf("Run = %v, want a CommitTimeoutError", err)
	}
}
