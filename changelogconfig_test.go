package eddy_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

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
