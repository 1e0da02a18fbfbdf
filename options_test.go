package eddy

import (
	"testing"
	"time"

	"github.com/eddystream/eddy/internal/settings"
	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/topology"
)

// A zero that an option gives reaches the settings the engine and the
// assignor read (New hands its config's Settings to the engine as they
// are), and an option not given leaves its default.
func TestZeroOptionsReachTheEngine(t *testing.T) {
	b := topology.NewBuilder()
	topology.Source(b, "in", serde.String(), serde.String()).To("out")
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	app, err := New(top, ApplicationID("a"), ProcessingGuarantee(ExactlyOnce),
		AcceptableRecoveryLag(0), MaxWarmupReplicas(0), NumStandbyReplicas(0), CommitInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	got := app.cfg.Settings
	if got.AcceptableRecoveryLag != 0 || got.MaxWarmupReplicas != 0 || got.NumStandbyReplicas != 0 || got.CommitInterval != 0 {
		t.Fatalf("zeros did not reach the settings: %+v", got.Assignor)
	}
	if got.ProbingRebalanceInterval != settings.DefaultProbingRebalanceInterval || !got.ExactlyOnce {
		t.Fatalf("settings %+v", got)
	}

	app, err = New(top, ApplicationID("a"), ProcessingGuarantee(ExactlyOnce), SessionTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	got = app.cfg.Settings
	want := settings.Assignor{
		AcceptableRecoveryLag:    10_000,
		MaxWarmupReplicas:        2,
		ProbingRebalanceInterval: 10 * time.Minute,
	}
	if got.Assignor != want {
		t.Fatalf("default assignor settings %+v, want %+v", got.Assignor, want)
	}
	if got.CommitInterval != 100*time.Millisecond || got.HeartbeatInterval != 2*time.Second/3 ||
		got.TaskTimeout != 5*time.Minute || got.ShutdownTimeout != 30*time.Second || got.ReplicationFactor != -1 || got.Workers != 1 {
		t.Fatalf("defaults %+v", got)
	}
}
