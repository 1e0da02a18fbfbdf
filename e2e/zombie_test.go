//go:build unix

// The test freezes a process with SIGSTOP, which Windows does not have.

package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eddystream/eddy/e2e/chaos"
)

// TestZombieIsFenced freezes an exactly-once instance with SIGSTOP while it
// owns tasks and has input to process, keeps it frozen past its session
// timeout so the group moves its tasks to the others, then resumes it. The
// resumed zombie's late work must not be committed: every input exactly
// once, every aggregate exact.
func TestZombieIsFenced(t *testing.T) {
	name := uniqueName(t)
	app, in, pass, stats := "agg-"+name, name+"-numbers", name+"-pass", name+"-stats"
	createTopics(t, 6, in, pass, stats)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cl := client(t)
	ds, err := chaos.Produce(ctx, cl, in, 20_000, 200, uint64(time.Now().UnixNano()))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var ps []*proc
	for i := range 3 {
		ps = append(ps, start(t, fmt.Sprintf("instance-%d", i), "aggregates", "-app", app, "-input", in, "-passthrough", pass, "-stats", stats,
			"-state-dir", filepath.Join(dir, fmt.Sprint(i)), "-guarantee", "exactly-once", "-commit-interval", "100ms", "-session-timeout", "6s"))
	}
	for _, p := range ps {
		p.waitFor(`msg="task restored and running"`, 1, 60*time.Second)
	}
	zombie := ps[1]
	// Freeze it right after giving it work, so it holds records it has
	// fetched or processed but not committed.
	if err := ds.ProduceMore(ctx, cl, 20_000); err != nil {
		t.Fatal(err)
	}
	if err := zombie.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	frozen := time.Now()
	// Past the session timeout (6 s) and the transaction timeout (10 s):
	// the group moves its tasks, and the coordinator aborts its open
	// transaction.
	time.Sleep(13 * time.Second)
	if err := ds.ProduceMore(ctx, cl, 20_000); err != nil {
		t.Fatal(err)
	}
	if err := zombie.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	t.Logf("zombie frozen for %v", time.Since(frozen).Round(time.Millisecond))
	if err := ds.ProduceMore(ctx, cl, 10_000); err != nil {
		t.Fatal(err)
	}
	if err := chaos.WaitConsumed(ctx, cl, app, in); err != nil {
		t.Fatal(err)
	}
	// Let the zombie find out it was fenced or rejoin, then stop everyone.
	time.Sleep(3 * time.Second)
	// The resumed zombie learns it lost its tasks, aborts what it held and
	// rejoins: it must be as healthy as the others.
	for _, p := range ps {
		p.stop()
	}
	r, err := chaos.Verify(ctx, brokers, ds, pass, stats)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("zombie log tail:\n%s\nverdict:\n%s", tail(zombie.out.String(), 8), r)
	if !r.ExactlyOnce() {
		t.Fatalf("the zombie's late work was committed or work was lost: %s", r)
	}
	if !strings.Contains(zombie.out.String(), "tasks lost") && !strings.Contains(zombie.out.String(), "transaction aborted") {
		t.Error("the zombie never noticed it had lost its tasks: the test did not exercise fencing")
	}
}
