package changelog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/goleak"

	"github.com/eddystream/eddy/changelog"
)

const testTopic = "app-store-changelog"

// harness is an in-process Kafka cluster with a changelog topic, a client
// to produce with and a Restorer on a client of its own.
type harness struct {
	t        *testing.T
	cluster  *kfake.Cluster
	producer *kgo.Client
	restore  *kgo.Client
	adm      *kadm.Client
}

// newHarness starts a cluster of the given size with testTopic created with
// the given partitions and changelog.TopicConfigs plus extra. When the test ends it
// closes everything and checks that no goroutine is left behind.
func newHarness(t *testing.T, brokers int, partitions int32, extra map[string]string) *harness {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t) }) // runs last
	cluster, err := kfake.NewCluster(kfake.NumBrokers(brokers))
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, cluster: cluster}
	t.Cleanup(h.close)
	h.producer = h.client(kgo.DefaultProduceTopic(testTopic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	h.restore = h.client()
	h.adm = kadm.NewClient(h.producer)
	configs := changelog.TopicConfigs()
	for k, v := range extra {
		configs[k] = &v
	}
	resp, err := h.adm.CreateTopic(context.Background(), partitions, 1, configs, testTopic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("creating %s with TopicConfigs: %v", testTopic, err)
	}
	return h
}

// client returns a client of the cluster, closed when the test ends.
func (h *harness) client(opts ...kgo.Opt) *kgo.Client {
	h.t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(h.cluster.ListenAddrs()...)}, opts...)...)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(cl.Close)
	return cl
}

func (h *harness) close() { h.cluster.Close() }

func (h *harness) restorer(opts ...RestoreOption) *Restorer {
	h.t.Helper()
	opts = append([]RestoreOption{WithLogger(slog.New(slog.DiscardHandler))}, opts...)
	r, err := NewRestorer(h.restore, opts...)
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

// produce writes records to partition p, one record batch each, and returns
// their offsets.
func (h *harness) produce(cl *kgo.Client, p int32, records ...*kgo.Record) []int64 {
	h.t.Helper()
	offsets := make([]int64, len(records))
	for i, r := range records {
		r.Topic, r.Partition = testTopic, p
		if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			h.t.Fatalf("producing: %v", err)
		}
		offsets[i] = r.Offset
	}
	return offsets
}

// transaction produces records to partition p in one transaction of cl and
// commits or aborts it.
func (h *harness) transaction(cl *kgo.Client, p int32, commit bool, records ...*kgo.Record) {
	h.t.Helper()
	if err := cl.BeginTransaction(); err != nil {
		h.t.Fatal(err)
	}
	h.produce(cl, p, records...)
	if err := cl.EndTransaction(context.Background(), kgo.TransactionEndTry(commit)); err != nil {
		h.t.Fatalf("ending transaction: %v", err)
	}
}

