package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddystream/eddy/e2e/chaos"
	"github.com/eddystream/eddy/internal/kafkabroker"
)

// Broker fault runs: examples/aggregates under exactly-once against a
// cluster of the test's own (never the suite's shared broker, which other
// tests use), with input arriving steadily while a broker dies.
const (
	faultPartitions = 6
	faultKeys       = 200
	faultInitial    = 5_000 // records before the instances start
	faultRound      = 200   // records per round of steady input
	faultRoundEvery = 200 * time.Millisecond
	// faultRoundsAfter is how many rounds of input follow the first
	// output after the fault, so that the run ends with the application
	// processing new input normally.
	faultRoundsAfter = 10
	// restartResumeWithin bounds how long output may take to resume, on
	// every partition, once a restarted broker is ready: the clients
	// reconnect (kgo backs off up to 5 s), the group settles, and the
	// next transactions commit.
	restartResumeWithin = 20 * time.Second
	// lostNodeResumeWithin bounds how long output may stall, until every
	// partition shows new output, after one of three brokers died: about
	// 9 s until the controller fences the dead node
	// (broker.session.timeout.ms) and moves its partitions and
	// coordinators, then as after a restart.
	lostNodeResumeWithin = 25 * time.Second
	// faultGiveUp is how long a test waits for output before it calls
	// the instances stuck and fails with their goroutines.
	faultGiveUp = 90 * time.Second
	// faultSteady is how long the application processes steady input
	// before the fault, committing many transactions.
	faultSteady = 5 * time.Second
)

// faultRun is one exactly-once run of examples/aggregates against a
// private cluster.
type faultRun struct {
	t     *testing.T
	c     *kafkabroker.Cluster
	addrs []string
	app   string
	in    string
	pass  string
	stats string
	cl    *kgo.Client
	adm   *kadm.Client
	ps    []*proc
	// starts holds when each of ps started, for aggInstances.logLoss.
	starts []time.Time
	// killed is when the test killed a broker.
	killed time.Time

	// ds belongs to the producer goroutine while it runs (see produce).
	ds chaos.DataSet

	mu struct {
		sync.Mutex
		rounds []inputRound
	}
}

// inputRound is one round of steady input: when its produce began, and the
// first value it wrote.
type inputRound struct {
	began time.Time
	first int64
}

// newFaultRun starts a cluster of nodes JVM brokers, creates the topics
// (replicated over up to three nodes) and writes the first input.
func newFaultRun(t *testing.T, nodes int) *faultRun {
	t.Helper()
	begin := time.Now()
	c, err := kafkabroker.StartCluster(t.Context(), nodes, kafkabroker.WithLogger(slog.New(slog.NewTextHandler(t.Output(), nil))))
	if err != nil {
		// No skip: CI has java, and a fault test that silently does not
		// run proves nothing.
		t.Fatalf("the broker fault tests run a Kafka cluster of their own and need java (Java 17+), whatever %s says: %v", kafkabroker.EnvBrokers, err)
	}
	t.Logf("%d-node cluster ready in %v", nodes, time.Since(begin).Round(100*time.Millisecond))
	r := &faultRun{t: t, c: c, addrs: c.Addrs()}
	t.Cleanup(func() {
		if t.Failed() {
			for id := int32(1); id <= int32(nodes); id++ {
				t.Logf("last lines of node %d's log:\n%s", id, c.LogTail(id, 25))
			}
		}
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	})
	name := uniqueName(t)
	r.app, r.in, r.pass, r.stats = "agg-"+name, name+"-numbers", name+"-pass", name+"-stats"
	r.cl = r.client()
	r.adm = kadm.NewClient(r.cl)
	ctx, cancel := ctx30()
	defer cancel()
	replicas := int16(min(nodes, 3))
	resp, err := r.adm.CreateTopics(ctx, faultPartitions, replicas, nil, r.in, r.pass, r.stats)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("create topics: %v", err)
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("app %s, seed %d", r.app, seed)
	if r.ds, err = chaos.Produce(ctx, r.cl, r.in, faultInitial, faultKeys, seed); err != nil {
		t.Fatal(err)
	}
	return r
}

// client returns a client of the run's cluster, closed with the test. Its
// dial timeout is short because the seeds include a node the test kills.
func (r *faultRun) client(opts ...kgo.Opt) *kgo.Client {
	r.t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(r.addrs...), kgo.DialTimeout(2 * time.Second)}, opts...)...)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(cl.Close)
	return cl
}

