package eddy_test

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// TestCoreDependencyDirection enforces the architecture: the API packages
// never import the engine, its internal packages (changelog restore and
// checkpoints, the balancer, metrics), Prometheus, the connectors or fx,
// and the core never imports Pebble (only state/pebblestore does).
func TestCoreDependencyDirection(t *testing.T) {
	forbidden := []string{
		"github.com/eddystream/eddy/internal/engine",
		"github.com/eddystream/eddy/internal/changelog",
		"github.com/eddystream/eddy/internal/rebalance",
		"github.com/eddystream/eddy/connectors",
		"github.com/eddystream/eddy/internal/metrics",
		"github.com/eddystream/eddy/eddyfx",
		"go.uber.org/fx",
		"github.com/cockroachdb/pebble",
	}
	for _, pkg := range []string{"processor", "topology", "serde", "window", "state", "changelog", "rebalance", "metrics", "internal/task", "internal/overlay", "internal/kvtree", "eddytest"} {
		out, err := exec.Command("go", "list", "-deps", "-json=ImportPath", "./"+pkg).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", pkg, err)
		}
		dec := json.NewDecoder(strings.NewReader(string(out)))
		for dec.More() {
			var p struct{ ImportPath string }
			if err := dec.Decode(&p); err != nil {
				t.Fatal(err)
			}
			for _, f := range forbidden {
				if strings.HasPrefix(p.ImportPath, f) {
					t.Errorf("%s depends on %s", pkg, p.ImportPath)
				}
			}
		}
	}
}