func (h *harness) transactional(id string) *kgo.Client {
	return h.client(kgo.TransactionalID(id), kgo.DefaultProduceTopic(testTopic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
}

func put(key, value string) *kgo.Record {
	return &kgo.Record{Key: []byte(key), Value: []byte(value)}
}

func del(key string) *kgo.Record {
	return &kgo.Record{Key: []byte(key)}
}

// model is what a store holds after the given records, applied in order.
func model(records ...*kgo.Record) map[string]string {
	m := map[string]string{}
	for _, r := range records {
		if r.Value == nil {
			delete(m, string(r.Key))
		} else {
			m[string(r.Key)] = string(r.Value)
		}
	}
	return m
}

// memTarget is an in-memory RestoreTarget that records how it was called.
type memTarget struct {
	data    map[string]string
	wipes   int
	batches int
	largest int           // the most records in one batch
	records []*kgo.Record // every record applied, in order
	// onApply, if set, runs before each ApplyBatch and may fail it.
	onApply func(batch []*kgo.Record) error
}

func newMemTarget() *memTarget { return &memTarget{data: map[string]string{"stale": "from before"}} }

func (m *memTarget) Wipe() error {
	m.wipes++
	clear(m.data)
	return nil
}

func (m *memTarget) ApplyBatch(records []*kgo.Record) error {
	if m.onApply != nil {
		if err := m.onApply(records); err != nil {
			return err
		}
	}
	m.batches++
	m.largest = max(m.largest, len(records))
	for _, r := range records {
		if n := len(m.records); n > 0 && r.Offset <= m.records[n-1].Offset {
			return fmt.Errorf("offset %d applied after offset %d", r.Offset, m.records[n-1].Offset)
		}
		m.records = append(m.records, r)
		if r.Value == nil {
			delete(m.data, string(r.Key))
		} else {
			m.data[string(r.Key)] = string(r.Value)
		}
	}
	return nil
}

func (m *memTarget) offsets() []int64 {
	offsets := make([]int64, len(m.records))
	for i, r := range m.records {
		offsets[i] = r.Offset
	}
	return offsets
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// someRecords returns n puts over a few keys, with a tombstone every 7th
// record.
func someRecords(n int) []*kgo.Record {
	records := make([]*kgo.Record, n)
	for i := range records {
		key := fmt.Sprintf("k%d", i%5)
		if i%7 == 6 {
			records[i] = del(key)
		} else {
			records[i] = put(key, fmt.Sprintf("v%d", i))
		}
	}
	return records
}

func checkResult(t *testing.T, got RestoreResult, want RestoreResult) {
	t.Helper()
	if got.Duration <= 0 {
		t.Errorf("Duration = %s, want positive", got.Duration)
	}
	got.Duration, want.Duration = 0, 0
	if got != want {
		t.Errorf("result = %+v, want %+v", got, want)
	}
}

func TestRestoreFromScratch(t *testing.T) {
	h := newHarness(t, 1, 2, nil)
	records := someRecords(40)
	h.produce(h.producer, 1, records...)
	h.produce(h.producer, 0, put("other", "partition"))

	target := newMemTarget()
	tp := TopicPartition{Topic: testTopic, Partition: 1}
	res, err := h.restorer(WithBatchSize(3)).Restore(testContext(t), tp, NoCheckpoint, target)
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, res, RestoreResult{Partition: tp, StartOffset: 0, EndOffset: 40, Full: true, Records: 40})
	if target.wipes != 1 {
		t.Errorf("Wipe called %d times, want once before a full restore", target.wipes)
	}
	if want := model(records...); !maps.Equal(target.data, want) {
		t.Errorf("store = %v, want %v", target.data, want)
	}
	if target.largest > 3 {
		t.Errorf("a batch of %d records; want batches of at most 3", target.largest)
	}
	for i, r := range target.records {
		if r.Offset != int64(i) {
			t.Fatalf("record %d has offset %d", i, r.Offset)
		}
	}
}

func TestRestoreFromCheckpoint(t *testing.T) {
	h := newHarness(t, 1, 1, nil)
	records := someRecords(100)
	h.produce(h.producer, 0, records...)

	target := newMemTarget()
	target.data = model(records[:60]...) // the store as checkpointed at 60
	tp := TopicPartition{Topic: testTopic, Partition: 0}
	res, err := h.restorer().Restore(testContext(t), tp, 60, target)
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, res, RestoreResult{Partition: tp, StartOffset: 60, EndOffset: 100, Records: 40})
	if target.wipes != 0 {
		t.Errorf("Wipe called %d times for a tail restore", target.wipes)
	}
	if got := target.offsets(); len(got) != 40 || got[0] != 60 || got[39] != 99 {
		t.Errorf("applied offsets %v, want 60 to 99", got)
	}
	if want := model(records...); !maps.Equal(target.data, want) {
		t.Errorf("store = %v, want %v", target.data, want)
	}
}

// TestRestoreFromCheckpointMidBatch restores from a checkpoint inside a
// record batch: the records of the batch before the checkpoint are skipped.
func TestRestoreFromCheckpointMidBatch(t *testing.T) {
	h := newHarness(t, 1, 1, nil)
	var batches batchCounter
	producer := h.client(kgo.ProducerLinger(time.Second), kgo.WithHooks(&batches))
	records := someRecords(10)
	for _, r := range records {
		r.Topic = testTopic
	}
	if err := producer.ProduceSync(context.Background(), records...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// The hook may run just after ProduceSync returns.
	var got []int
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if got = batches.sizes(); sum(got) == 10 {
			break
		}
	}
	if len(got) != 1 || got[0] != 10 {
		t.Fatalf("produced batches of %v records; want one batch of 10", got)
	}
	target := newMemTarget()
	target.data = model(records[:4]...)
	res, err := h.restorer().Restore(testContext(t), TopicPartition{Topic: testTopic}, 4, target)
	if err != nil {
		t.Fatal(err)
	}
	if got := target.offsets(); res.Records != 6 || len(got) != 6 || got[0] != 4 {
		t.Errorf("applied %d records at offsets %v; want 6 from offset 4", res.Records, got)
	}
	if want := model(records...); !maps.Equal(target.data, want) {
		t.Errorf("store = %v, want %v", target.data, want)
	}
}

func TestRestoreUpToDate(t *testing.T) {
	h := newHarness(t, 1, 1, nil)
	h.produce(h.producer, 0, someRecords(10)...)
	h.cluster.ControlKey(int16(kmsg.Fetch), func(kmsg.Request) (kmsg.Response, error, bool) {
		t.Error("an up-to-date store was fetched for")
		return nil, nil, false
	})

	target := newMemTarget()
	tp := TopicPartition{Topic: testTopic, Partition: 0}
	res, err := h.restorer().Restore(testContext(t), tp, 10, target)
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, res, RestoreResult{Partition: tp, StartOffset: 10, EndOffset: 10})
	if target.wipes != 0 || target.batches != 0 {
		t.Errorf("target touched: %d wipes, %d batches", target.wipes, target.batches)
	}
}