// startInstances starts n exactly-once instances and waits until each
// runs a task.
func (r *faultRun) startInstances(n int, extra ...string) {
	r.t.Helper()
	dir := r.t.TempDir()
	for i := range n {
		r.ps = append(r.ps, startOn(r.t, r.addrs, fmt.Sprintf("instance-%d", len(r.ps)), "aggregates",
			append([]string{"-app", r.app, "-input", r.in, "-passthrough", r.pass, "-stats", r.stats,
				"-state-dir", filepath.Join(dir, fmt.Sprint(i)), "-guarantee", "exactly-once",
				"-commit-interval", "100ms", "-session-timeout", "6s"}, extra...)...))
		r.starts = append(r.starts, time.Now())
	}
	for _, p := range r.ps {
		p.waitFor(running, 1, 60*time.Second)
	}
}

// produce writes a round of faultRound records every faultRoundEvery
// until the function it returns is called; that function waits for the
// round in progress and returns the producer's error. A round that the
// cluster cannot take blocks (the producer retries) until it can, for up
// to two minutes.
func (r *faultRun) produce() (stop func() error) {
	quit := make(chan struct{})
	var (
		wg   sync.WaitGroup
		err  error
		once sync.Once
	)
	wg.Go(func() {
		tick := time.NewTicker(faultRoundEvery)
		defer tick.Stop()
		for {
			r.mu.Lock()
			r.mu.rounds = append(r.mu.rounds, inputRound{began: time.Now(), first: r.ds.Records()})
			r.mu.Unlock()
			// Not cancelled by stop: a round cut short would leave
			// records whose fate is unknown, and Verify would refuse
			// the data set.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			err = r.ds.ProduceMore(ctx, r.cl, faultRound)
			cancel()
			if err != nil {
				return
			}
			select {
			case <-tick.C:
			case <-quit:
				return
			}
		}
	})
	return func() error {
		once.Do(func() { close(quit) })
		wg.Wait()
		return err
	}
}

// runSteadily lets the instances process steady input for faultSteady
// before a fault: it waits until the input of a round that began that
// long after now has come out.
func (r *faultRun) runSteadily() {
	r.t.Helper()
	r.waitOutput(r.firstValueAfter(time.Now().Add(faultSteady)), "before the fault: the application does not run")
}

// firstValueAfter waits for the first round of input that began after t
// and returns its first value: that value and every later one reached the
// cluster after t.
func (r *faultRun) firstValueAfter(t time.Time) int64 {
	r.t.Helper()
	deadline := time.Now().Add(faultGiveUp)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		for _, round := range r.mu.rounds {
			if round.began.After(t) {
				r.mu.Unlock()
				return round.first
			}
		}
		r.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	r.t.Fatalf("no round of input began within %v after %s: the producer is stuck", faultGiveUp, t.Format("15:04:05.000"))
	return 0
}

// waitOutput reads the passthrough topic with read_committed from the
// start until every partition has shown an input of value mark or above,
// and returns when the first and the last partition did; or it fails the
// test, with the instances' goroutines, after faultGiveUp.
func (r *faultRun) waitOutput(mark int64, what string) (first, all time.Time) {
	r.t.Helper()
	cl := r.client(kgo.ConsumeTopics(r.pass), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	ctx, cancel := context.WithTimeout(context.Background(), faultGiveUp)
	defer cancel()
	resumed := map[int32]bool{}
	for len(resumed) < faultPartitions {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			var waiting []string
			for p := range int32(faultPartitions) {
				if !resumed[p] {
					waiting = append(waiting, fmt.Sprint(p))
				}
			}
			r.failStuck(fmt.Sprintf("no input from value %d on came out of partitions %s of %s within %v %s",
				mark, strings.Join(waiting, ", "), r.pass, faultGiveUp, what))
		}
		fs.EachRecord(func(rec *kgo.Record) {
			if v, err := chaos.DecodeValue(rec.Value); err == nil && v >= mark && !resumed[rec.Partition] {
				resumed[rec.Partition] = true
				if first.IsZero() {
					first = time.Now()
				}
			}
		})
	}
	return first, time.Now()
}

