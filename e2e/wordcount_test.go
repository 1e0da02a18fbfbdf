package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/state/pebblestore"
)

// wcRun is one word-count scenario: its topics, its group, its data.
type wcRun struct {
	t      *testing.T
	app    string
	input  string
	output string
	want   map[string]int64
	seq    int
}

func newWordCount(t *testing.T, partitions int32) *wcRun {
	name := uniqueName(t)
	r := &wcRun{t: t, app: "wc-" + name, input: name + "-lines", output: name + "-counts", want: map[string]int64{}}
	createTopics(t, partitions, r.input, r.output)
	return r
}

var vocabulary = strings.Fields(`alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima
mike november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu
stream table task state store changelog partition offset commit restore`)

// produceLines writes n lines of random words and records the expected
// counts.
func (r *wcRun) produceLines(n int) {
	rng := rand.New(rand.NewPCG(uint64(r.seq), 42))
	recs := make([]*kgo.Record, n)
	for i := range recs {
		words := make([]string, 3+rng.IntN(8))
		for j := range words {
			words[j] = vocabulary[rng.IntN(len(vocabulary))]
			r.want[words[j]]++
		}
		recs[i] = &kgo.Record{Topic: r.input, Key: []byte(fmt.Sprint(r.seq)), Value: []byte(strings.Join(words, " "))}
		r.seq++
	}
	produce(r.t, recs)
}

func (r *wcRun) start(name, stateDir string, extra ...string) *proc {
	args := append([]string{"-app", r.app, "-input", r.input, "-output", r.output, "-state-dir", stateDir,
		"-commit-interval", "200ms", "-session-timeout", "6s"}, extra...)
	return start(r.t, name, "wordcount", args...)
}

// startInstances starts n instances, each with a state directory of its
// own under dir, and waits until every one holds tasks (so the work has
// spread before the test goes on).
func (r *wcRun) startInstances(n int, dir string, extra ...string) []*proc {
	var ps []*proc
	for i := range n {
		ps = append(ps, r.start(fmt.Sprintf("instance-%d", i), filepath.Join(dir, fmt.Sprint(i)), extra...))
	}
	for _, p := range ps {
		p.waitFor(`msg="tasks assigned"`, 1, 60*time.Second)
	}
	return ps
}

func (r *wcRun) waitConsumed() {
	waitConsumed(r.t, r.app, 90*time.Second, r.input, r.app+"-words-repartition")
}

// waitConsumedExactlyOnce is waitConsumed for an exactly-once run, whose
// repartition topic ends with a commit marker.
func (r *wcRun) waitConsumedExactlyOnce() {
	repartition := r.app + "-words-repartition"
	waitConsumedMarked(r.t, r.app, 90*time.Second, map[string]bool{repartition: true}, r.input, repartition)
}

// counts reads the output topic and keeps the last count per word.
func (r *wcRun) counts() map[string]int64 {
	got := map[string]int64{}
	for _, rec := range readAll(r.t, r.output) {
		n, err := serde.Int64().Deserialize(r.output, rec.Value)
		if err != nil {
			r.t.Fatalf("output record %s-%d@%d: %v", rec.Topic, rec.Partition, rec.Offset, err)
		}
		got[string(rec.Key)] = n
	}
	return got
}

// checkExact asserts the final counts equal the expected ones.
func (r *wcRun) checkExact() {
	r.t.Helper()
	got := r.counts()
	if len(got) != len(r.want) {
		r.t.Errorf("%d words counted, want %d", len(got), len(r.want))
	}
	for w, n := range r.want {
		if got[w] != n {
			r.t.Errorf("count[%s] = %d, want %d", w, got[w], n)
		}
	}
}

