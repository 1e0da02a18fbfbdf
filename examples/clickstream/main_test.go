package main

import (
	"log/slog"
	"testing"

	"github.com/eddystream/eddy"
)

// The embedded quickstart computes every final per-minute count and every
// session of the sample from the definition of the windows and waits until
// the application's outputs hold exactly those: it returns nil only then.
func TestEmbeddedRunGivesTheExactResults(t *testing.T) {
	top, err := Topology(Topics{Views: "page-views", PerMin: "per-minute", Hopping: "five-minutes", Sessions: "sessions"})
	if err != nil {
		t.Fatal(err)
	}
	if err := runEmbedded(top, Topics{Views: "page-views", PerMin: "per-minute", Hopping: "five-minutes", Sessions: "sessions"},
		t.TempDir(), 0, []eddy.Option{eddy.ApplicationID("clickstream-test")}, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
}
