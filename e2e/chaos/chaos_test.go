package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeDataSet builds the data set Produce would write, without a broker.
func fakeDataSet(n int64, keys int, seed uint64) DataSet {
	ds := DataSet{Topic: "in", KeyCount: keys, Seed: seed, Expected: map[string]Stats{}}
	for v := range n {
		k := ds.Key(v)
		ds.Expected[k] = ds.Expected[k].add(v)
	}
	ds.next = n
	return ds
}

func passRecord(ds DataSet, v int64) *kgo.Record {
	return &kgo.Record{Topic: "pass", Key: []byte(ds.Key(v)), Value: EncodeValue(v)}
}

func statsRecord(t *testing.T, key string, s Stats) *kgo.Record {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return &kgo.Record{Topic: "stats", Key: []byte(key), Value: b}
}

// emit is what a correct application writes for values in order: each
// value to the passthrough and its key's running aggregate to the stats
// topic, updating running.
func emit(t *testing.T, ds DataSet, running map[string]Stats, values ...int64) (pass, stats []*kgo.Record) {
	for _, v := range values {
		k := ds.Key(v)
		running[k] = running[k].add(v)
		pass = append(pass, passRecord(ds, v))
		stats = append(stats, statsRecord(t, k, running[k]))
	}
	return pass, stats
}

func seq(from, to int64) []int64 {
	var out []int64
	for v := from; v < to; v++ {
		out = append(out, v)
	}
	return out
}

// check runs the checker over pass and stats as Verify does.
func check(ds DataSet, pass, stats []*kgo.Record) Report {
	c := newChecker(ds)
	for _, r := range pass {
		c.passthrough(r)
	}
	for _, r := range stats {
		c.stats(r)
	}
	c.finish()
	return c.r
}

func TestKeysAreDeterministicAndSpread(t *testing.T) {
	ds := fakeDataSet(100_000, 1000, 7)
	if len(ds.Expected) != 1000 {
		t.Fatalf("100000 values used %d of 1000 keys", len(ds.Expected))
	}
	for k, s := range ds.Expected {
		if len(k) != 4 || !strings.HasPrefix(k, "k") {
			t.Fatalf("key %q is not k plus three digits", k)
		}
		// 100 values per key on average; a binomial(100000, 1/1000) is
		// within 50..150 with overwhelming probability.
		if s.Count < 50 || s.Count > 150 {
			t.Errorf("key %s has %d values, want about 100", k, s.Count)
		}
	}
	again := fakeDataSet(100_000, 1000, 7)
	other := fakeDataSet(100_000, 1000, 8)
	same := 0
	for v := range int64(1000) {
		if ds.Key(v) != again.Key(v) {
			t.Fatalf("value %d has key %s, then %s, with the same seed", v, ds.Key(v), again.Key(v))
		}
		if ds.Key(v) == other.Key(v) {
			same++
		}
	}
	if same > 20 {
		t.Errorf("%d of 1000 values have the same key under seeds 7 and 8", same)
	}
}

func TestValueCodec(t *testing.T) {
	for _, v := range []int64{0, 1, 255, 1 << 40, -1} {
		got, err := DecodeValue(EncodeValue(v))
		if err != nil || got != v {
			t.Errorf("DecodeValue(EncodeValue(%d)) = %d, %v", v, got, err)
		}
	}
	if _, err := DecodeValue([]byte{1, 2, 3}); err == nil {
		t.Error("a 3-byte value decoded")
	}
}