func TestRestoreEmptyPartition(t *testing.T) {
	h := newHarness(t, 1, 1, nil)
	target := newMemTarget()
	tp := TopicPartition{Topic: testTopic, Partition: 0}
	res, err := h.restorer().Restore(testContext(t), tp, NoCheckpoint, target)
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, res, RestoreResult{Partition: tp, StartOffset: 0, EndOffset: 0, Full: true})
	if target.wipes != 1 || len(target.data) != 0 || target.batches != 0 {
		t.Errorf("target after restoring an empty partition: %d wipes, %d batches, data %v; want wiped and empty", target.wipes, target.batches, target.data)
	}
}

func TestRestoreTombstonesAndEmptyValues(t *testing.T) {
	h := newHarness(t, 1, 1, nil)
	h.produce(h.producer, 0,
		put("a", "1"),
		&kgo.Record{Key: []byte("empty"), Value: []byte{}},
		put("b", "2"),
		del("a"),
		del("never-written"),
	)
	target := newMemTarget()
	if _, err := h.restorer().Restore(testContext(t), TopicPartition{Topic: testTopic}, NoCheckpoint, target); err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"empty": "", "b": "2"}; !maps.Equal(target.data, want) {
		t.Errorf("store = %v, want %v", target.data, want)
	}
	if v := target.records[1].Value; v == nil {
		t.Errorf("an empty value arrived as nil, which means delete")
	}
	if v := target.records[3].Value; v != nil {
		t.Errorf("a tombstone arrived as %q, want nil", v)
	}
}