// commitTimeouts returns the instances' log lines, since the kill, of
// transactions that ended because their commit ran out of time: the mark
// of a commit that waited out its deadline.
func (r *faultRun) commitTimeouts() []string {
	var out []string
	for _, p := range r.ps {
		for _, l := range lines(p.out.String()) {
			if !strings.Contains(l, "transaction aborted") || !strings.Contains(l, "deadline exceeded") {
				continue
			}
			ts, _, ok := strings.Cut(strings.TrimPrefix(l, "time="), " ")
			if at, err := time.Parse(time.RFC3339Nano, ts); ok && err == nil && at.After(r.killed) {
				out = append(out, p.name+": "+l)
			}
		}
	}
	return out
}

// checkResumed fails the test, without stopping it, if output took longer
// than bound to resume after from, saying what the instances logged about
// commits that ran out of time.
func (r *faultRun) checkResumed(what string, from, resumed time.Time, bound time.Duration) {
	r.t.Helper()
	took := resumed.Sub(from)
	if took <= bound {
		return
	}
	msg := fmt.Sprintf("output resumed on every partition %v after %s, want within %v", took.Round(10*time.Millisecond), what, bound)
	if timeouts := r.commitTimeouts(); len(timeouts) > 0 {
		msg += "; meanwhile commits waited out their deadline:\n" + strings.Join(timeouts, "\n")
	}
	r.t.Error(msg)
}

// kill kills broker node id with SIGKILL and returns when.
func (r *faultRun) kill(id int32) time.Time {
	r.t.Helper()
	if err := r.c.Kill(id); err != nil {
		r.t.Fatal(err)
	}
	r.killed = time.Now()
	return r.killed
}

// failStuck fails the test with what each instance was doing: its last
// log lines and, from SIGQUIT, its goroutines in eddy's code.
func (r *faultRun) failStuck(what string) {
	r.t.Helper()
	var b strings.Builder
	for _, p := range r.ps {
		select {
		case <-p.done:
			fmt.Fprintf(&b, "\n%s had exited (%v):\n%s\n", p.name, p.err, tail(p.out.String(), 30))
			continue
		default:
		}
		logs := tail(p.out.String(), 30)
		p.cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			p.kill()
		}
		fmt.Fprintf(&b, "\n%s, last log lines:\n%s\n%s goroutines in eddy:\n%s\n", p.name, logs, p.name, eddyStacks(p.out.String()))
	}
	r.t.Fatalf("%s%s", what, b.String())
}

// checkAlive fails the test for every instance that has exited: a broker
// fault must not end an instance.
func (r *faultRun) checkAlive() {
	r.t.Helper()
	for _, p := range r.ps {
		select {
		case <-p.done:
			r.t.Errorf("%s exited during the broker fault (%v):\n%s", p.name, p.err, tail(p.out.String(), 40))
		default:
		}
	}
}

// finish waits until the group has consumed the input, checks that every
// instance still runs, stops them, and verifies the outputs against the
// input: every input exactly once, every aggregate exact.
func (r *faultRun) finish() chaos.Report {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := chaos.WaitConsumed(ctx, r.cl, r.app, r.in); err != nil {
		r.checkAlive()
		r.failStuck(err.Error())
	}
	r.checkAlive()
	(&aggInstances{t: r.t, current: r.ps}).stopAll()
	rep, err := chaos.Verify(ctx, r.addrs, r.ds, r.pass, r.stats)
	if err != nil {
		r.t.Fatal(err)
	}
	if !rep.ExactlyOnce() {
		(&aggInstances{t: r.t, all: r.ps, starts: r.starts}).logLoss()
	}
	return rep
}

