package kafkabroker

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestStartRunsARealBroker starts a broker the way tests will (on a machine
// without Docker and without KAFKA_BROKERS: a JVM from the jar cache), and
// checks that it does what eddy needs: topics, a consumer group with a short
// session timeout, and transactions read back read_committed.
func TestStartRunsARealBroker(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Kafka broker; skipped with -short")
	}
	t.Setenv(EnvBrokers, "")
	begin := time.Now()
	b, err := Start(context.Background(), WithLogger(slog.New(slog.NewTextHandler(t.Output(), nil))))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("broker from %s at %v ready in %v", b.Source(), b.Addrs(), time.Since(begin).Round(10*time.Millisecond))
	t.Cleanup(func() {
		closeBegin := time.Now()
		if err := b.Close(); err != nil {
			t.Error(err)
		}
		t.Logf("broker closed in %v", time.Since(closeBegin).Round(10*time.Millisecond))
		if tail := b.LogTail(5); tail != "" {
			t.Errorf("LogTail after Close = %q, want empty: Close removes the broker's files", tail)
		}
		if err := b.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last lines of the broker log:\n%s", b.LogTail(50))
		}
	})
	if src := b.Source(); src != SourceJVM && src != SourceTestcontainers {
		t.Fatalf("Source() = %q, want %q or %q", src, SourceJVM, SourceTestcontainers)
	}
	if b.Source() == SourceJVM && b.LogTail(10) == "" {
		// The controller logs a warning when it activates, so an
		// empty log means the log4j configuration is not in effect.
		t.Errorf("LogTail(10) is empty; want the broker's warnings")
	}

	t.Run("group", func(t *testing.T) { testProduceConsumeInGroup(t, b.Addrs()) })
	t.Run("transactions", func(t *testing.T) { testTransactions(t, b.Addrs()) })
	t.Run("env", func(t *testing.T) { testStartFromEnv(t, b.Addrs()) })
	t.Run("serve", func(t *testing.T) { testServeFromEnv(t, b.Addrs()) })
}

// newClient returns a client of addrs closed with the test.
func newClient(t *testing.T, addrs []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addrs...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// createTopic creates a one-partition topic.
func createTopic(t *testing.T, ctx context.Context, addrs []string, topic string) {
	t.Helper()
	adm := kadm.NewClient(newClient(t, addrs))
	resp, err := adm.CreateTopic(ctx, 1, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

// pollUntil polls cl until done returns true for the values seen so far.
func pollUntil(t *testing.T, ctx context.Context, cl *kgo.Client, done func(values []string) bool) []string {
	t.Helper()
	var values []string
	for !done(values) {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("polling: %v; values so far: %q", err, values)
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Fatalf("fetch %s[%d]: %v", topic, p, err)
		})
		fs.EachRecord(func(r *kgo.Record) { values = append(values, string(r.Value)) })
	}
	return values
}

func testProduceConsumeInGroup(t *testing.T, addrs []string) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	const topic, group = "kafkabroker-group", "kafkabroker-group-test"
	createTopic(t, ctx, addrs, topic)

	producer := newClient(t, addrs)
	if err := producer.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte("k"), Value: []byte("hello")}).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}

	// A 3 s session timeout is below Kafka's default minimum of 6 s: the
	// join succeeds only because of group.min.session.timeout.ms.
	consumer := newClient(t, addrs,
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.SessionTimeout(3*time.Second), kgo.HeartbeatInterval(500*time.Millisecond),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	got := pollUntil(t, ctx, consumer, func(v []string) bool { return len(v) > 0 })
	if !slices.Equal(got, []string{"hello"}) {
		t.Fatalf("consumed %q, want [hello]", got)
	}
	if err := consumer.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit: %v", err)
	}
	offsets, err := kadm.NewClient(producer).FetchOffsets(ctx, group)
	if err != nil {
		t.Fatalf("fetch committed offsets: %v", err)
	}
	if o, ok := offsets.Lookup(topic, 0); !ok || o.At != 1 {
		t.Fatalf("committed offset of %s[0] = %+v (found %v), want 1", topic, o, ok)
	}
}

func testTransactions(t *testing.T, addrs []string) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	const topic = "kafkabroker-txn"
	createTopic(t, ctx, addrs, topic)

	txn := newClient(t, addrs, kgo.TransactionalID("kafkabroker-test"))
	for _, step := range []struct {
		value string
		end   kgo.TransactionEndTry
	}{{"aborted", kgo.TryAbort}, {"committed", kgo.TryCommit}} {
		if err := txn.BeginTransaction(); err != nil {
			t.Fatalf("begin transaction: %v", err)
		}
		if err := txn.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(step.value)}).FirstErr(); err != nil {
			t.Fatalf("produce %q in a transaction: %v", step.value, err)
		}
		if err := txn.EndTransaction(ctx, step.end); err != nil {
			t.Fatalf("end transaction of %q: %v", step.value, err)
		}
	}

	// The aborted record comes first in the log, so a reader that did not
	// filter it would see it before the committed one.
	reader := newClient(t, addrs, kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := pollUntil(t, ctx, reader, func(v []string) bool { return slices.Contains(v, "committed") })
	if !slices.Equal(got, []string{"committed"}) {
		t.Fatalf("read_committed consumed %q, want [committed]", got)
	}
}