func TestCheckerVerdicts(t *testing.T) {
	ds := fakeDataSet(2000, 20, 1)
	exact := func() ([]*kgo.Record, []*kgo.Record) { return emit(t, ds, map[string]Stats{}, seq(0, 2000)...) }

	t.Run("exactly once", func(t *testing.T) {
		pass, stats := exact()
		r := check(ds, pass, stats)
		if !r.ExactlyOnce() || !r.NothingLost() {
			t.Fatalf("a perfect output is not exactly once:\n%s", r)
		}
		if r.Verified != 2000 || r.PassthroughRecords != 2000 || r.StatsRecords != 2000 || r.Keys != 20 {
			t.Errorf("counts: %+v", r)
		}
		if !strings.HasPrefix(r.String(), "EXACTLY ONCE") {
			t.Errorf("verdict:\n%s", r)
		}
	})

	t.Run("replay after a crash", func(t *testing.T) {
		// Values 1500..1599 are processed and their state saved, then a
		// crash comes before the input offsets are committed (the
		// changelog was flushed, the offsets not): they are processed
		// again on top of that state, so their keys over-count.
		running := map[string]Stats{}
		pass, stats := emit(t, ds, running, seq(0, 1600)...)
		p2, s2 := emit(t, ds, running, seq(1500, 1600)...)
		p3, s3 := emit(t, ds, running, seq(1600, 2000)...)
		pass = append(append(pass, p2...), p3...)
		stats = append(append(stats, s2...), s3...)
		r := check(ds, pass, stats)
		if !r.NothingLost() || r.ExactlyOnce() {
			t.Fatalf("a replay is not at-least-once:\n%s", r)
		}
		if r.Duplicated != 100 || r.ExtraCopies != 100 || r.Missing != 0 || r.Verified != 2000 {
			t.Errorf("duplicates: %+v", r)
		}
		if r.WrongAggregates == 0 || r.ShortAggregates != 0 {
			t.Errorf("aggregates: %d wrong, %d short; want some wrong, none short", r.WrongAggregates, r.ShortAggregates)
		}
		if !strings.HasPrefix(r.String(), "AT LEAST ONCE") {
			t.Errorf("verdict:\n%s", r)
		}
	})

	t.Run("lost input", func(t *testing.T) {
		pass, stats := emit(t, ds, map[string]Stats{}, append(seq(0, 700), seq(710, 2000)...)...)
		r := check(ds, pass, stats)
		if r.NothingLost() || r.Missing != 10 || r.Verified != 1990 {
			t.Fatalf("10 lost inputs not reported:\n%s", r)
		}
		if r.ShortAggregates == 0 {
			t.Error("aggregates that miss inputs were not reported")
		}
		if len(r.MissingExamples) != 10 || r.MissingExamples[0].Value != 700 || r.MissingExamples[0].Key != ds.Key(700) {
			t.Errorf("missing examples: %+v", r.MissingExamples)
		}
		if !strings.HasPrefix(r.String(), "LOSS") {
			t.Errorf("verdict:\n%s", r)
		}
	})

	t.Run("state lost", func(t *testing.T) {
		// Every input reaches the passthrough, but one key's last aggregate
		// misses its first values, as after restoring a store that lost
		// updates.
		pass, stats := exact()
		victim := ds.Key(0)
		fresh := Stats{}
		for v := range int64(2000) {
			if ds.Key(v) == victim && v > 0 {
				fresh = fresh.add(v)
			}
		}
		stats = append(stats, statsRecord(t, victim, fresh))
		r := check(ds, pass, stats)
		if r.NothingLost() || r.Missing != 0 || r.ShortAggregates != 1 {
			t.Fatalf("an aggregate that misses an input is not a loss:\n%s", r)
		}
		if a := r.AggregateExamples[0]; a.Key != victim || !a.Short || a.Got != fresh {
			t.Errorf("example: %+v", a)
		}
	})

	t.Run("unexpected records", func(t *testing.T) {
		pass, stats := exact()
		pass = append(pass,
			passRecord(ds, 0), // a duplicate, not unexpected
			&kgo.Record{Topic: "pass", Key: []byte("k00"), Value: EncodeValue(5000)}, // never produced
			&kgo.Record{Topic: "pass", Key: []byte("nokey"), Value: EncodeValue(1)},  // wrong key
			&kgo.Record{Topic: "pass", Key: []byte("k00"), Value: []byte{1}},         // not 8 bytes
		)
		stats = append(stats,
			statsRecord(t, "nokey", Stats{}),                                        // unknown key
			&kgo.Record{Topic: "stats", Key: []byte(ds.Key(0)), Value: []byte("{")}, // not JSON
		)
		moved := statsRecord(t, ds.Key(1999), ds.Expected[ds.Key(1999)])
		moved.Partition = 3 // every other record is in partition 0
		stats = append(stats, moved)
		r := check(ds, pass, stats)
		if r.Unexpected != 6 || r.Duplicated != 1 {
			t.Fatalf("want 6 unexpected records and 1 duplicate:\n%s", r)
		}
		if !r.NothingLost() || r.ExactlyOnce() {
			t.Errorf("verdict:\n%s", r)
		}
	})
}

func TestMissesInputs(t *testing.T) {
	want := Stats{Sum: 100, Count: 4, Min: 10, Max: 40}
	for _, tc := range []struct {
		name  string
		got   Stats
		found bool
		short bool
	}{
		{"exact", want, true, false},
		{"no aggregate", Stats{}, false, true},
		{"duplicate of the max", Stats{Sum: 140, Count: 5, Min: 10, Max: 40}, true, false},
		{"one input missing", Stats{Sum: 90, Count: 3, Min: 20, Max: 40}, true, true},
		{"count below", Stats{Sum: 100, Count: 3, Min: 10, Max: 40}, true, true},
		{"max below", Stats{Sum: 100, Count: 4, Min: 10, Max: 30}, true, true},
		{"min above", Stats{Sum: 100, Count: 4, Min: 20, Max: 40}, true, true},
		{"foreign value", Stats{Sum: 105, Count: 5, Min: 5, Max: 40}, true, false},
	} {
		if got := missesInputs(tc.got, tc.found, want); got != tc.short {
			t.Errorf("%s: missesInputs(%v) = %v, want %v", tc.name, tc.got, got, tc.short)
		}
	}
}

