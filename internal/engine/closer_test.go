package engine

import (
	"log/slog"
	"testing"
	"time"

	"github.com/eddystream/eddy/processor"
)

// TestCloserWaitIsBounded: a close that does not finish (a disk that
// does not answer) makes waitFor give up after its bound, so Run still
// returns; once the close finishes, waitFor reports it.
func TestCloserWaitIsBounded(t *testing.T) {
	e := storeEngine(t)
	c := &closer{log: slog.New(slog.DiscardHandler)}
	ts, err := e.openTaskStores(processor.TaskID{Subtopology: 0, Partition: 0}, c.log, 0)
	if err != nil {
		t.Fatal(err)
	}
	stuck := make(chan struct{})
	c.close(ts, func() error { <-stuck; return nil }, false)
	if c.waitFor(50 * time.Millisecond) {
		t.Fatal("waitFor reported a stuck close as finished")
	}
	close(stuck)
	if !c.waitFor(10 * time.Second) {
		t.Fatal("waitFor did not see the close finish")
	}
}