func TestRestoreCheckpointAhead(t *testing.T) {
	h := newHarness(t, 1, 1, nil)
	h.produce(h.producer, 0, someRecords(10)...)
	target := newMemTarget()
	_, err := h.restorer().Restore(testContext(t), TopicPartition{Topic: testTopic}, 500, target)
	if !errors.Is(err, ErrCheckpointAhead) {
		t.Fatalf("Restore from a checkpoint past the end: %v, want ErrCheckpointAhead", err)
	}
	for _, part := range []string{testTopic + "-0", "500", "10"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q does not mention %q", err, part)
		}
	}
	if target.wipes != 0 || target.batches != 0 {
		t.Errorf("target touched: %d wipes, %d batches", target.wipes, target.batches)
	}
}

// TestRestoreWaitsForATransactionBelowTheCheckpoint: a checkpoint above
// the last stable offset but not above the log's end is not ahead of the
// changelog: another producer's transaction, begun before the store's last
// commit, holds the last stable offset below it. The restore waits for
// that transaction to end instead of failing with ErrCheckpointAhead,
// which made the engine wipe a store whose state was committed.
func TestRestoreWaitsForATransactionBelowTheCheckpoint(t *testing.T) {
	h := newHarness(t, 1, 1, nil)
	zombie, owner := h.transactional("zombie"), h.transactional("owner")
	if err := zombie.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	h.produce(zombie, 0, put("a", "zombie")) // offset 0: the last stable offset until it ends
	h.transaction(owner, 0, true, put("a", "1"), put("b", "1"))
	checkpoint := int64(3) // after the owner's records at 1 and 2; its marker is at 3

	var logs lockedBuffer
	r := h.restorer(WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	target := newMemTarget()
	tp := TopicPartition{Topic: testTopic, Partition: 0}
	type result struct {
		res RestoreResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := r.Restore(testContext(t), tp, checkpoint, target)
		done <- result{res, err}
	}()
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(logs.String(), "held there by a transaction still open") {
		select {
		case got := <-done:
			t.Fatalf("Restore = %+v, %v before the zombie's transaction ended; want it to wait", got.res, got.err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the restore never said it waits; log:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := zombie.EndTransaction(context.Background(), kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
	got := <-done
	if got.err != nil {
		t.Fatalf("Restore after the zombie's transaction aborted: %v", got.err)
	}
	if want := newMemTarget().data; target.wipes != 0 || !maps.Equal(target.data, want) {
		t.Errorf("the store was wiped (%d times) or written (%v, want %v): its state was committed, and the aborted record must not reach it", target.wipes, target.data, want)
	}
	if got.res.StartOffset != checkpoint || got.res.Full {
		t.Errorf("restore %+v, want a tail restore from the checkpoint %d", got.res, checkpoint)
	}
}

func TestRestoreCheckpointBelowLogStart(t *testing.T) {
	h := newHarness(t, 1, 1, nil)
	records := someRecords(50)
	h.produce(h.producer, 0, records...)
	if err := h.cluster.DeleteRecords(testTopic, 0, 30); err != nil {
		t.Fatal(err)
	}
	target := newMemTarget()
	tp := TopicPartition{Topic: testTopic, Partition: 0}
	res, err := h.restorer().Restore(testContext(t), tp, 10, target)
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, res, RestoreResult{Partition: tp, StartOffset: 30, EndOffset: 50, Full: true, Records: 20})
	if target.wipes != 1 {
		t.Errorf("Wipe called %d times, want once", target.wipes)
	}
	if want := model(records[30:]...); !maps.Equal(target.data, want) {
		t.Errorf("store = %v, want %v", target.data, want)
	}
}

// TestRestoreTransactions restores a partition whose tail is an aborted
// transaction followed by a committed one, so that the last offsets are
// transaction markers.
func TestRestoreTransactions(t *testing.T) {
	h := newHarness(t, 1, 1, nil)
	txn := h.transactional("producer-1")
	h.produce(h.producer, 0, put("a", "1"), put("b", "1"))
	h.transaction(txn, 0, false, put("a", "aborted"), del("b"), put("c", "aborted"))
	h.transaction(txn, 0, true, put("b", "2"), put("d", "1"))
	h.transaction(txn, 0, false, put("d", "aborted"))

	listed, err := h.adm.ListEndOffsets(context.Background(), testTopic)
	if err != nil {
		t.Fatal(err)
	}
	hwm, _ := listed.Lookup(testTopic, 0)

	target := newMemTarget()
	tp := TopicPartition{Topic: testTopic, Partition: 0}
	res, err := h.restorer().Restore(testContext(t), tp, NoCheckpoint, target)
	if err != nil {
		t.Fatal(err)
	}
	// Two plain records, a transaction of three records and its marker, a
	// transaction of two and its marker, one of one and its marker.
	if hwm.Offset != 11 {
		t.Fatalf("the partition ends at %d, want 11", hwm.Offset)
	}
	checkResult(t, res, RestoreResult{Partition: tp, StartOffset: 0, EndOffset: 11, Full: true, Records: 4})
	if want := map[string]string{"a": "1", "b": "2", "d": "1"}; !maps.Equal(target.data, want) {
		t.Errorf("store = %v, want %v", target.data, want)
	}
	for _, r := range target.records {
		if r.Attrs.IsControl() {
			t.Errorf("control record at offset %d applied", r.Offset)
		}
	}
}

// TestRestoreEndsBeforeOpenTransaction restores a partition whose last
// stable offset follows records of an aborted transaction whose abort
// marker lies beyond it, behind another producer's open transaction. No
// record and no marker is readable below the end offset there, so a reader
// that waits to see the offset before the end never finishes.
func TestRestoreEndsBeforeOpenTransaction(t *testing.T) {
	h := newHarness(t, 1, 1, nil)
	p1, p2 := h.transactional("producer-1"), h.transactional("producer-2")
	h.produce(h.producer, 0, put("a", "1"))

	if err := p1.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	h.produce(p1, 0, put("a", "aborted"), put("b", "aborted")) // offsets 1, 2
	if err := p2.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	open := h.produce(p2, 0, put("c", "open"))[0] // offset 3: the last stable offset from now on
	if err := p1.EndTransaction(context.Background(), kgo.TryAbort); err != nil {
		t.Fatal(err) // the abort marker goes to offset 4
	}
	defer func() {
		if err := p2.EndTransaction(context.Background(), kgo.TryAbort); err != nil {
			t.Error(err)
		}
	}()

	target := newMemTarget()
	tp := TopicPartition{Topic: testTopic, Partition: 0}
	res, err := h.restorer().Restore(testContext(t), tp, NoCheckpoint, target)
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, res, RestoreResult{Partition: tp, StartOffset: 0, EndOffset: open, Full: true, Records: 1})
	if want := map[string]string{"a": "1"}; !maps.Equal(target.data, want) {
		t.Errorf("store = %v, want %v", target.data, want)
	}
}

func TestRestoreCompacted(t *testing.T) {
	h := newHarness(t, 1, 1, map[string]string{"delete.retention.ms": "0"})
	records := someRecords(60)
	h.produce(h.producer, 0, records...)
	h.cluster.Compact()

	target := newMemTarget()
	tp := TopicPartition{Topic: testTopic, Partition: 0}
	res, err := h.restorer().Restore(testContext(t), tp, NoCheckpoint, target)
	if err != nil {
		t.Fatal(err)
	}
	if res.EndOffset != 60 || res.Records >= 60 {
		t.Fatalf("restored %d records up to %d; want fewer than 60 records (compacted) up to 60", res.Records, res.EndOffset)
	}
	if want := model(records...); !maps.Equal(target.data, want) {
		t.Errorf("store = %v, want %v", target.data, want)
	}
}

// TestRestoreRestartsWhenLogStartPasses deletes the records a restore is
// about to read, while it reads: the restore must start over from the new
// log start, with a wiped store.
func TestRestoreRestartsWhenLogStartPasses(t *testing.T) {
	h := newHarness(t, 1, 1, nil)
	records := someRecords(40)
	h.produce(h.producer, 0, records...)

	target := newMemTarget()
	target.onApply = func([]*kgo.Record) error {
		target.onApply = nil
		return h.cluster.DeleteRecords(testTopic, 0, 25)
	}
	tp := TopicPartition{Topic: testTopic, Partition: 0}
	// One record batch per fetch, so that the delete lands mid-restore.
	res, err := h.restorer(WithFetchMaxBytes(1)).Restore(testContext(t), tp, NoCheckpoint, target)
	if err != nil {
		t.Fatal(err)
	}
	if target.wipes != 2 || !res.Full || res.StartOffset != 25 || res.EndOffset != 40 {
		t.Errorf("%d wipes, result %+v; want 2 wipes and a full restore from 25 to 40", target.wipes, res)
	}
	if want := model(records[25:]...); !maps.Equal(target.data, want) {
		t.Errorf("store = %v, want %v", target.data, want)
	}
}

func TestRestoreRetriesLeaderErrors(t *testing.T) {
	h := newHarness(t, 1, 1, nil)
	records := someRecords(20)
	h.produce(h.producer, 0, records...)
	h.cluster.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Fetch}, Err: kerr.NotLeaderForPartition, Count: 2})
	h.cluster.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.ListOffsets}, Err: kerr.LeaderNotAvailable, Count: 1})

	target := newMemTarget()
	tp := TopicPartition{Topic: testTopic, Partition: 0}
	res, err := h.restorer().Restore(testContext(t), tp, NoCheckpoint, target)
	if err != nil {
		t.Fatal(err)
	}
	if res.Records != 20 || !maps.Equal(target.data, model(records...)) {
		t.Errorf("after retries: result %+v, store %v", res, target.data)
	}
}

