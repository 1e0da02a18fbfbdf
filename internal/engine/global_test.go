package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/topology"
)

// produceKV writes records with the given keys and values (a nil value
// is a tombstone) to a partition of topic, in one transaction, so that
// the topic ends with a transaction marker.
func produceKV(t *testing.T, addrs []string, topic string, partition int32, kvs ...[]byte) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.TransactionalID("test-producer"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	for i := 0; i+1 < len(kvs); i += 2 {
		recs = append(recs, &kgo.Record{Topic: topic, Partition: partition, Key: kvs[i], Value: kvs[i+1]})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
}

// globalJoin joins clicks (value: the city's key) with the global table
// of cities and writes "<click>=<city>" to out; a missing city joins as
// "".
func globalJoin(t *testing.T, opts ...topology.Option) *topology.Topology {
	t.Helper()
	b := topology.NewBuilder()
	cities := topology.GlobalTableFrom(b, "cities", serde.String(), serde.String(), append([]topology.Option{topology.StoreName("cities")}, opts...)...)
	clicks := topology.Source(b, "clicks", serde.String(), serde.String())
	topology.LeftJoinGlobal(clicks, cities, func(_, city string) string { return city },
		func(click, _, city string) string { return click + "=" + city }).To("out")
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return top
}

// TestGlobalTableIsBootstrappedBeforeTheFirstJoin: every record written to
// a global table's topic (three partitions, each ending with a
// transaction marker) before the application starts is visible to the
// first stream record joined, tombstones included; records written
// after the start reach the table too.
func TestGlobalTableIsBootstrappedBeforeTheFirstJoin(t *testing.T) {
	_, addrs := fakeCluster(t, kfake.SeedTopics(3, "cities"), kfake.SeedTopics(2, "clicks"), kfake.SeedTopics(1, "out"))
	const n = 300
	for p := range int32(3) {
		var kvs [][]byte
		for i := int(p); i < n; i += 3 {
			kvs = append(kvs, []byte("k"+strconv.Itoa(i)), []byte("city"+strconv.Itoa(i)))
		}
		if p == 0 {
			kvs = append(kvs, []byte("k3"), nil) // a tombstone: k3 is gone
		}
		produceKV(t, addrs, "cities", p, kvs...)
	}
	// The clicks are there before the start too: the first one a task
	// processes must find the table whole.
	var clicks [][]byte
	for i := range n {
		clicks = append(clicks, []byte("c"+strconv.Itoa(i)), []byte("k"+strconv.Itoa(i)))
	}
	produceKV(t, addrs, "clicks", 0, clicks...)

	e := New(globalJoin(t, topology.InMemory()), testConfig(t, addrs, "global-app", false))
	// The updater waits until the joins of the records written before the
	// start are checked: only the bootstrap can have filled the table.
	updates := make(chan struct{})
	e.testing.beforeGlobalUpdates = func(ctx context.Context) {
		select {
		case <-updates:
		case <-ctx.Done():
		}
	}
	runEngine(t, e)
	got := readCommitted(t, addrs, "out", 30*time.Second, func(r []*kgo.Record) bool { return len(r) >= n })
	if len(got) != n {
		t.Fatalf("read %d joined records, want %d", len(got), n)
	}
	for _, r := range got {
		click := strings.TrimPrefix(string(r.Key), "c")
		want := fmt.Sprintf("c%s=city%s", click, click)
		if click == "3" {
			want = "c3=" // deleted by its tombstone before the start
		}
		if string(r.Value) != want {
			t.Errorf("joined %q, want %q", r.Value, want)
		}
	}
	if err := e.Ready(); err != nil && strings.Contains(err.Error(), "bootstrapping") {
		t.Errorf("Ready after the joins: %v", err)
	}

	// Kept up to date: a city written now is found by a later click. The
	// updater applies it on its own goroutine, so probe until a click
	// finds it.
	close(updates)
	produceKV(t, addrs, "cities", 1, []byte("new"), []byte("Bern"))
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; ; i++ {
		key := "probe" + strconv.Itoa(i)
		produceKV(t, addrs, "clicks", 1, []byte(key), []byte("new"))
		out := readCommitted(t, addrs, "out", 2*time.Second, func(r []*kgo.Record) bool {
			for _, rec := range r {
				if string(rec.Key) == key {
					return true
				}
			}
			return false
		})
		if last := out[len(out)-1]; string(last.Key) == key && string(last.Value) == key+"=Bern" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a city written after the start never reached the global table")
		}
	}
}

// A global table whose topic does not exist fails Run with an error that
// names the topic.
func TestGlobalTableTopicMissing(t *testing.T) {
	_, addrs := fakeCluster(t, kfake.SeedTopics(2, "clicks"), kfake.SeedTopics(1, "out"))
	e := New(globalJoin(t, topology.InMemory()), testConfig(t, addrs, "global-missing", false))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := e.Run(ctx)
	var missing *MissingTopicError
	if !errors.As(err, &missing) || len(missing.Topics) != 1 || missing.Topics[0] != "cities" {
		t.Fatalf("Run: %v; want a MissingTopicError naming cities", err)
	}
}