func testStartFromEnv(t *testing.T, addrs []string) {
	t.Setenv(EnvBrokers, " "+strings.Join(addrs, " , ")+", ")
	b, err := Start(t.Context(), WithStartTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if b.Source() != SourceEnv {
		t.Errorf("Source() = %q, want %q", b.Source(), SourceEnv)
	}
	if !slices.Equal(b.Addrs(), addrs) {
		t.Errorf("Addrs() = %q, want %q", b.Addrs(), addrs)
	}
	if tail := b.LogTail(10); tail != "" {
		t.Errorf("LogTail(10) = %q, want empty for a broker that is not ours", tail)
	}
	if err := b.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	// Close left the broker running.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(newClient(t, addrs)).BrokerMetadata(ctx); err != nil {
		t.Fatalf("the broker does not answer after Close of its env Broker: %v", err)
	}
}

func testServeFromEnv(t *testing.T, addrs []string) {
	t.Setenv(EnvBrokers, strings.Join(addrs, ","))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pr, pw := io.Pipe()
	served := make(chan error, 1)
	go func() {
		err := Serve(ctx, pw)
		pw.CloseWithError(errors.New("Serve returned"))
		served <- err
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("read Serve's announcement: %v", err)
	}
	if want := EnvBrokers + "=" + strings.Join(addrs, ",") + "\n"; line != want {
		t.Errorf("Serve wrote %q, want %q", line, want)
	}
	select {
	case err := <-served:
		t.Fatalf("Serve returned before its context was done: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	cancel()
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

func TestStartReportsBrokerThatDoesNotComeUp(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Kafka broker; skipped with -short")
	}
	t.Setenv(EnvBrokers, "")
	begin := time.Now()
	_, err := Start(t.Context(), WithStartTimeout(time.Millisecond))
	if err == nil || !strings.Contains(err.Error(), "did not come up") || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Start = %v, want an error that the broker did not come up, wrapping context.DeadlineExceeded", err)
	}
	t.Logf("failed start, cleanup included, took %v; error: %v", time.Since(begin).Round(10*time.Millisecond), err)
}

func TestStartFromEnvReportsDeadBroker(t *testing.T) {
	// Port 1 on loopback is never a Kafka broker.
	t.Setenv(EnvBrokers, "127.0.0.1:1")
	_, err := Start(t.Context(), WithStartTimeout(time.Second))
	if err == nil || !strings.Contains(err.Error(), "do not answer") || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Start = %v, want an error that the brokers do not answer, wrapping context.DeadlineExceeded", err)
	}
}

func TestStartFromEnvRejectsEmptyList(t *testing.T) {
	t.Setenv(EnvBrokers, " , ,")
	if _, err := Start(t.Context()); err == nil || !strings.Contains(err.Error(), "names no broker") {
		t.Fatalf("Start = %v, want an error that KAFKA_BROKERS names no broker", err)
	}
}

// TestJVMBrokerReportsTakenPort checks, against a real broker, what startJVM
// relies on to retry on other ports: a broker whose port is taken fails its
// start (its log says why, or it exits saying why), without waiting for the
// start timeout.
func TestJVMBrokerReportsTakenPort(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Kafka broker; skipped with -short")
	}
	java, err := findJava()
	if err != nil {
		t.Skip(err)
	}
	cacheDir, err := defaultCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	libs, _, err := ensureJars(t.Context(), cacheDir, DefaultVersion, mavenFetch, log)
	if err != nil {
		t.Fatal(err)
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	ports, err := freeLoopbackPorts()
	if err != nil {
		t.Fatal(err)
	}
	ports.broker = taken.Addr().(*net.TCPAddr).Port

	jb, addr, err := launchJVM(t.Context(), java, libs, ports, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	err = waitReady(ctx, []string{addr}, launchFailure(jb.exited, jb.logPath, 0))
	tail := jb.logTail(40)
	if stopErr := jb.stop(); stopErr != nil {
		t.Error(stopErr)
	}
	if !errors.Is(err, errBindFailed) && !errors.Is(err, errBrokerExited) {
		t.Fatalf("waitReady = %v, want errBindFailed or errBrokerExited for a broker whose port is taken; its log:\n%s", err, tail)
	}
	if !isBindFailure(tail) {
		t.Fatalf("isBindFailure is false for the log of a broker whose port is taken:\n%s", tail)
	}
}
