package eddy_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/eddystream/eddy"
	"github.com/eddystream/eddy/processor"
	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/topology"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(stateDirHolderEnv); dir != "" {
		os.Exit(holdStateDir(dir))
	}
	goleak.VerifyTestMain(m)
}

func wordCount(t *testing.T, in, out string) *topology.Topology {
	t.Helper()
	top, err := buildWordCount(in, out)
	if err != nil {
		t.Fatal(err)
	}
	return top
}

// buildWordCount counts the words of the lines of in into out, with a
// logged store.
func buildWordCount(in, out string) (*topology.Topology, error) {
	b := topology.NewBuilder()
	lines := topology.Source(b, in, serde.String(), serde.String())
	topology.FlatMap(lines, func(_ string, l string) []topology.KeyValue[string, string] {
		var kvs []topology.KeyValue[string, string]
		for _, w := range strings.Fields(l) {
			kvs = append(kvs, topology.KV(w, w))
		}
		return kvs
	}).GroupByKey().Count(topology.StoreName("counts")).ToStream().To(out)
	return b.Build()
}

func cluster(t *testing.T, opts ...kfake.Opt) []string {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

func newApp(t *testing.T, top *topology.Topology, addrs []string, app string, opts ...eddy.Option) *eddy.App {
	t.Helper()
	a, err := eddy.New(top, append([]eddy.Option{
		eddy.ApplicationID(app), eddy.Brokers(addrs...), eddy.StateDir(t.TempDir()),
		eddy.CommitInterval(50 * time.Millisecond), eddy.Logger(slog.New(slog.DiscardHandler)),
		eddy.KafkaOptions(kgo.RebalanceTimeout(2 * time.Second)),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestRunCountsAndCloseLeavesNoGoroutine(t *testing.T) {
	addrs := cluster(t, kfake.SeedTopics(4, "lines", "counts"))
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	want := map[string]int64{}
	var recs []*kgo.Record
	for i := range 400 {
		line := fmt.Sprintf("w%d w%d common", i%7, i%13)
		for _, w := range strings.Fields(line) {
			want[w]++
		}
		recs = append(recs, &kgo.Record{Topic: "lines", Key: []byte(fmt.Sprint(i)), Value: []byte(line)})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	app := newApp(t, wordCount(t, "lines", "counts"), addrs, "wc")
	errc := make(chan error, 1)
	go func() { errc <- app.Run(ctx) }()

	got := map[string]int64{}
	consumer, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics("counts"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	readCounts(t, ctx, consumer, got, want)
	if err := app.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("Run after Close = %v", err)
	}
	if err := app.Run(ctx); !errors.Is(err, eddy.ErrAlreadyRun) {
		t.Fatalf("second Run = %v", err)
	}
}

// produceKeyed produces n records to topic, keyed "0" to "<n-1>", each with
// value.
func produceKeyed(t *testing.T, ctx context.Context, cl *kgo.Client, topic string, n int, value string) {
	t.Helper()
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(fmt.Sprint(i)), Value: []byte(value)})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// readCounts reads word counts from consumer into got until they equal
// want, failing the test when ctx ends first.
func readCounts(t *testing.T, ctx context.Context, consumer *kgo.Client, got, want map[string]int64) {
	t.Helper()
	for !equalCounts(got, want) {
		fs := consumer.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("counts = %v, want %v", got, want)
		}
		fs.EachRecord(func(r *kgo.Record) {
			n, err := serde.Int64().Deserialize("counts", r.Value)
			if err != nil {
				t.Fatal(err)
			}
			got[string(r.Key)] = n
		})
	}
}

func equalCounts(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range b {
		if a[k] != v {
			return false
		}
	}
	return true
}

func runErr(t *testing.T, app *eddy.App) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return app.Run(ctx)
}

func TestMissingSourceTopicIsAStartupError(t *testing.T) {
	addrs := cluster(t, kfake.SeedTopics(2, "counts"))
	err := runErr(t, newApp(t, wordCount(t, "nope", "counts"), addrs, "missing"))
	var mt *eddy.MissingTopicError
	if !errors.As(err, &mt) || len(mt.Topics) != 1 || mt.Topics[0] != "nope" {
		t.Fatalf("err = %v, want a MissingTopicError naming nope", err)
	}
}

func TestCopartitionMismatchIsAStartupError(t *testing.T) {
	addrs := cluster(t, kfake.SeedTopics(6, "left", "out"), kfake.SeedTopics(4, "right"))
	b := topology.NewBuilder()
	topology.SourceTopics(b, []string{"left", "right"}, serde.String(), serde.String()).To("out")
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	err = runErr(t, newApp(t, top, addrs, "copart"))
	var ce *eddy.CopartitionError
	if !errors.As(err, &ce) || ce.Partitions["left"] != 6 || ce.Partitions["right"] != 4 {
		t.Fatalf("err = %v, want a CopartitionError with left=6 right=4", err)
	}
	for _, want := range []string{"left has 6", "right has 4"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
}

func TestInternalTopicWithWrongPartitionCountIsAStartupError(t *testing.T) {
	addrs := cluster(t, kfake.SeedTopics(4, "lines", "counts"), kfake.SeedTopics(2, "wrong-counts-changelog"))
	err := runErr(t, newApp(t, wordCount(t, "lines", "counts"), addrs, "wrong"))
	var me *eddy.InternalTopicMismatchError
	if !errors.As(err, &me) || me.Topic != "wrong-counts-changelog" || me.Partitions != 2 || me.Want != 4 {
		t.Fatalf("err = %v, want an InternalTopicMismatchError for wrong-counts-changelog (2, want 4)", err)
	}
}

func TestInternalTopicsAreCreated(t *testing.T) {
	addrs := cluster(t, kfake.SeedTopics(3, "lines", "counts"))
	app := newApp(t, wordCount(t, "lines", "counts"), addrs, "created")
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- app.Run(ctx) }()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	deadline := time.Now().Add(10 * time.Second)
	var details kadm.TopicDetails
	for time.Now().Before(deadline) {
		details, err = adm.ListTopics(context.Background(), "created-counts-changelog")
		if err == nil && details["created-counts-changelog"].Err == nil && len(details["created-counts-changelog"].Partitions) > 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	all, err := adm.ListTopics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"created-counts-changelog"} {
		if n := len(all[name].Partitions); n != 3 {
			t.Errorf("%s has %d partitions, want 3", name, n)
		}
	}
	var repartition string
	for name := range all {
		if strings.HasPrefix(name, "created-") && strings.HasSuffix(name, "-repartition") {
			repartition = name
		}
	}
	if repartition == "" || len(all[repartition].Partitions) != 3 {
		t.Errorf("repartition topic %q missing or not 3 partitions", repartition)
	}
	rc, err := adm.DescribeTopicConfigs(context.Background(), "created-counts-changelog")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := rc.On("created-counts-changelog", nil)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range cfg.Configs {
		if c.Key == "cleanup.policy" && c.MaybeValue() == "compact" {
			found = true
		}
	}
	if !found {
		t.Error("the changelog topic is not compacted")
	}
}

func TestInvalidOptions(t *testing.T) {
	b := topology.NewBuilder()
	topology.Source(b, "in", serde.String(), serde.String()).To("out")
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		opts []eddy.Option
		want string
	}{
		"no application id":  {nil, "ApplicationID is required"},
		"bad application id": {[]eddy.Option{eddy.ApplicationID("a b")}, "may contain only"},
		"no brokers":         {[]eddy.Option{eddy.ApplicationID("a"), eddy.Brokers()}, "at least one address"},
		"empty broker":       {[]eddy.Option{eddy.ApplicationID("a"), eddy.Brokers("h:9092", "")}, "Brokers got an empty address"},
		"workers":            {[]eddy.Option{eddy.ApplicationID("a"), eddy.Workers(0)}, "Workers must be at least 1"},
		"commit interval":    {[]eddy.Option{eddy.ApplicationID("a"), eddy.CommitInterval(-time.Second)}, "CommitInterval must not be negative"},
		"replication":        {[]eddy.Option{eddy.ApplicationID("a"), eddy.ReplicationFactor(0)}, "ReplicationFactor"},
		"guarantee":          {[]eddy.Option{eddy.ApplicationID("a"), eddy.ProcessingGuarantee(eddy.Guarantee(9))}, "unknown ProcessingGuarantee"},
		"two at once":        {[]eddy.Option{eddy.Workers(0)}, "ApplicationID is required"},
		"standbys":           {[]eddy.Option{eddy.ApplicationID("a"), eddy.NumStandbyReplicas(-1)}, "NumStandbyReplicas"},
		"recovery lag":       {[]eddy.Option{eddy.ApplicationID("a"), eddy.AcceptableRecoveryLag(-5)}, "AcceptableRecoveryLag"},
		"warm-ups":           {[]eddy.Option{eddy.ApplicationID("a"), eddy.MaxWarmupReplicas(-1)}, "MaxWarmupReplicas"},
		"probing":            {[]eddy.Option{eddy.ApplicationID("a"), eddy.ProbingRebalanceInterval(-time.Second)}, "ProbingRebalanceInterval"},
		"zero probing":       {[]eddy.Option{eddy.ApplicationID("a"), eddy.ProbingRebalanceInterval(0)}, "ProbingRebalanceInterval must be positive"},
		"zero session":       {[]eddy.Option{eddy.ApplicationID("a"), eddy.SessionTimeout(0)}, "SessionTimeout must be positive"},
		"zero heartbeat":     {[]eddy.Option{eddy.ApplicationID("a"), eddy.HeartbeatInterval(0)}, "HeartbeatInterval must be positive"},
		"zero task timeout":  {[]eddy.Option{eddy.ApplicationID("a"), eddy.TaskTimeout(0)}, "TaskTimeout must be positive"},
		"zero shutdown":      {[]eddy.Option{eddy.ApplicationID("a"), eddy.ShutdownTimeout(0)}, "ShutdownTimeout must be positive"},
		"nil logger":         {[]eddy.Option{eddy.ApplicationID("a"), eddy.Logger(nil)}, "Logger needs"},
		"nil registry":       {[]eddy.Option{eddy.ApplicationID("a"), eddy.MetricsRegistry(nil)}, "MetricsRegistry needs"},
		"empty state dir":    {[]eddy.Option{eddy.ApplicationID("a"), eddy.StateDir("")}, "StateDir"},
		"deserialization":    {[]eddy.Option{eddy.ApplicationID("a"), eddy.OnDeserializationError(9)}, "OnDeserializationError"},
		"processing":         {[]eddy.Option{eddy.ApplicationID("a"), eddy.OnProcessingError(9)}, "OnProcessingError"},
		"production":         {[]eddy.Option{eddy.ApplicationID("a"), eddy.OnProductionError(9)}, "OnProductionError"},
		"heartbeat":          {[]eddy.Option{eddy.ApplicationID("a"), eddy.SessionTimeout(time.Second), eddy.HeartbeatInterval(2 * time.Second)}, "below SessionTimeout"},
		"admin registry": {[]eddy.Option{eddy.ApplicationID("a"), eddy.AdminAddr(":0"), eddy.MetricsRegistry(registererOnly{prometheus.NewRegistry()})},
			"not a prometheus.Gatherer"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := eddy.New(top, tc.opts...)
			if !errors.Is(err, eddy.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrInvalidConfig mentioning %q", err, tc.want)
			}
		})
	}
	if _, err := eddy.New(nil, eddy.ApplicationID("a")); !errors.Is(err, eddy.ErrInvalidConfig) {
		t.Fatalf("nil topology: %v", err)
	}
}

// TestSeveralWorkersShareTheTasks: with two workers, the App is two
// members of the group, and the balancer splits the input's partitions
// between them. The test waits for that split before it produces, since a
// first worker may otherwise process everything before the second joins.
func TestSeveralWorkersShareTheTasks(t *testing.T) {
	addrs := cluster(t, kfake.SeedTopics(4, "in", "out"))
	b := topology.NewBuilder()
	topology.MapValues(topology.Source(b, "in", serde.String(), serde.String()), strings.ToUpper).To("out")
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	app := newApp(t, top, addrs, "workers", eddy.Workers(2))
	errc := make(chan error, 1)
	go func() { errc <- app.Run(ctx) }()
	adm := kadm.NewClient(cl)

	// Each of the two members owns some of in's partitions, and together
	// they own all four, each once.
	var split string
	for {
		group, err := adm.DescribeGroups(ctx, "workers")
		if err == nil {
			split, err = sharedAssignment(group["workers"], "in", 4)
			if err == nil {
				break
			}
		}
		select {
		case err := <-errc:
			t.Fatalf("Run returned %v before the workers shared the tasks", err)
		case <-ctx.Done():
			t.Fatalf("the workers did not share in's partitions: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Logf("assignment: %s", split)

	produceKeyed(t, ctx, cl, "in", 200, "x")
	for {
		ends, err := adm.ListEndOffsets(ctx, "out")
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
		if n >= 200 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("only %d of 200 records came out", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	app.Close()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// sharedAssignment checks that g has two members, each assigned some of
// topic's partitions, and that they hold all of its n partitions, each
// once. It describes the split.
func sharedAssignment(g kadm.DescribedGroup, topic string, n int32) (string, error) {
	if g.Err != nil {
		return "", g.Err
	}
	if len(g.Members) != 2 {
		return "", fmt.Errorf("the group has %d members, want 2 (one per worker)", len(g.Members))
	}
	owner := map[int32]int{}
	var split []string
	for i, m := range g.Members {
		a, ok := m.Assigned.AsConsumer()
		if !ok {
			return "", fmt.Errorf("member %d has no consumer-protocol assignment (group state %s)", i, g.State)
		}
		var mine []int32
		for _, at := range a.Topics {
			if at.Topic != topic {
				continue
			}
			for _, p := range at.Partitions {
				if _, dup := owner[p]; dup {
					return "", fmt.Errorf("partition %d is assigned twice", p)
				}
				owner[p] = i
				mine = append(mine, p)
			}
		}
		if len(mine) == 0 {
			return "", fmt.Errorf("member %d has none of %s's partitions", i, topic)
		}
		split = append(split, fmt.Sprintf("member %d: %v", i, mine))
	}
	if len(owner) != int(n) {
		return "", fmt.Errorf("%d of %s's %d partitions are assigned", len(owner), topic, n)
	}
	return strings.Join(split, "; "), nil
}

func TestProcessingErrorStopsRunWithAMatchableError(t *testing.T) {
	addrs := cluster(t, kfake.SeedTopics(1, "in", "out"))
	top := failingTopology(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: "in", Value: []byte("ok")}, &kgo.Record{Topic: "in", Value: []byte("boom")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	err = runErr(t, newApp(t, top, addrs, "procfail"))
	var pe *eddy.ProcessingError
	if !errors.As(err, &pe) || pe.Topic != "in" || pe.Offset != 1 {
		t.Fatalf("Run = %v, want a ProcessingError for in-0@1", err)
	}
}

func TestDeadLetterTopicMustExist(t *testing.T) {
	addrs := cluster(t, kfake.SeedTopics(1, "in", "out"))
	err := runErr(t, newApp(t, failingTopology(t), addrs, "nodlq",
		eddy.OnProcessingError(eddy.SkipOnProcessingError), eddy.DeadLetterTopic("missing-dlq")))
	var mt *eddy.MissingTopicError
	if !errors.As(err, &mt) || mt.Topics[0] != "missing-dlq" {
		t.Fatalf("Run = %v, want a MissingTopicError for the dead-letter topic", err)
	}
	_, err = eddy.New(failingTopology(t), eddy.ApplicationID("x"), eddy.DeadLetterTopic("dlq"))
	if !errors.Is(err, eddy.ErrInvalidConfig) {
		t.Fatalf("a dead-letter topic without a skip handler: %v", err)
	}
}

// failingTopology copies "in" to "out" and fails on the value "boom".
func failingTopology(t *testing.T) *topology.Topology {
	t.Helper()
	b := topology.NewBuilder()
	src := topology.Source(b, "in", serde.String(), serde.String())
	topology.Process(src, processor.Func(func(ctx processor.Context[string, string], r processor.Record[string, string]) error {
		if r.Value == "boom" {
			return errors.New("boom")
		}
		return ctx.Forward(r)
	}), nil).WithSerdes(serde.String(), serde.String()).To("out")
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return top
}

// registererOnly hides a registry's Gatherer.
type registererOnly struct{ prometheus.Registerer }

// TestMetricsRegistryConflict: two applications with one id cannot share a
// registry, and the error says so at New.
func TestMetricsRegistryConflict(t *testing.T) {
	b := topology.NewBuilder()
	topology.Source(b, "in", serde.String(), serde.String()).To("out")
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	if _, err := eddy.New(top, eddy.ApplicationID("a"), eddy.MetricsRegistry(reg)); err != nil {
		t.Fatal(err)
	}
	if _, err := eddy.New(top, eddy.ApplicationID("b"), eddy.MetricsRegistry(reg)); err != nil {
		t.Fatalf("another application id on the same registry: %v", err)
	}
	if _, err := eddy.New(top, eddy.ApplicationID("a"), eddy.MetricsRegistry(reg)); err == nil {
		t.Fatal("a second App with the same id registered its metrics on the same registry")
	}
}

// TestAdminEndpoints runs an App with its admin endpoints and checks that
// /healthz and /readyz answer and /metrics counts the records processed.
func TestAdminEndpoints(t *testing.T) {
	addrs := cluster(t, kfake.SeedTopics(2, "in", "out"))
	b := topology.NewBuilder()
	topology.Source(b, "in", serde.String(), serde.String()).To("out")
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	produceKeyed(t, ctx, cl, "in", 50, "x")
	app := newApp(t, top, addrs, "admin", eddy.AdminAddr("127.0.0.1:0"))
	if err := app.Ready(); err == nil {
		t.Fatal("Ready before Run = nil; want an error until the member has its assignment")
	}
	errc := make(chan error, 1)
	go func() { errc <- app.Run(ctx) }()
	get := func(path string) (int, string) {
		addr := app.AdminAddr()
		if addr == "" {
			return 0, ""
		}
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0, ""
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	want := `eddy_task_records_processed_total{application="admin",task="0_0"}`
	for {
		code, _ := get("/readyz")
		_, metrics := get("/metrics")
		if code == http.StatusOK && strings.Contains(metrics, want) && processedTotal(metrics) == 50 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("never ready with 50 records processed; last /readyz %d, /metrics:\n%s", code, metrics)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, body := get("/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d %q", code, body)
	}
	if err := app.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// processedTotal sums eddy_task_records_processed_total over tasks in a
// Prometheus text exposition.
func processedTotal(exposition string) int {
	total := 0
	for _, line := range strings.Split(exposition, "\n") {
		if !strings.HasPrefix(line, "eddy_task_records_processed_total{") {
			continue
		}
		var n int
		if _, err := fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &n); err == nil {
			total += n
		}
	}
	return total
}