// checkExactCommitted asserts that the committed output (read_committed)
// holds exactly the expected counts, for exactly-once runs: readAll never
// reaches the end of a topic that ends with a commit marker. Call it once
// the input is consumed; it reads until the counts match or a minute
// passes.
func (r *wcRun) checkExactCommitted() {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl := client(r.t, kgo.ConsumeTopics(r.output), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	got := map[string]int64{}
	read := 0
	equal := func() bool {
		if len(got) != len(r.want) {
			return false
		}
		for w, n := range r.want {
			if got[w] != n {
				return false
			}
		}
		return true
	}
	for !equal() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		fs.EachRecord(func(rec *kgo.Record) {
			n, err := serde.Int64().Deserialize(r.output, rec.Value)
			if err != nil {
				r.t.Fatalf("output record %s-%d@%d: %v", rec.Topic, rec.Partition, rec.Offset, err)
			}
			got[string(rec.Key)] = n
			read++
		})
	}
	if equal() {
		return
	}
	wrong := 0
	for w, n := range r.want {
		if got[w] != n {
			if wrong < 10 {
				r.t.Errorf("count[%s] = %d, want %d", w, got[w], n)
			}
			wrong++
		}
	}
	var ends []string
	adm := kadm.NewClient(client(r.t))
	lctx, lcancel := ctx30()
	defer lcancel()
	hw, err1 := adm.ListEndOffsets(lctx, r.output)
	ls, err2 := adm.ListCommittedOffsets(lctx, r.output)
	hw.Each(func(o kadm.ListedOffset) {
		l, _ := ls.Lookup(o.Topic, o.Partition)
		ends = append(ends, fmt.Sprintf("%d: end %d, last stable %d", o.Partition, o.Offset, l.Offset))
	})
	r.t.Errorf("%d of %d counts wrong; %d words counted; %d records read; %s %v %v", wrong, len(r.want), len(got), read, strings.Join(ends, ", "), err1, err2)
}

// checkAtLeast asserts nothing was lost: every count is at least the
// expected one (at-least-once may count a record twice after a crash).
func (r *wcRun) checkAtLeast() (extra int64) {
	r.t.Helper()
	got := r.counts()
	for w, n := range r.want {
		if got[w] < n {
			r.t.Errorf("count[%s] = %d, want at least %d: input was lost", w, got[w], n)
		}
		extra += got[w] - n
	}
	return extra
}

func TestWordCountThreeInstances(t *testing.T) {
	r := newWordCount(t, 6)
	r.produceLines(3000)
	ps := r.startInstances(3, t.TempDir())
	r.waitConsumed()
	r.produceLines(1000) // while all three run
	r.waitConsumed()
	for _, p := range ps {
		p.stop()
	}
	r.checkExact()
}

func TestKillNineTakeover(t *testing.T) {
	r := newWordCount(t, 6)
	r.produceLines(2000)
	// Every instance holds tasks, so the victim writes changelog records
	// of its own that the survivors must restore.
	ps := r.startInstances(3, t.TempDir())
	r.waitConsumed()
	r.produceLines(2000)
	// Kill one instance while it works through the second batch, after it
	// had time (the 200 ms commit interval) to commit some of it.
	time.Sleep(time.Second)
	victim := ps[1]
	victim.kill()
	before := [2]int{strings.Count(ps[0].out.String(), `msg="tasks assigned"`), strings.Count(ps[2].out.String(), `msg="tasks assigned"`)}
	r.produceLines(1000)
	r.waitConsumed()
	after := [2]int{strings.Count(ps[0].out.String(), `msg="tasks assigned"`), strings.Count(ps[2].out.String(), `msg="tasks assigned"`)}
	if after == before {
		t.Error("no survivor was assigned the killed instance's tasks")
	}
	if ps[0].restored()+ps[2].restored() == 0 {
		t.Error("the survivors restored nothing: the moved tasks did not restore from their changelogs")
	}
	ps[0].stop()
	ps[2].stop()
	extra := r.checkAtLeast()
	t.Logf("kill -9 takeover: nothing lost; %d words counted more than once (at-least-once)", extra)
}

