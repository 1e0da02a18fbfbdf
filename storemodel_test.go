package eddy_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddystream/eddy"
	"github.com/eddystream/eddy/processor"
	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/state"
	"github.com/eddystream/eddy/topology"
)

// TestChangelogTopicTakesTheStoresSettings declares a store with
// changelog settings of its own and checks the topic eddy creates.
func TestChangelogTopicTakesTheStoresSettings(t *testing.T) {
	b := topology.NewBuilder()
	topology.AddKeyValueStore(b, "ttl", serde.String(), serde.String(),
		topology.InMemory(),
		topology.WithCaching(true),
		topology.WithChangelogConfig(state.ChangelogConfig{
			CleanupPolicy: "compact,delete",
			Retention:     2 * time.Hour,
			Configs:       map[string]string{"segment.bytes": "1048576"},
		}))
	topology.Process(topology.Source(b, "in", serde.String(), serde.String()),
		processor.Func(func(processor.Context[string, string], processor.Record[string, string]) error { return nil }),
		[]string{"ttl"})
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	addrs := cluster(t, kfake.SeedTopics(2, "in"))
	app := newApp(t, top, addrs, "settings")
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- app.Run(ctx) }()

	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	const topic = "settings-ttl-changelog"
	var configs map[string]string
	for configs == nil {
		select {
		case err := <-errc:
			t.Fatalf("Run returned before the changelog was created: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		rc, err := adm.DescribeTopicConfigs(context.Background(), topic)
		if err != nil {
			continue
		}
		if c, err := rc.On(topic, nil); err == nil && c.Err == nil {
			configs = map[string]string{}
			for _, kv := range c.Configs {
				configs[kv.Key] = kv.MaybeValue()
			}
		}
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"cleanup.policy":         "compact,delete",
		"retention.ms":           "7200000",
		"segment.bytes":          "1048576",
		"message.timestamp.type": "CreateTime",
	} {
		if got := configs[k]; got != want {
			t.Errorf("%s of %s = %q, want %q", k, topic, got, want)
		}
	}
}

// recordingSupplier is a supplier of the user's: in-memory backends, with
// the directories the engine opened them in.
type recordingSupplier struct {
	state.BackendSupplier
	opened chan string
}

func (s *recordingSupplier) Name() string { return "recording" }

func (s *recordingSupplier) Open(dir string, log *slog.Logger) (state.Backend, error) {
	select {
	case s.opened <- dir:
	default: // reopened more often than the test reads: it has what it needs
	}
	return s.BackendSupplier.Open(dir, log)
}

// TestUserSupplierOpensTheStores runs an application whose store has a
// supplier of the user's, and checks that the engine opens every task's
// store through it, in the task's own directory.
func TestUserSupplierOpensTheStores(t *testing.T) {
	sup := &recordingSupplier{BackendSupplier: state.InMemory(), opened: make(chan string, 16)}
	b := topology.NewBuilder()
	topology.AddKeyValueStore(b, "mine", serde.String(), serde.String(), topology.WithBackend(sup))
	topology.Process(topology.Source(b, "in", serde.String(), serde.String()),
		processor.Func(func(processor.Context[string, string], processor.Record[string, string]) error { return nil }),
		[]string{"mine"})
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	addrs := cluster(t, kfake.SeedTopics(2, "in"))
	stateDir := t.TempDir()
	app := newApp(t, top, addrs, "user-supplier", eddy.StateDir(stateDir))
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- app.Run(ctx) }()

	got := map[string]bool{}
	timeout := time.After(30 * time.Second)
	for len(got) < 2 {
		select {
		case dir := <-sup.opened:
			got[dir] = true
		case err := <-errc:
			t.Fatalf("Run returned before both stores opened: %v", err)
		case <-timeout:
			cancel()
			t.Fatalf("after 30 s the supplier opened %v, want the stores of tasks 0_0 and 0_1", got)
		}
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	for _, task := range []string{"0_0", "0_1"} {
		if dir := filepath.Join(stateDir, "user-supplier", task, "mine"); !got[dir] {
			t.Errorf("the store of task %s was not opened through the supplier in %s; opened: %v", task, dir, got)
		}
	}
}