// fakeInstances records what KillLoop does to it.
type fakeInstances struct {
	n        int
	killed   []int
	started  []int
	failKill int // the kill number (from 1) that fails; 0: none
}

var errKill = errors.New("no such process")

func (f *fakeInstances) Instances() int { return f.n }

func (f *fakeInstances) Kill(i int) error {
	if len(f.killed)+1 == f.failKill {
		return errKill
	}
	if len(f.killed) != len(f.started) {
		return errors.New("killed twice without a restart")
	}
	f.killed = append(f.killed, i)
	return nil
}

func (f *fakeInstances) Restart(i int) error {
	if len(f.killed) == 0 || f.killed[len(f.killed)-1] != i {
		return errors.New("restarted an instance that was not just killed")
	}
	f.started = append(f.started, i)
	return nil
}

func TestKillLoop(t *testing.T) {
	f := &fakeInstances{n: 3}
	// Taken before the context's clock starts: taken after, a loaded
	// machine's delay between the two made a run look early.
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	kills, err := KillLoop(ctx, f, 10*time.Millisecond, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	if elapsed := time.Since(start); elapsed < 400*time.Millisecond {
		t.Errorf("KillLoop returned after %v, before its context ended", elapsed)
	}
	// Pauses of 7.5 to 12.5 ms: at most 53 kills in 400 ms, and at least
	// a dozen even on a loaded machine.
	if kills != len(f.killed) || kills != len(f.started) || kills < 12 || kills > 54 {
		t.Fatalf("KillLoop reported %d kills; the controller saw %d kills and %d restarts", kills, len(f.killed), len(f.started))
	}
	per := make([]int, 3)
	for _, i := range f.killed {
		per[i]++
	}
	for i, n := range per {
		if n == 0 {
			t.Errorf("instance %d was never killed in %d kills: %v", i, kills, per)
		}
	}
}

func TestKillLoopStopsOnError(t *testing.T) {
	f := &fakeInstances{n: 2, failKill: 3}
	kills, err := KillLoop(context.Background(), f, time.Millisecond, rand.New(rand.NewPCG(1, 2)))
	if !errors.Is(err, errKill) || kills != 2 {
		t.Fatalf("KillLoop = %d, %v; want 2 kills and the third kill's error", kills, err)
	}
	for _, bad := range []struct {
		every time.Duration
		rng   *rand.Rand
		n     int
	}{{0, rand.New(rand.NewPCG(1, 2)), 1}, {time.Second, nil, 1}, {time.Second, rand.New(rand.NewPCG(1, 2)), 0}} {
		if _, err := KillLoop(context.Background(), &fakeInstances{n: bad.n}, bad.every, bad.rng); err == nil {
			t.Errorf("KillLoop accepted every=%v rng=%v instances=%d", bad.every, bad.rng, bad.n)
		}
	}
}

// fakeCluster is an in-process cluster with an input topic, a
// passthrough topic and a stats topic of three partitions each.
func fakeCluster(t *testing.T) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "in", "pass", "stats"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

func newClient(t *testing.T, addrs []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addrs...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// transaction writes records in one transaction of cl and commits or
// aborts it.
func transaction(t *testing.T, cl *kgo.Client, commit bool, records ...*kgo.Record) {
	t.Helper()
	ctx := testContext(t)
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, records...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyReadsPastTransactionMarkers writes the outputs as an
// exactly-once application would: in transactions, some aborted after a
// crash and redone, and the last of them aborted, so that every partition
// ends with a transaction marker that no read_committed reader returns as
// data.
func TestVerifyReadsPastTransactionMarkers(t *testing.T) {
	addrs := fakeCluster(t)
	ctx := testContext(t)
	ds, err := Produce(ctx, newClient(t, addrs), "in", 3000, 30, 11)
	if err != nil {
		t.Fatal(err)
	}
	if ds.Records() != 3000 || len(ds.Expected) != 30 {
		t.Fatalf("data set of %d records over %d keys, want 3000 over 30", ds.Records(), len(ds.Expected))
	}
	txn := newClient(t, addrs, kgo.TransactionalID("app-0"))
	running := map[string]Stats{}
	for from := int64(0); from < 3000; from += 500 {
		// A transaction that dies, with garbage, then the real one.
		junk := map[string]Stats{}
		for k, s := range running {
			junk[k] = s
		}
		p, s := emit(t, ds, junk, seq(from, from+500)...)
		transaction(t, txn, false, append(p, s...)...)
		p, s = emit(t, ds, running, seq(from, from+500)...)
		transaction(t, txn, true, append(p, s...)...)
	}
	p, s := emit(t, ds, map[string]Stats{}, seq(0, 100)...)
	transaction(t, txn, false, append(p, s...)...)

	r, err := Verify(ctx, addrs, ds, "pass", "stats")
	if err != nil {
		t.Fatal(err)
	}
	if !r.ExactlyOnce() || r.PassthroughRecords != 3000 || r.StatsRecords != 3000 {
		t.Fatalf("committed output not judged exactly once:\n%s", r)
	}
}

// TestVerifyWaitsForOpenTransactions leaves the last inputs in an open
// transaction: Verify must not call them missing, but wait until the
// transaction ends.
func TestVerifyWaitsForOpenTransactions(t *testing.T) {
	addrs := fakeCluster(t)
	ctx := testContext(t)
	ds, err := Produce(ctx, newClient(t, addrs), "in", 1000, 10, 3)
	if err != nil {
		t.Fatal(err)
	}
	running := map[string]Stats{}
	p, s := emit(t, ds, running, seq(0, 900)...)
	if err := newClient(t, addrs).ProduceSync(ctx, append(p, s...)...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	txn := newClient(t, addrs, kgo.TransactionalID("app-0"))
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	p, s = emit(t, ds, running, seq(900, 1000)...)
	if err := txn.ProduceSync(ctx, append(p, s...)...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	_, err = Verify(short, addrs, ds, "pass", "stats")
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "did not settle") {
		t.Fatalf("Verify with an open transaction = %v; want it to wait for the transaction until its context ends", err)
	}

	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		time.Sleep(300 * time.Millisecond)
		if err := txn.EndTransaction(ctx, kgo.TryCommit); err != nil {
			t.Error(err)
		}
	})
	r, err := Verify(ctx, addrs, ds, "pass", "stats")
	if err != nil {
		t.Fatal(err)
	}
	if !r.ExactlyOnce() {
		t.Fatalf("after the commit:\n%s", r)
	}
}

// TestVerifyLocatesLoss drops some inputs from the passthrough: the report
// must say which partition and offsets of the input topic they came from.
func TestVerifyLocatesLoss(t *testing.T) {
	addrs := fakeCluster(t)
	ctx := testContext(t)
	cl := newClient(t, addrs)
	ds, err := Produce(ctx, cl, "in", 600, 6, 5)
	if err != nil {
		t.Fatal(err)
	}
	// Where did values 100..119 go?
	want := map[int32][2]int64{}
	n := map[int32]int64{}
	in := newClient(t, addrs, kgo.ConsumeTopics("in"))
	for read := 0; read < 600; {
		fs := in.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			read++
			if v, _ := DecodeValue(r.Value); v >= 100 && v < 120 {
				w, ok := want[r.Partition]
				if !ok {
					w = [2]int64{r.Offset, r.Offset}
				}
				want[r.Partition] = [2]int64{min(w[0], r.Offset), max(w[1], r.Offset)}
				n[r.Partition]++
			}
		})
	}
	p, s := emit(t, ds, map[string]Stats{}, append(seq(0, 100), seq(120, 600)...)...)
	if err := cl.ProduceSync(ctx, append(p, s...)...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	r, err := Verify(ctx, addrs, ds, "pass", "stats")
	if err != nil {
		t.Fatal(err)
	}
	if r.NothingLost() || r.Missing != 20 {
		t.Fatalf("20 lost inputs not reported:\n%s", r)
	}
	if len(r.MissingRanges) != len(want) {
		t.Fatalf("missing ranges %+v, want partitions %v", r.MissingRanges, want)
	}
	for _, m := range r.MissingRanges {
		if w := want[m.Partition]; m.First != w[0] || m.Last != w[1] || m.Count != n[m.Partition] {
			t.Errorf("partition %d: %d missing at %d..%d, want %d at %d..%d", m.Partition, m.Count, m.First, m.Last, n[m.Partition], w[0], w[1])
		}
	}
	for _, m := range r.MissingExamples {
		if m.Partition < 0 || m.Value < 100 || m.Value >= 120 {
			t.Errorf("example not located: %+v", m)
		}
	}
}

func TestVerifyRefusesABrokenDataSet(t *testing.T) {
	addrs := fakeCluster(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ds, err := Produce(ctx, newClient(t, addrs), "in", 10, 2, 1)
	if err == nil {
		t.Fatal("Produce with a cancelled context succeeded")
	}
	if err := ds.ProduceMore(context.Background(), newClient(t, addrs), 10); !errors.Is(err, ErrDataSetBroken) {
		t.Errorf("ProduceMore after a failure = %v, want ErrDataSetBroken", err)
	}
	if _, err := Verify(context.Background(), addrs, ds, "pass", "stats"); !errors.Is(err, ErrDataSetBroken) {
		t.Errorf("Verify of a broken data set = %v, want ErrDataSetBroken", err)
	}
}