func TestRestoreMissingTopicOrPartition(t *testing.T) {
	h := newHarness(t, 1, 2, nil)
	r := h.restorer()
	for _, tc := range []struct {
		tp   TopicPartition
		want string
	}{
		{TopicPartition{Topic: "no-such-changelog", Partition: 0}, `"no-such-changelog" does not exist`},
		{TopicPartition{Topic: testTopic, Partition: 5}, "has 2 partitions, so no partition 5"},
	} {
		_, err := r.Restore(testContext(t), tc.tp, NoCheckpoint, newMemTarget())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Restore(%s) = %v, want an error containing %q", tc.tp, err, tc.want)
		}
	}
}

func TestRestoreApplyError(t *testing.T) {
	h := newHarness(t, 1, 1, nil)
	h.produce(h.producer, 0, someRecords(10)...)
	errDiskFull := errors.New("disk full")
	target := newMemTarget()
	target.onApply = func([]*kgo.Record) error { return errDiskFull }
	_, err := h.restorer().Restore(testContext(t), TopicPartition{Topic: testTopic}, NoCheckpoint, target)
	if !errors.Is(err, errDiskFull) || !strings.Contains(err.Error(), testTopic+"-0") {
		t.Fatalf("Restore with a failing target: %v; want the target's error, naming the partition", err)
	}
}

