package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// requireAllReplicas sets min.insync.replicas to 3 on the run's output
// topics (3 replicas each): with one node down, the brokers reject every
// write to them with NOT_ENOUGH_REPLICAS, while the other topics (min ISR
// 2) take writes. Kafka 4 caps the effective min ISR at the replication
// factor (KIP-966), so raising it above the replicas of a single broker's
// topics rejects nothing: the stall needs a cluster that lost a node.
func (r *faultRun) requireAllReplicas() {
	r.t.Helper()
	three := "3"
	ctx, cancel := ctx30()
	defer cancel()
	resp, err := r.adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "min.insync.replicas", Value: &three}}, r.pass, r.stats)
	if err == nil {
		for _, x := range resp {
			if x.Err != nil {
				err = x.Err
			}
		}
	}
	if err != nil {
		r.t.Fatalf("raise min.insync.replicas of the outputs: %v", err)
	}
}

// notGroupCoordinator returns a node that does not coordinate the run's
// group, so that killing it stalls only the writes.
func (r *faultRun) notGroupCoordinator() int32 {
	r.t.Helper()
	ctx, cancel := ctx30()
	defer cancel()
	gc := r.adm.FindGroupCoordinators(ctx, r.app)[r.app]
	if gc.Err != nil {
		r.t.Fatalf("find the group coordinator: %v", gc.Err)
	}
	for id := int32(1); id <= int32(r.c.Size()); id++ {
		if id != gc.NodeID {
			return id
		}
	}
	r.t.Fatal("no node besides the group coordinator")
	return 0
}

