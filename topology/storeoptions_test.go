package topology_test

import (
	"strings"
	"testing"
	"time"

	"github.com/eddystream/eddy/internal/task"
	"github.com/eddystream/eddy/processor"
	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/state"
	"github.com/eddystream/eddy/topology"
)

// storeSpec builds a topology with one store declared with opts and
// returns the store's runtime spec.
func storeSpec(t *testing.T, opts ...topology.StoreOption) task.StoreSpec {
	t.Helper()
	top, err := buildWithStore(opts...)
	if err != nil {
		t.Fatal(err)
	}
	specs := task.SpecsOf(top, "app")
	if len(specs) != 1 || len(specs[0].Stores) != 1 {
		t.Fatalf("got %d sub-topologies, want 1 with one store", len(specs))
	}
	return specs[0].Stores[0]
}

func buildWithStore(opts ...topology.StoreOption) (*topology.Topology, error) {
	b := topology.NewBuilder()
	topology.AddKeyValueStore(b, "s", serde.String(), serde.String(), opts...)
	in := topology.Source(b, "in", serde.String(), serde.String())
	topology.Process(in, processor.Func(func(processor.Context[string, string], processor.Record[string, string]) error { return nil }), []string{"s"})
	return b.Build()
}

// otherSupplier is a supplier of the test's own.
type otherSupplier struct{ state.BackendSupplier }

func TestStoreBackendOptions(t *testing.T) {
	mine := otherSupplier{state.InMemory()}
	tests := []struct {
		name string
		opts []topology.StoreOption
		want state.BackendSupplier
	}{
		{"default", nil, nil},
		{"InMemory", []topology.StoreOption{topology.InMemory()}, state.InMemory()},
		{"WithBackend", []topology.StoreOption{topology.WithBackend(mine)}, mine},
		{"last wins", []topology.StoreOption{topology.WithBackend(mine), topology.InMemory()}, state.InMemory()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := storeSpec(t, tt.opts...)
			if s.Supplier != tt.want {
				t.Errorf("Supplier = %#v, want %#v", s.Supplier, tt.want)
			}
			if s.Kind != state.KindKeyValue {
				t.Errorf("Kind = %v, want key-value", s.Kind)
			}
		})
	}
}

func TestWithBackendNil(t *testing.T) {
	_, err := buildWithStore(topology.WithBackend(nil))
	if err == nil || !strings.Contains(err.Error(), "WithBackend: the supplier is nil") {
		t.Errorf("Build = %v, want an error about the nil supplier", err)
	}
}

func TestStoreChangelogOptions(t *testing.T) {
	extra := map[string]string{"segment.ms": "1000"}
	cfg := state.ChangelogConfig{CleanupPolicy: "compact,delete", Retention: time.Hour, Configs: extra}
	s := storeSpec(t, topology.WithChangelogConfig(cfg), topology.WithCaching(true))
	extra["segment.ms"] = "changed after the option"
	if s.ChangelogTopic != "app-s-changelog" {
		t.Errorf("ChangelogTopic = %q", s.ChangelogTopic)
	}
	if s.Changelog.CleanupPolicy != "compact,delete" || s.Changelog.Retention != cfg.Retention || s.Changelog.Configs["segment.ms"] != "1000" {
		t.Errorf("Changelog = %+v, want %+v with segment.ms 1000", s.Changelog, cfg)
	}
	if !s.Cached {
		t.Error("Cached is false after WithCaching(true)")
	}

	s = storeSpec(t)
	if s.Cached || s.Changelog.CleanupPolicy != "" || s.Changelog.Configs != nil {
		t.Errorf("defaults: Cached %v, Changelog %+v; want false and the zero config", s.Cached, s.Changelog)
	}
	if s = storeSpec(t, topology.WithoutLogging()); s.ChangelogTopic != "" {
		t.Errorf("WithoutLogging: ChangelogTopic = %q, want none", s.ChangelogTopic)
	}
}

func TestStoreChangelogOptionErrors(t *testing.T) {
	tests := []struct {
		name string
		opts []topology.StoreOption
		want string
	}{
		{"delete alone", []topology.StoreOption{topology.WithChangelogConfig(state.ChangelogConfig{CleanupPolicy: "delete"})}, `node "s": state: changelog of a key-value store: cleanup policy "delete"`},
		{"without logging", []topology.StoreOption{topology.WithoutLogging(), topology.WithChangelogConfig(state.ChangelogConfig{})}, "contradict each other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := buildWithStore(tt.opts...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Build = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