func TestRestoreCanceledWhileApplying(t *testing.T) {
	h := newHarness(t, 1, 1, nil)
	h.produce(h.producer, 0, someRecords(30)...)
	ctx, cancel := context.WithCancel(testContext(t))
	target := newMemTarget()
	target.onApply = func([]*kgo.Record) error {
		cancel()
		return nil
	}
	res, err := h.restorer(WithFetchMaxBytes(1)).Restore(ctx, TopicPartition{Topic: testTopic}, NoCheckpoint, target)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Restore after cancel: %+v, %v; want context.Canceled", res, err)
	}
	if res.Records >= 30 {
		t.Errorf("applied %d records after the cancel", res.Records)
	}
}

func TestRestoreCanceledWhileFetching(t *testing.T) {
	h := newHarness(t, 1, 1, nil)
	h.produce(h.producer, 0, someRecords(5)...)
	fetching := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	h.cluster.ControlKey(int16(kmsg.Fetch), func(kmsg.Request) (kmsg.Response, error, bool) {
		once.Do(func() { close(fetching) })
		h.cluster.SleepControl(func() { <-release })
		return nil, nil, false
	})
	defer close(release)

	ctx, cancel := context.WithCancel(testContext(t))
	done := make(chan error, 1)
	r := h.restorer()
	go func() {
		_, err := r.Restore(ctx, TopicPartition{Topic: testTopic}, NoCheckpoint, newMemTarget())
		done <- err
	}()
	<-fetching
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Restore canceled mid-fetch: %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Restore did not return after its context was canceled")
	}
}

