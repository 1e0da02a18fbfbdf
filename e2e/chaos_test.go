package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/eddystream/eddy/e2e/chaos"
)

// The CI-sized chaos run: about 30 s of kills per test, under a minute in
// all. The long run is e2e/cmd/chaos.
const (
	chaosPartitions = 6
	chaosRecords    = 100_000 // half before the instances start, half during the kills
	chaosKeys       = 1_000
	chaosInstances  = 3
	chaosKillEvery  = 3 * time.Second
	chaosMinKills   = 10
	// chaosRounds rounds of the second half are produced chaosRoundEvery
	// apart, so that input keeps arriving while instances die.
	chaosRounds     = 25
	chaosRoundEvery = time.Second
)

// aggInstances runs the instances of examples/aggregates that a chaos test
// kills; it is the test's chaos.Controller. KillLoop calls it from the test
// goroutine, so start may fail the test.
type aggInstances struct {
	t    *testing.T
	args []string // arguments of every instance but -state-dir
	dir  string   // instance i keeps its state in dir/i
	wipe bool     // wipe an instance's state directory before restarting it

	current   []*proc
	all       []*proc     // every incarnation, for the logs
	starts    []time.Time // when each of all started
	selfExits []string    // instances that had exited before they were killed

	kills    int
	produced <-chan struct{} // closed once all input is written
	enough   func()          // ends the chaos; called once kills >= chaosMinKills and produced is closed
}

func (a *aggInstances) Instances() int { return len(a.current) }

func (a *aggInstances) stateDir(i int) string { return filepath.Join(a.dir, fmt.Sprint(i)) }

func (a *aggInstances) start(i int) {
	name := fmt.Sprintf("instance-%d#%d", i, len(a.all))
	p := start(a.t, name, "aggregates", slices.Concat(a.args, []string{"-state-dir", a.stateDir(i)})...)
	a.all = append(a.all, p)
	a.starts = append(a.starts, time.Now())
	if i < len(a.current) {
		a.current[i] = p
	} else {
		a.current = append(a.current, p)
	}
}

// Kill kills instance i with SIGKILL, noting whether it had died by itself
// already: nothing but the chaos loop should end an instance.
func (a *aggInstances) Kill(i int) error {
	p := a.current[i]
	select {
	case <-p.done:
		a.selfExits = append(a.selfExits, fmt.Sprintf("%s exited by itself (%v):\n%s", p.name, p.err, tail(p.out.String(), 20)))
	default:
		p.kill()
	}
	a.kills++
	return nil
}

// Restart starts instance i again with the same state directory, or with
// an empty one when wipe is set.
func (a *aggInstances) Restart(i int) error {
	if a.wipe {
		if err := os.RemoveAll(a.stateDir(i)); err != nil {
			return fmt.Errorf("wipe the state of instance %d: %w", i, err)
		}
	}
	a.start(i)
	if a.kills >= chaosMinKills {
		select {
		case <-a.produced:
			a.enough()
		default:
		}
	}
	return nil
}

// stopAll sends SIGTERM to every current instance and waits for each to
// exit with status 0. An instance still running a minute later is stuck (a
// clean stop takes well under a second): it gets SIGQUIT, so that the Go
// runtime prints its goroutines, and the test fails with the stacks of
// those that run eddy's code.
func (a *aggInstances) stopAll() {
	for _, p := range a.current {
		p.cmd.Process.Signal(syscall.SIGTERM)
	}
	deadline := time.NewTimer(time.Minute)
	defer deadline.Stop()
	expired := false
	for _, p := range a.current {
		if !expired {
			select {
			case <-p.done:
			case <-deadline.C:
				expired = true
			}
		}
		select {
		case <-p.done:
			if p.err != nil {
				a.t.Errorf("%s exited with %v after SIGTERM:\n%s", p.name, p.err, tail(p.out.String(), 40))
			}
			continue
		default:
		}
		p.cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			p.kill()
		}
		a.t.Errorf("%s did not stop within a minute of SIGTERM; its goroutines in eddy:\n%s", p.name, eddyStacks(p.out.String()))
	}
}

// eddyStacks returns the goroutines of a Go traceback (SIGQUIT's output)
// whose stacks pass through eddy's packages.
func eddyStacks(out string) string {
	var keep []string
	for _, g := range strings.Split(out, "\n\n") {
		if strings.HasPrefix(g, "goroutine ") && strings.Contains(g, "github.com/eddystream/eddy") {
			keep = append(keep, g)
		}
	}
	if len(keep) == 0 {
		return tail(out, 60)
	}
	return strings.Join(keep, "\n\n")
}

// restored sums the changelog records every incarnation restored.
func (a *aggInstances) restored() int64 {
	var n int64
	for _, p := range a.all {
		n += p.restored()
	}
	return n
}

// logLoss logs, for each incarnation, when it started and its warnings,
// errors and task moves, which is where a loss shows its cause.
func (a *aggInstances) logLoss() {
	for i, p := range a.all {
		var keep []string
		for _, l := range lines(p.out.String()) {
			if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") || strings.Contains(l, "tasks ") ||
				strings.Contains(l, running) || !strings.Contains(l, "level=") {
				keep = append(keep, l)
			}
		}
		a.t.Logf("%s, started %s:\n%s", p.name, a.starts[i].Format("15:04:05.000"), strings.Join(keep, "\n"))
	}
}

func TestChaosAtLeastOnce(t *testing.T) { runChaos(t, false, false) }

// TestChaosAtLeastOnceWipedState restarts each killed instance with an
// empty state directory, so that its tasks restore their stores in full
// from the changelog wherever they land.
func TestChaosAtLeastOnceWipedState(t *testing.T) { runChaos(t, true, false) }