// TestExactlyOnceSurvivesBrokerRestart kills the only broker with SIGKILL
// while two exactly-once instances process steady input, and restarts it
// on its log directory. The instances must carry on by themselves: output
// of new input resumes on every partition within restartResumeWithin of
// the broker's return, no instance exits, and every input comes out
// exactly once with every aggregate exact.
func TestExactlyOnceSurvivesBrokerRestart(t *testing.T) {
	r := newFaultRun(t, 1)
	r.startInstances(2)
	stop := r.produce()
	defer stop()
	r.runSteadily()

	killed := r.kill(1)
	if err := r.c.Restart(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	ready := time.Now()
	mark := r.firstValueAfter(ready)
	first, all := r.waitOutput(mark, "after the broker came back")
	for range faultRoundsAfter {
		r.firstValueAfter(time.Now())
	}
	if err := stop(); err != nil {
		t.Fatalf("producing the input: %v", err)
	}
	rep := r.finish()
	t.Logf("broker down %v (kill to ready); output of input written after it was ready came %v after ready on the first partition, %v on all %d\n%s",
		ready.Sub(killed).Round(10*time.Millisecond), first.Sub(ready).Round(10*time.Millisecond), all.Sub(ready).Round(10*time.Millisecond), faultPartitions, rep)
	r.checkResumed("the broker was ready", ready, all, restartResumeWithin)
	if !rep.ExactlyOnce() {
		t.Fatalf("exactly-once violated across the broker restart: %d inputs, %d verified, %d missing, %d duplicated, %d wrong aggregates",
			rep.Inputs, rep.Verified, rep.Missing, rep.Duplicated, rep.WrongAggregates)
	}
}

// TestExactlyOnceSurvivesLosingTheGroupCoordinator runs two exactly-once
// instances against three brokers (topics with three replicas, two in
// sync) and kills, for good, the broker that coordinates the
// application's consumer group. Processing must go on with the other two:
// output of new input resumes on every partition within
// lostNodeResumeWithin of the kill, no instance exits, and every input
// comes out exactly once with every aggregate exact.
func TestExactlyOnceSurvivesLosingTheGroupCoordinator(t *testing.T) {
	r := newFaultRun(t, 3)
	r.startInstances(2)
	stop := r.produce()
	defer stop()
	r.runSteadily()

	ctx, cancel := ctx30()
	defer cancel()
	coordinators := r.adm.FindGroupCoordinators(ctx, r.app)
	gc, ok := coordinators[r.app]
	if !ok || gc.Err != nil {
		t.Fatalf("find the coordinator of group %s: %v (%v)", r.app, gc.Err, coordinators)
	}
	described, err := r.adm.DescribeGroups(ctx, r.app)
	if err != nil {
		t.Fatal(err)
	}
	group := described[r.app]
	if group.Coordinator.NodeID != gc.NodeID {
		t.Fatalf("FindCoordinator says node %d coordinates %s, DescribeGroups says %d", gc.NodeID, r.app, group.Coordinator.NodeID)
	}
	t.Logf("group %s (%s, %d members) is coordinated by node %d; transaction coordinators: %s",
		r.app, group.State, len(group.Members), gc.NodeID, r.txnCoordinators(ctx))

	killed := r.kill(gc.NodeID)
	mark := r.firstValueAfter(killed)
	first, all := r.waitOutput(mark, fmt.Sprintf("after node %d, the group coordinator, died", gc.NodeID))
	for range faultRoundsAfter {
		r.firstValueAfter(time.Now())
	}
	if err := stop(); err != nil {
		t.Fatalf("producing the input: %v", err)
	}
	// The coordinator moved to a live node (asking may take a few tries:
	// the client may send FindCoordinator to the dead node first).
	var now kadm.FindCoordinatorResponse
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		now = r.adm.FindGroupCoordinators(ctx, r.app)[r.app]
		cancel()
		if now.Err == nil {
			break
		}
	}
	if now.Err != nil || now.NodeID == gc.NodeID {
		t.Errorf("after the kill the group's coordinator is node %d (err %v), want a live one, not %d", now.NodeID, now.Err, gc.NodeID)
	}
	rep := r.finish()
	t.Logf("group coordinator (node %d) killed; output of input written after the kill came %v later on the first partition, %v on all %d (stall)\n%s",
		gc.NodeID, first.Sub(killed).Round(10*time.Millisecond), all.Sub(killed).Round(10*time.Millisecond), faultPartitions, rep)
	r.checkResumed(fmt.Sprintf("node %d died", gc.NodeID), killed, all, lostNodeResumeWithin)
	if !rep.ExactlyOnce() {
		t.Fatalf("exactly-once violated with a broker lost: %d inputs, %d verified, %d missing, %d duplicated, %d wrong aggregates",
			rep.Inputs, rep.Verified, rep.Missing, rep.Duplicated, rep.WrongAggregates)
	}
}

// txnCoordinators lists the transactional ids of the run's application
// with the node that coordinates each, for the log.
func (r *faultRun) txnCoordinators(ctx context.Context) string {
	listed, err := r.adm.ListTransactions(ctx, nil, nil)
	if err != nil {
		return fmt.Sprintf("(cannot list them: %v)", err)
	}
	var out []string
	for _, tx := range listed.Sorted() {
		if strings.HasPrefix(tx.TxnID, r.app) {
			out = append(out, fmt.Sprintf("%s on node %d", tx.TxnID, tx.Coordinator))
		}
	}
	if len(out) == 0 {
		return "(none listed)"
	}
	return strings.Join(out, ", ")
}