func TestRestoreAll(t *testing.T) {
	h := newHarness(t, 3, 6, nil)
	want := make([]map[string]string, 6)
	for p := range int32(6) {
		records := someRecords(10 + int(p)*3)
		h.produce(h.producer, p, records...)
		want[p] = model(records...)
	}

	var jobs []RestoreJob
	var targets []*memTarget
	for p := range int32(6) {
		target := newMemTarget()
		checkpoint := NoCheckpoint
		if p%2 == 1 {
			checkpoint = 0
			clear(target.data)
		}
		jobs = append(jobs, RestoreJob{Partition: TopicPartition{Topic: testTopic, Partition: p}, Checkpoint: checkpoint, Target: target})
		targets = append(targets, target)
	}
	missing := TopicPartition{Topic: "missing-changelog", Partition: 0}
	jobs = append(jobs, RestoreJob{Partition: missing, Checkpoint: NoCheckpoint, Target: newMemTarget()})

	results, errs := h.restorer(WithConcurrency(2)).RestoreAll(testContext(t), jobs)
	for i, target := range targets {
		if errs[i] != nil {
			t.Errorf("job %d: %v", i, errs[i])
			continue
		}
		if results[i].Partition != jobs[i].Partition || results[i].EndOffset != int64(10+i*3) {
			t.Errorf("job %d: result %+v", i, results[i])
		}
		if !maps.Equal(target.data, want[i]) {
			t.Errorf("job %d: store = %v, want %v", i, target.data, want[i])
		}
	}
	if err := errs[6]; err == nil || !strings.Contains(err.Error(), missing.Topic) {
		t.Errorf("job for a missing topic: %v, want an error naming it", err)
	}
}

func TestRestoreLogsProgress(t *testing.T) {
	h := newHarness(t, 1, 1, nil)
	h.produce(h.producer, 0, someRecords(10)...)
	var buf bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: &buf, mu: &mu}, nil))
	r := h.restorer(WithLogger(logger), WithProgressInterval(time.Nanosecond), WithFetchMaxBytes(1))
	if _, err := r.Restore(testContext(t), TopicPartition{Topic: testTopic}, NoCheckpoint, newMemTarget()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	logs := buf.String()
	for _, want := range []string{
		"restoring " + testTopic + "-0 in full: offsets 0 to 10 (no checkpoint)",
		"restoring " + testTopic + "-0: 1/10 offsets, 1 records applied",
		"restored " + testTopic + "-0: 10 records up to offset 10",
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
}

// batchCounter is a kgo hook that notes the size of each record batch
// produced.
type batchCounter struct {
	mu         sync.Mutex
	batchSizes []int
}

func (b *batchCounter) OnProduceBatchWritten(_ kgo.BrokerMetadata, _ string, _ int32, m kgo.ProduceBatchMetrics) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.batchSizes = append(b.batchSizes, m.NumRecords)
}

func (b *batchCounter) sizes() []int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.batchSizes)
}

