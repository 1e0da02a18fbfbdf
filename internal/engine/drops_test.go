package engine

import (
	"testing"

	"github.com/eddystream/eddy/internal/metrics"
	"github.com/eddystream/eddy/internal/task"
)

// The task core and package metrics name the drop reasons separately (the
// core may not import metrics); the label values must stay the same.
func TestDropReasonsMapToTheMetricLabels(t *testing.T) {
	for r, want := range map[task.DropReason]metrics.DropReason{
		task.DropNullKey:   metrics.DropNullKey,
		task.DropNullValue: metrics.DropNullValue,
	} {
		if got := dropReason(r); got != want {
			t.Errorf("dropReason(%q) = %q, want %q", r, got, want)
		}
	}
}