// TestProduceRejectionStall: a broker node dies while the output topics
// require all 3 replicas in sync, so every write to them is rejected with
// NOT_ENOUGH_REPLICAS (the field case: 330 s of that left an instance
// frozen in a flush, silent, healthy and deaf to SIGTERM).
//
// recovers: the instances keep running; each warns about its failed
// commit attempts with the cause; /readyz is 503 and names it;
// eddy_commit_stalled_seconds grows and so does the consumer lag (listed
// from the brokers); once the node is back, output resumes and every input
// comes out exactly once.
//
// task-timeout: with a 30 s task timeout, the instances instead exit with
// an error naming the cause; new instances, once the node is back, lose
// nothing.
func TestProduceRejectionStall(t *testing.T) {
	t.Run("recovers", func(t *testing.T) {
		r := newFaultRun(t, 3)
		r.requireAllReplicas()
		r.startInstances(2, "-admin-addr", "127.0.0.1:0")
		stop := r.produce()
		defer stop()
		r.runSteadily()
		node := r.notGroupCoordinator()
		killed := r.kill(node)

		p := r.ps[0]
		var why string
		waitUntil(t, faultGiveUp, "/readyz to report the stall", func() bool {
			code, body, _ := p.get("/readyz")
			why = body
			return code == http.StatusServiceUnavailable && strings.Contains(body, "NOT_ENOUGH_REPLICAS")
		}, func() string { return why + "\n" + tail(p.out.String(), 20) })
		reported := time.Since(killed)
		if code := p.status("/healthz"); code != http.StatusOK {
			t.Errorf("/healthz = %d during a stall the instance will recover from, want 200", code)
		}
		var lag1, stalled float64
		waitUntil(t, 30*time.Second, "the lag and stall metrics", func() bool {
			ms := p.mustScrape()
			lag1, _ = ms.sum("eddy_consumer_lag_records")
			stalled, _ = ms.sum("eddy_commit_stalled_seconds")
			return lag1 > 0 && stalled > 0
		}, func() string { return tail(p.out.String(), 20) })
		var lag2 float64
		waitUntil(t, 30*time.Second, "the lag to grow", func() bool {
			lag2, _ = p.mustScrape().sum("eddy_consumer_lag_records")
			return lag2 > lag1
		}, func() string { return tail(p.out.String(), 20) })
		if !strings.Contains(p.out.String(), "commit attempt failed") || !strings.Contains(p.out.String(), "NOT_ENOUGH_REPLICAS") {
			t.Errorf("no warning naming the cause of the failed commits:\n%s", tail(p.out.String(), 20))
		}
		r.checkAlive()

		ctx, cancel := ctx30()
		defer cancel()
		if err := r.c.Restart(ctx, node); err != nil {
			t.Fatal(err)
		}
		back := time.Now()
		mark := r.firstValueAfter(back)
		_, all := r.waitOutput(mark, fmt.Sprintf("after node %d came back", node))
		if err := stop(); err != nil {
			t.Fatalf("producing the input: %v", err)
		}
		attempts := strings.Count(p.out.String(), "commit attempt failed")
		rep := r.finish()
		t.Logf("node %d down %v (writes to the outputs rejected): /readyz 503 naming NOT_ENOUGH_REPLICAS %v after the kill, lag %v then %v records, %d failed attempts logged by instance-0; output on every partition %v after the node was back\n%s",
			node, back.Sub(killed).Round(100*time.Millisecond), reported.Round(100*time.Millisecond), lag1, lag2, attempts, all.Sub(back).Round(100*time.Millisecond), rep)
		if !rep.ExactlyOnce() {
			t.Fatalf("exactly-once violated: %d inputs, %d verified, %d missing, %d duplicated, %d wrong aggregates",
				rep.Inputs, rep.Verified, rep.Missing, rep.Duplicated, rep.WrongAggregates)
		}
	})

	t.Run("task-timeout", func(t *testing.T) {
		r := newFaultRun(t, 3)
		r.requireAllReplicas()
		// 30 s: the kill moves partition leaders, and a first attempt can
		// spend its ~13 s of record retries on that move and the next
		// wait on the coordinator's abort; with 15 s, an instance could
		// time out before any write had met NOT_ENOUGH_REPLICAS to name
		// (1 run in 2 on a quiet machine).
		r.startInstances(2, "-task-timeout", "30s")
		stop := r.produce()
		defer stop()
		r.runSteadily()
		node := r.notGroupCoordinator()
		killed := r.kill(node)
		for _, p := range r.ps {
			select {
			case <-p.done:
			case <-time.After(faultGiveUp):
				r.failStuck(fmt.Sprintf("%s did not fail within %v of the kill (task timeout 30s)", p.name, faultGiveUp))
			}
			err, out := p.err, p.out.String()
			if err == nil || !strings.Contains(out, "longer than the task timeout") {
				t.Fatalf("%s: exit %v, want a failure naming the task timeout:\n%s", p.name, err, tail(out, 30))
			}
			t.Logf("%s failed %v after the kill: %s", p.name, time.Since(killed).Round(100*time.Millisecond), lastLine(out))
		}
		// The node's death also moves partition leaders, so a commit may
		// first fail on a write that ran out of retries during the move;
		// the writes to the outputs fail for want of in-sync replicas,
		// and the instances say so.
		var all string
		for _, p := range r.ps {
			all += p.out.String()
		}
		if !strings.Contains(all, "NOT_ENOUGH_REPLICAS") {
			t.Errorf("no instance named NOT_ENOUGH_REPLICAS as a cause")
		}
		ctx, cancel := ctx30()
		defer cancel()
		if err := r.c.Restart(ctx, node); err != nil {
			t.Fatal(err)
		}
		r.ps = nil
		r.startInstances(2)
		mark := r.firstValueAfter(time.Now())
		r.waitOutput(mark, "after new instances started")
		if err := stop(); err != nil {
			t.Fatalf("producing the input: %v", err)
		}
		rep := r.finish()
		t.Logf("after the failure, new instances: %s", rep)
		if !rep.ExactlyOnce() {
			t.Fatalf("exactly-once violated: %d inputs, %d verified, %d missing, %d duplicated, %d wrong aggregates",
				rep.Inputs, rep.Verified, rep.Missing, rep.Duplicated, rep.WrongAggregates)
		}
	})
}