func sum(ns []int) (total int) {
	for _, n := range ns {
		total += n
	}
	return total
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestNewRestorerValidatesOptions(t *testing.T) {
	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for name, opt := range map[string]RestoreOption{
		"WithLogger":           WithLogger(nil),
		"WithProgressInterval": WithProgressInterval(0),
		"WithBatchSize":        WithBatchSize(0),
		"WithFetchMaxBytes":    WithFetchMaxBytes(0),
		"WithConcurrency":      WithConcurrency(-1),
	} {
		if _, err := NewRestorer(cl, opt); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("NewRestorer with a bad %s: %v, want an error naming the option", name, err)
		}
	}
	if _, err := NewRestorer(nil); err == nil {
		t.Error("NewRestorer(nil) succeeded")
	}
}

// recordingListener records what a Restorer tells its listener.
type recordingListener struct {
	mu      sync.Mutex
	starts  []string
	batches []int64 // next offsets
	records int
	ends    []RestoreResult
}

func (l *recordingListener) OnRestoreStart(tp TopicPartition, from, end int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.starts = append(l.starts, fmt.Sprintf("%s %d..%d", tp, from, end))
}

func (l *recordingListener) OnBatchRestored(_ TopicPartition, next int64, records int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.batches = append(l.batches, next)
	l.records += records
}

func (l *recordingListener) OnRestoreEnd(_ TopicPartition, res RestoreResult, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err == nil {
		l.ends = append(l.ends, res)
	}
}

func TestRestoreListener(t *testing.T) {
	h := newHarness(t, 1, 1, nil)
	h.produce(h.producer, 0, someRecords(10)...)
	l := &recordingListener{}
	tp := TopicPartition{Topic: testTopic, Partition: 0}
	res, err := h.restorer(WithBatchSize(4), WithListener(l)).Restore(testContext(t), tp, 2, newMemTarget())
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{tp.String() + " 2..10"}; !slices.Equal(l.starts, want) {
		t.Errorf("starts = %q, want %q", l.starts, want)
	}
	if want := []int64{6, 10}; !slices.Equal(l.batches, want) {
		t.Errorf("batch next offsets = %v, want %v", l.batches, want)
	}
	if l.records != 8 || len(l.ends) != 1 || l.ends[0].Records != res.Records {
		t.Errorf("records = %d, ends = %+v; want 8 records and one end matching %+v", l.records, l.ends, res)
	}
}

// syncingTarget counts the Syncs a Restorer makes.
type syncingTarget struct {
	*memTarget
	syncs int
}

func (s *syncingTarget) Sync() error { s.syncs++; return nil }

// TestRestoreSyncsTheTarget: a target that is a Syncer is synced once at
// the end of a successful restore, and not after a failed one.
func TestRestoreSyncsTheTarget(t *testing.T) {
	h := newHarness(t, 1, 1, nil)
	h.produce(h.producer, 0, someRecords(5)...)
	tp := TopicPartition{Topic: testTopic, Partition: 0}
	target := &syncingTarget{memTarget: newMemTarget()}
	if _, err := h.restorer().Restore(testContext(t), tp, NoCheckpoint, target); err != nil {
		t.Fatal(err)
	}
	if target.syncs != 1 {
		t.Fatalf("Sync called %d times after a restore, want 1", target.syncs)
	}
	failing := &syncingTarget{memTarget: newMemTarget()}
	if _, err := h.restorer().Restore(testContext(t), tp, 99, failing); !errors.Is(err, ErrCheckpointAhead) {
		t.Fatalf("restore from a checkpoint ahead = %v, want ErrCheckpointAhead", err)
	}
	if failing.syncs != 0 {
		t.Fatalf("Sync called %d times after a failed restore, want 0", failing.syncs)
	}
}

// lockedBuffer is a bytes.Buffer safe for a logger's goroutines and the
// test's.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