// TestChaosExactlyOnce is the exactly-once system test: every input
// exactly once in the passthrough, every key's last aggregate exact, every
// window's last count exact.
func TestChaosExactlyOnce(t *testing.T) { runChaos(t, false, true) }

// TestChaosExactlyOnceWipedState is TestChaosExactlyOnce with each killed
// instance restarted on an empty state directory (so with a new
// transactional id: its zombie is fenced by the group generation).
func TestChaosExactlyOnceWipedState(t *testing.T) { runChaos(t, true, true) }

// runChaos runs three instances of examples/aggregates, with its windowed
// count, over 100,000 inputs while killing one every ~3 s, then checks the
// outputs with chaos.Verify.
func runChaos(t *testing.T, wipe, exactlyOnce bool) {
	began := time.Now()
	name := fmt.Sprintf("%s-%x", strings.ToLower(t.Name()), time.Now().UnixNano()&0xffffff)
	app, in, pass, stats := "agg-"+name, name+"-numbers", name+"-pass", name+"-stats"
	// The windowed count: 10,000 values per window, about ten inputs per
	// key and window.
	windowed := chaos.Windowed{Topic: name + "-windowed", Base: time.Now().Truncate(time.Millisecond), Size: 10 * time.Second}
	createTopics(t, chaosPartitions, in, pass, stats, windowed.Topic)
	seed := uint64(time.Now().UnixNano())
	t.Logf("app %s, seed %d", app, seed)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cl := client(t)
	ds, err := chaos.Produce(ctx, cl, in, chaosRecords/2, chaosKeys, seed)
	if err != nil {
		t.Fatal(err)
	}

	chaosCtx, endChaos := context.WithTimeout(ctx, 2*time.Minute)
	defer endChaos()
	produced := make(chan struct{})
	a := &aggInstances{
		t: t, dir: t.TempDir(), wipe: wipe, produced: produced, enough: endChaos,
		args: []string{"-app", app, "-input", in, "-passthrough", pass, "-stats", stats,
			"-windowed", windowed.Topic, "-window-base", fmt.Sprint(windowed.Base.UnixMilli()), "-window-size", windowed.Size.String(),
			"-commit-interval", "100ms", "-session-timeout", "6s"},
	}
	if exactlyOnce {
		a.args = append(a.args, "-guarantee", "exactly-once")
	}
	for i := range chaosInstances {
		a.start(i)
	}

	// The producer owns ds until wg.Wait returns; cancel stops it early if
	// the test fails first.
	var (
		wg      sync.WaitGroup
		prodErr error
	)
	defer wg.Wait()
	defer cancel()
	wg.Go(func() {
		defer close(produced)
		tick := time.NewTicker(chaosRoundEvery)
		defer tick.Stop()
		for range chaosRounds {
			if prodErr = ds.ProduceMore(ctx, cl, chaosRecords/2/chaosRounds); prodErr != nil {
				return
			}
			select {
			case <-tick.C:
			case <-ctx.Done():
				prodErr = ctx.Err()
				return
			}
		}
	})

	chaosBegan := time.Now()
	kills, err := chaos.KillLoop(chaosCtx, a, chaosKillEvery, rand.New(rand.NewPCG(seed, 1)))
	chaosTook := time.Since(chaosBegan)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if prodErr != nil {
		t.Fatalf("producing during the chaos: %v", prodErr)
	}
	if kills < chaosMinKills {
		t.Fatalf("%d kills in %v, want at least %d", kills, chaosTook.Round(time.Second), chaosMinKills)
	}
	for _, s := range a.selfExits {
		t.Errorf("an instance died without being killed: %s", s)
	}

	drainBegan := time.Now()
	waitConsumed(t, app, 3*time.Minute, in)
	drainTook := time.Since(drainBegan)
	a.stopAll()

	verifyBegan := time.Now()
	vctx, vcancel := context.WithTimeout(ctx, 2*time.Minute)
	defer vcancel()
	r, err := chaos.Verify(vctx, brokers, ds, pass, stats, chaos.WithWindowed(windowed))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d kills (wipe state: %v) in %v, %d incarnations restored %d changelog records; drained in %v; verified in %v; total %v\n%s",
		kills, wipe, chaosTook.Round(time.Millisecond), len(a.all), a.restored(), drainTook.Round(time.Millisecond),
		time.Since(verifyBegan).Round(time.Millisecond), time.Since(began).Round(time.Millisecond), r)

	// Exactly-once: every input exactly once in the passthrough and every
	// key's last aggregate exact.
	if exactlyOnce && !r.ExactlyOnce() {
		a.logLoss()
		t.Fatalf("exactly-once violated: see the report above")
	}
	// At-least-once: no input may be missing from the passthrough, and no
	// aggregate may miss an input. Duplicates are allowed, and so are
	// aggregates that count an input twice.
	if r.Missing != 0 || !r.NothingLost() {
		a.logLoss()
		t.Fatalf("LOSS under at-least-once: see the report above")
	}
	if r.Verified != chaosRecords || r.Unexpected != 0 {
		t.Errorf("verified %d of %d inputs, %d unexpected records; want all, and none", r.Verified, chaosRecords, r.Unexpected)
	}
	// A wiped instance must restore its tasks' stores in full. Without
	// wipes, a task that returns to its own instance has a checkpoint as
	// new as its last commit and may rightly restore nothing.
	if wipe && a.restored() == 0 {
		t.Error("no incarnation restored a changelog record although killed instances lost their state")
	}
}