// A persistent global store checkpoints its offsets when Run ends, and
// the next start reads only the records written since; what it reads
// then (an update and a tombstone) is joined by the first click.
func TestPersistentGlobalTableBootstrapsFromItsCheckpoint(t *testing.T) {
	_, addrs := fakeCluster(t, kfake.SeedTopics(3, "cities"), kfake.SeedTopics(1, "clicks"), kfake.SeedTopics(1, "out"))
	for p := range int32(3) {
		produceKV(t, addrs, "cities", p, []byte("k"+strconv.Itoa(int(p))), []byte("city"+strconv.Itoa(int(p))))
	}
	cfg := testConfig(t, addrs, "global-persistent", false)
	top := globalJoin(t) // the default supplier: Pebble

	e := New(top, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- e.Run(ctx) }()
	produceKV(t, addrs, "clicks", 0, []byte("c0"), []byte("k0"))
	if got := readCommitted(t, addrs, "out", 20*time.Second, func(r []*kgo.Record) bool { return len(r) >= 1 }); len(got) != 1 || joinedText(got)[0] != "c0=c0=city0" {
		t.Fatalf("first run joined %v, want c0=c0=city0", joinedText(got))
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if e.globals.bootstrapped.Load() != 3 {
		t.Errorf("the first bootstrap applied %d records, want 3", e.globals.bootstrapped.Load())
	}

	produceKV(t, addrs, "cities", 0, []byte("k0"), []byte("Bern"))
	produceKV(t, addrs, "cities", 1, []byte("k1"), nil)
	e = New(top, cfg)
	e.testing.beforeGlobalUpdates = func(ctx context.Context) { <-ctx.Done() } // the bootstrap alone
	runEngine(t, e)
	produceKV(t, addrs, "clicks", 0, []byte("c1"), []byte("k0"), []byte("c2"), []byte("k1"), []byte("c3"), []byte("k2"))
	got := readCommitted(t, addrs, "out", 20*time.Second, func(r []*kgo.Record) bool { return len(r) >= 4 })
	if want := []string{"c0=c0=city0", "c1=c1=Bern", "c2=c2=", "c3=c3=city2"}; !slices.Equal(joinedText(got), want) {
		t.Errorf("second run joined %v, want %v", joinedText(got), want)
	}
	if e.globals.bootstrapped.Load() != 2 {
		t.Errorf("the second bootstrap applied %d records, want the 2 written since the checkpoint", e.globals.bootstrapped.Load())
	}
}

// joinedText prints records as "<key>=<value>".
func joinedText(recs []*kgo.Record) []string {
	var out []string
	for _, r := range recs {
		out = append(out, string(r.Key)+"="+string(r.Value))
	}
	return out
}

// A checkpoint behind the log start (retention deleted records the store
// has not read) cannot be used for its partition, and the store cannot
// drop that partition's keys alone: the bootstrap empties it and reads
// the topic in full, so a key whose only records were deleted is gone.
func TestGlobalCheckpointBehindTheLogStartBootstrapsInFull(t *testing.T) {
	_, addrs := fakeCluster(t, kfake.SeedTopics(3, "cities"), kfake.SeedTopics(1, "clicks"), kfake.SeedTopics(1, "out"))
	for p := range int32(3) {
		produceKV(t, addrs, "cities", p, []byte("k"+strconv.Itoa(int(p))), []byte("city"+strconv.Itoa(int(p))))
	}
	cfg := testConfig(t, addrs, "global-behind", false)
	top := globalJoin(t)
	e := New(top, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- e.Run(ctx) }()
	produceKV(t, addrs, "clicks", 0, []byte("c0"), []byte("k0"))
	if got := readCommitted(t, addrs, "out", 20*time.Second, func(r []*kgo.Record) bool { return len(r) >= 1 }); len(got) != 1 {
		t.Fatalf("first run joined %v", joinedText(got))
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("Run: %v", err)
	}

	// Partition 0: k0 at offset 0 (checkpointed at 2, past its marker),
	// then k9 at 2 and, in another transaction, at 4. The log start
	// moves to 4: k0's only record is gone.
	produceKV(t, addrs, "cities", 0, []byte("k9"), []byte("Geneva"))
	produceKV(t, addrs, "cities", 0, []byte("k9"), []byte("Basel"))
	adm := kadmClient(t, addrs)
	dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer dcancel()
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: "cities", Partition: 0, At: 4})
	resp, err := adm.DeleteRecords(dctx, offs)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("delete records: %v", err)
	}

	e = New(top, cfg)
	e.testing.beforeGlobalUpdates = func(ctx context.Context) { <-ctx.Done() } // the bootstrap alone
	runEngine(t, e)
	produceKV(t, addrs, "clicks", 0, []byte("c1"), []byte("k0"), []byte("c2"), []byte("k9"), []byte("c3"), []byte("k1"))
	got := readCommitted(t, addrs, "out", 20*time.Second, func(r []*kgo.Record) bool { return len(r) >= 4 })
	if want := []string{"c0=c0=city0", "c1=c1=", "c2=c2=Basel", "c3=c3=city1"}; !slices.Equal(joinedText(got), want) {
		t.Errorf("second run joined %v, want %v", joinedText(got), want)
	}
	if n := e.globals.bootstrapped.Load(); n != 3 {
		t.Errorf("the second bootstrap applied %d records, want 3 (k9 from partition 0, k1, k2)", n)
	}
}