// storeContents reads every persistent "counts" store of app under dir.
func storeContents(t *testing.T, dir, app string) map[string]string {
	t.Helper()
	stores, err := filepath.Glob(filepath.Join(dir, app, "*", "counts"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, s := range stores {
		b, err := pebblestore.Open(s)
		if err != nil {
			t.Fatalf("open %s: %v", s, err)
		}
		it, err := b.Range(nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		for it.Next() {
			out[filepath.Base(filepath.Dir(s))+"/"+string(it.Key())] = fmt.Sprintf("%x", it.Value())
		}
		it.Close()
		b.Close()
	}
	return out
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestRestartRestoresOnlyTheChangelogTail(t *testing.T) {
	r := newWordCount(t, 3)
	dirA, dirB := t.TempDir(), t.TempDir()

	r.produceLines(1500)
	a := r.start("A", dirA)
	r.waitConsumed()
	a.stop()
	if n := a.restored(); n != 0 {
		t.Fatalf("first run restored %d records from empty changelogs", n)
	}

	// B, with a state directory of its own, takes over: it restores the
	// whole changelog, then adds to it.
	b := r.start("B", dirB)
	b.waitFor(running, 6, 60*time.Second)
	r.waitConsumed()
	full := b.restored()
	r.produceLines(500)
	r.waitConsumed()
	b.stop()
	if full == 0 {
		t.Fatal("B restored nothing though the changelog had A's counts")
	}

	// A comes back with its state directory: it must read only what B
	// appended after A's checkpoint.
	clEnd := len(readAll(t, r.app+"-counts-changelog"))
	tailLen := int64(clEnd) - full
	a2 := r.start("A-again", dirA)
	a2.waitFor(running, 6, 60*time.Second)
	r.waitConsumed()
	a2.stop()
	if got := a2.restored(); got != tailLen {
		t.Errorf("restart restored %d records, want exactly the %d appended after the checkpoint (the full changelog has %d)", got, tailLen, clEnd)
	}
	t.Logf("full restore: %d records; restart with checkpoint: %d records", full, a2.restored())
	r.checkExact()
}

func TestDeletedStateDirRestoresIdenticalStores(t *testing.T) {
	r := newWordCount(t, 3)
	dir := t.TempDir()
	r.produceLines(1500)
	a := r.start("A", dir)
	r.waitConsumed()
	a.stop()
	before := storeContents(t, dir, r.app)
	if len(before) == 0 {
		t.Fatal("no store contents on disk after the first run")
	}
	if err := os.RemoveAll(filepath.Join(dir, r.app)); err != nil {
		t.Fatal(err)
	}
	a2 := r.start("A-wiped", dir)
	a2.waitFor(running, 6, 60*time.Second)
	r.waitConsumed()
	a2.stop()
	if a2.restored() == 0 {
		t.Fatal("nothing restored into the empty state directory")
	}
	after := storeContents(t, dir, r.app)
	if !equalMaps(before, after) {
		t.Errorf("restored stores differ: %d keys before, %d after", len(before), len(after))
	}
	r.checkExact()
}

// TestCorruptCheckpointIsNotTrusted: a truncated or garbled checkpoint
// file is logged and deleted, and the stores restore from the changelog
// offset each recorded with its data (state.OffsetRecorder, KIP-1035):
// nothing is wiped, so nothing needs restoring, and every count stays
// exact. (Before the stores recorded their offsets, a corrupt file meant
// a full restore.)
func TestCorruptCheckpointIsNotTrusted(t *testing.T) {
	r := newWordCount(t, 3)
	dir := t.TempDir()
	r.produceLines(1500)
	a := r.start("A", dir)
	r.waitConsumed()
	a.stop()
	before := storeContents(t, dir, r.app)
	cps, _ := filepath.Glob(filepath.Join(dir, r.app, "*", ".checkpoint"))
	if len(cps) != 3 {
		t.Fatalf("want 3 checkpoint files (one per counting task), found %v", cps)
	}
	// Truncate one, garble another.
	data, _ := os.ReadFile(cps[0])
	if err := os.WriteFile(cps[0], data[:len(data)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	data, _ = os.ReadFile(cps[1])
	data[len(data)/3] ^= 0x5a
	if err := os.WriteFile(cps[1], data, 0o644); err != nil {
		t.Fatal(err)
	}
	a2 := r.start("A-corrupt", dir)
	a2.waitFor(running, 6, 60*time.Second)
	r.produceLines(300)
	r.waitConsumed()
	a2.stop()
	if n := strings.Count(a2.out.String(), "checkpoint is unusable"); n != 2 {
		t.Errorf("logged %d unusable checkpoints, want 2", n)
	}
	if n := a2.restored(); n != 0 {
		t.Errorf("restored %d records, want none: the stores' recorded offsets are at their changelogs' ends", n)
	}
	after := storeContents(t, dir, r.app)
	if len(after) < len(before) {
		t.Errorf("stores lost keys: %d before, %d after", len(before), len(after))
	}
	r.checkExact()
}

func TestCopartitionMismatchFailsAtStartup(t *testing.T) {
	name := "copart-" + fmt.Sprint(time.Now().UnixNano())
	createTopics(t, 6, name+"-a")
	createTopics(t, 4, name+"-b")
	createTopics(t, 6, name+"-out")
	p := start(t, "mismatch", "wordcount", "-app", name, "-input", name+"-a,"+name+"-b", "-output", name+"-out", "-state-dir", t.TempDir())
	err := p.wait(60 * time.Second)
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("want a failed exit, got %v", err)
	}
	out := p.out.String()
	for _, want := range []string{"co-partitioned", name + "-a has 6", name + "-b has 4"} {
		if !strings.Contains(out, want) {
			t.Errorf("startup error lacks %q:\n%s", want, tail(out, 5))
		}
	}
}
