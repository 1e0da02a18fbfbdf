package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddystream/eddy/e2e/chaos"
)

// aggRun is one scenario over examples/aggregates: its topics and group,
// the data set written to its input, and the instances' common flags.
type aggRun struct {
	t                    *testing.T
	app, in, pass, stats string
	cl                   *kgo.Client
	dir                  string   // instance <name> keeps its state in dir/<name>
	args                 []string // flags of every instance, before its own

	// ds is owned by the load goroutine while one runs (see startLoad).
	ds chaos.DataSet
}

// newAggRun creates the topics (partitions each) and writes records values
// over keys keys to the input before any instance starts. args are flags
// every instance gets, after the topics, the app id and -commit-interval
// 100ms.
func newAggRun(t *testing.T, partitions int32, records, keys int, args ...string) *aggRun {
	t.Helper()
	name := uniqueName(t)
	r := &aggRun{t: t, app: "agg-" + name, in: name + "-numbers", pass: name + "-pass", stats: name + "-stats",
		cl: client(t), dir: t.TempDir()}
	createTopics(t, partitions, r.in, r.pass, r.stats)
	r.args = append([]string{"-app", r.app, "-input", r.in, "-passthrough", r.pass, "-stats", r.stats,
		"-commit-interval", "100ms"}, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var err error
	if r.ds, err = chaos.Produce(ctx, r.cl, r.in, records, keys, uint64(time.Now().UnixNano())); err != nil {
		t.Fatal(err)
	}
	t.Logf("app %s, seed %d", r.app, r.ds.Seed)
	return r
}

// stateDir is the state directory of the instance called name.
func (r *aggRun) stateDir(name string) string { return filepath.Join(r.dir, name) }

// start starts an instance called name with its own state directory, its
// admin endpoints on a free port, and extra flags after the common ones.
func (r *aggRun) start(name string, extra ...string) *proc {
	r.t.Helper()
	addr := freeAddr(r.t)
	p := start(r.t, name, "aggregates", slices.Concat(r.args, []string{"-state-dir", r.stateDir(name), "-admin-addr", addr}, extra)...)
	p.admin = addr
	return p
}

// startLoad produces perRound more values of the data set every every,
// from a goroutine that owns the data set until the returned stop
// function has returned. stop ends the load, waits for the goroutine and
// returns how many values it wrote, failing the test if a produce failed.
// It is safe to call more than once; the test's cleanup calls it too.
func (r *aggRun) startLoad(perRound int, every time.Duration) (stop func() int64) {
	// stop ends the load between rounds: a round cut off in the middle of
	// its produce would leave the data set unsure of what the topic holds
	// (chaos.ErrDataSetBroken), which failed tests that had done nothing
	// wrong. A round gets a minute.
	quit := make(chan struct{})
	var (
		wg      sync.WaitGroup
		prodErr error
		written int64
	)
	before := r.ds.Records()
	wg.Go(func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			err := r.ds.ProduceMore(ctx, r.cl, perRound)
			cancel()
			if err != nil {
				prodErr = err
				return
			}
			select {
			case <-quit:
				return
			case <-tick.C:
			}
		}
	})
	var once sync.Once
	stop = func() int64 {
		once.Do(func() {
			close(quit)
			wg.Wait()
			written = r.ds.Records() - before
			if prodErr != nil {
				r.t.Errorf("producing the steady load: %v", prodErr)
			}
		})
		return written
	}
	r.t.Cleanup(func() { stop() })
	return stop
}

// verify waits until the input is consumed, then checks the outputs with
// the chaos verifier: nothing lost, and with exactlyOnce nothing
// duplicated and every aggregate exact. Stop the instances first for a
// stable verdict (at least stop the load).
func (r *aggRun) verify(exactlyOnce bool) chaos.Report {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep, err := chaos.Verify(ctx, brokers, r.ds, r.pass, r.stats)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Logf("verdict:\n%s", rep)
	if rep.Missing != 0 || !rep.NothingLost() {
		r.t.Fatalf("input was lost: see the verdict above")
	}
	if exactlyOnce && !rep.ExactlyOnce() {
		r.t.Fatalf("exactly-once violated: see the verdict above")
	}
	if rep.Verified != r.ds.Records() || rep.Unexpected != 0 {
		r.t.Errorf("verified %d of %d inputs, %d unexpected records; want all, and none", rep.Verified, r.ds.Records(), rep.Unexpected)
	}
	return rep
}

// waitConsumed waits until the group has committed the end of the input.
func (r *aggRun) waitConsumed(d time.Duration) {
	r.t.Helper()
	waitConsumed(r.t, r.app, d, r.in)
}

// endOffsets lists the high watermark of every partition of topic.
func endOffsets(t *testing.T, adm *kadm.Client, topic string) map[int32]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = l.Error()
	}
	if err != nil {
		t.Fatalf("list end offsets of %s: %v", topic, err)
	}
	out := map[int32]int64{}
	l.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out
}

func sumOffsets(m map[int32]int64) int64 {
	var n int64
	for _, o := range m {
		n += o
	}
	return n
}

// taskLogRE matches the log lines that change a worker's active tasks.
var taskLogRE = regexp.MustCompile(`msg="tasks (assigned|revoked|lost)[^"]*".*? tasks="?\[([^\]]*)\]`)

// activeTasks replays the process's "tasks assigned/revoked/lost" log
// lines and returns the active tasks it holds now, as task ids ("0_3").
func (p *proc) activeTasks() map[string]bool {
	held := map[string]bool{}
	for _, m := range taskLogRE.FindAllStringSubmatch(p.out.String(), -1) {
		for _, id := range strings.Fields(m[2]) {
			held[id] = m[1] == "assigned"
		}
	}
	for id, ok := range held {
		if !ok {
			delete(held, id)
		}
	}
	return held
}

// since returns what the process logged after the first n bytes of its
// output.
func (p *proc) since(n int) string {
	s := p.out.String()
	if n > len(s) {
		return ""
	}
	return s[n:]
}

// logLen is the length of the process's output so far, for since.
func (p *proc) logLen() int { return len(p.out.String()) }

// describeRunning says how many tasks each process runs, for failures.
func describeRunning(ps ...*proc) string {
	var parts []string
	for _, p := range ps {
		parts = append(parts, fmt.Sprintf("%s runs %d", p.name, p.runningTasks()))
	}
	return strings.Join(parts, ", ")
}
