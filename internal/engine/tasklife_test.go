package engine

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/eddystream/eddy/internal/changelog"
	"github.com/eddystream/eddy/internal/settings"
	"github.com/eddystream/eddy/internal/task"
	"github.com/eddystream/eddy/processor"
	"github.com/eddystream/eddy/state"
	"github.com/eddystream/eddy/state/pebblestore"
)

// TestTaskTransitions checks every pair of states against the tables: an
// allowed transition moves the task, any other panics with an
// *illegalTransitionError naming both states.
func TestTaskTransitions(t *testing.T) {
	all := []taskState{taskCreated, taskRestoring, taskRunning, taskSuspended, taskClosed}
	for _, tc := range []struct {
		kind  string
		table map[taskState][]taskState
	}{{"active", activeTransitions}, {"standby", standbyTransitions}} {
		for _, from := range all {
			for _, to := range all {
				allowed := false
				for _, ok := range tc.table[from] {
					allowed = allowed || ok == to
				}
				l := lifecycle{id: processor.TaskID{Subtopology: 1, Partition: 2}, kind: tc.kind, table: tc.table, state: from}
				err := func() (err error) {
					defer func() {
						if v := recover(); v != nil {
							err, _ = v.(error)
							if err == nil {
								t.Fatalf("%s %s->%s panicked with %v", tc.kind, from, to, v)
							}
						}
					}()
					l.to(to)
					return nil
				}()
				var illegal *illegalTransitionError
				switch {
				case allowed && err != nil:
					t.Errorf("%s %s->%s: %v, want allowed", tc.kind, from, to, err)
				case allowed && l.state != to:
					t.Errorf("%s %s->%s left the task %s", tc.kind, from, to, l.state)
				case !allowed && !errors.As(err, &illegal):
					t.Errorf("%s %s->%s: err %v, want an illegal transition", tc.kind, from, to, err)
				case !allowed && l.state != from:
					t.Errorf("%s %s->%s moved the task to %s", tc.kind, from, to, l.state)
				}
			}
		}
	}
	// A closed task goes nowhere.
	if len(activeTransitions[taskClosed]) != 0 || len(standbyTransitions[taskClosed]) != 0 {
		t.Error("closed must be final")
	}
}

// TestCheckpointNeverMovesBackwards: advance keeps the highest offset
// each persistent store reached; the file is written on demand (close)
// and once checkpointRecords offsets have passed since the last write,
// not on every commit; and a reopened task reads what was written.
func TestCheckpointNeverMovesBackwards(t *testing.T) {
	e := storeEngine(t)
	id := processor.TaskID{Subtopology: 0, Partition: 3}
	tp := changelog.TopicPartition{Topic: "app-s-changelog", Partition: 3}
	log := slog.New(slog.DiscardHandler)
	ts, err := e.openTaskStores(id, log, 0)
	if err != nil {
		t.Fatal(err)
	}
	ts.advance(map[changelog.TopicPartition]int64{tp: 500})
	ts.advance(map[changelog.TopicPartition]int64{tp: 120}) // an older result, as a late restore or collector
	if got := ts.checkpoint[tp]; got != 500 {
		t.Fatalf("checkpoint = %d after advancing to 500 then 120, want 500", got)
	}
	if ts.checkpointDue() {
		t.Fatal("a checkpoint 500 offsets on is due; the threshold is", checkpointRecords)
	}
	ts.advance(map[changelog.TopicPartition]int64{tp: 500 + checkpointRecords})
	if !ts.checkpointDue() {
		t.Fatalf("a checkpoint %d offsets on is not due", 500+checkpointRecords)
	}
	if err := ts.writeCheckpoint(); err != nil {
		t.Fatal(err)
	}
	if ts.checkpointDue() {
		t.Fatal("still due right after writing")
	}
	want := int64(500 + checkpointRecords)
	if err := ts.close(); err != nil {
		t.Fatal(err)
	}
	cp, err := changelog.ReadCheckpoint(filepath.Join(ts.dir, checkpointFile))
	if err != nil || cp[tp] != want {
		t.Fatalf("checkpoint file = %v, %v; want %s at %d", cp, err, tp, want)
	}
	if got := e.taskOffsetSums()[id]; got != want {
		t.Fatalf("offset sum for the assignor = %d, want %d (from the written checkpoint, without reading files)", got, want)
	}
	ts, err = e.openTaskStores(id, log, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ts.close()
	if got := ts.checkpoint[tp]; got != want {
		t.Fatalf("reopened checkpoint = %d, want %d", got, want)
	}
	// A wipe forgets it, on disk and for the assignor.
	if err := ts.wipe(); err != nil {
		t.Fatal(err)
	}
	if _, ok := ts.checkpoint[tp]; ok {
		t.Fatal("the checkpoint survived a wipe")
	}
	if _, ok := e.taskOffsetSums()[id]; ok {
		t.Fatal("the assignor still sees the wiped checkpoint")
	}
}

// TestCollectorKeepsTheHighestAcknowledgedOffset: promises may complete
// out of order across partitions; a collector keeps, per changelog
// partition, the offset after the highest acknowledged record, and a new
// one (a task opened again, or reset) starts empty.
func TestCollectorKeepsTheHighestAcknowledgedOffset(t *testing.T) {
	c := newCollector()
	a := changelog.TopicPartition{Topic: "c", Partition: 0}
	b := changelog.TopicPartition{Topic: "c", Partition: 1}
	c.acked(a, 9)
	c.acked(a, 4)
	c.acked(b, 0)
	got := c.changelogEnds()
	if got[a] != 10 || got[b] != 1 || len(got) != 2 {
		t.Fatalf("changelogEnds = %v, want %s:10 %s:1", got, a, b)
	}
	got[a] = 0 // a copy: the caller cannot change the collector
	if c.changelogEnds()[a] != 10 {
		t.Fatal("changelogEnds returned the collector's own map")
	}
	if n := len(newCollector().changelogEnds()); n != 0 {
		t.Fatalf("a new collector has %d ends", n)
	}
}

// TestStoreOffsetWinsOverTheCheckpointFile: a store that records its
// changelog offset with its data (KIP-1035) restores from that offset. A
// checkpoint file claiming more (the store's write-ahead log lost its tail
// in a crash, see pebblestore's TestDamagedWALTailReadsAsTornWrite) costs
// a tail restore instead of a wrong result, and a store without a file
// keeps its data instead of being wiped.
func TestStoreOffsetWinsOverTheCheckpointFile(t *testing.T) {
	e := storeEngine(t)
	id := processor.TaskID{Subtopology: 0, Partition: 0}
	tp := changelog.TopicPartition{Topic: "app-s-changelog", Partition: 0}
	log := slog.New(slog.DiscardHandler)

	ts, err := e.openTaskStores(id, log, 0)
	if err != nil {
		t.Fatal(err)
	}
	rec := ts.backends["s"].(state.OffsetRecorder)
	if err := rec.ApplyAt([]state.Write{{Key: []byte("k"), Value: []byte("v")}}, 10, true); err != nil {
		t.Fatal(err)
	}
	if err := ts.close(); err != nil {
		t.Fatal(err)
	}

	// No checkpoint file: the store's own offset stands, its data stays.
	ts, err = e.openTaskStores(id, log, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := ts.checkpoint[tp]; !ok || got != 10 {
		t.Fatalf("without a checkpoint file the restore starts at %d (%v), want the store's 10", got, ok)
	}
	if v, ok, err := ts.backends["s"].Get([]byte("k")); err != nil || !ok || string(v) != "v" {
		t.Fatalf("the store was wiped: Get = %q, %v, %v", v, ok, err)
	}
	if err := ts.close(); err != nil {
		t.Fatal(err)
	}

	// A file that claims more than the store holds.
	if err := changelog.WriteCheckpoint(filepath.Join(ts.dir, checkpointFile), changelog.Checkpoint{tp: 20}); err != nil {
		t.Fatal(err)
	}
	ts, err = e.openTaskStores(id, log, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ts.close()
	if got := ts.checkpoint[tp]; got != 10 {
		t.Fatalf("with a checkpoint file at 20 and the store at 10 the restore starts at %d, want 10", got)
	}
	if jobs := ts.restoreJobs(nil); len(jobs) != 1 || jobs[0].Checkpoint != 10 {
		t.Fatalf("restore jobs = %+v, want one from offset 10", jobs)
	}
}

// TestRestoreWaitsForTheCloserToUnlock: a task assigned again while this
// process still closes it (the closer holds its directory's lock) waits
// for the lock in its restore goroutine, past one lock wait, instead of
// failing the worker.
func TestRestoreWaitsForTheCloserToUnlock(t *testing.T) {
	e := storeEngine(t)
	w := &worker{e: e, log: slog.New(slog.DiscardHandler)}
	rs := &restorer{w: w}
	id := processor.TaskID{Subtopology: 0, Partition: 0}
	held, err := e.openTaskStores(id, w.log, 0)
	if err != nil {
		t.Fatal(err)
	}
	released := make(chan struct{})
	go func() {
		time.Sleep(300 * time.Millisecond) // several lock waits of 50 ms
		held.close()
		close(released)
	}()
	ts, err := rs.openWaiting(context.Background(), id, 50*time.Millisecond)
	if err != nil {
		t.Fatalf("openWaiting = %v, want the stores once the closer let go", err)
	}
	<-released
	ts.close()
}

// storeEngine is an engine, not running, whose one sub-topology has one
// logged Pebble store "s" (changelog app-s-changelog), for tests of a
// task's local state.
func storeEngine(t *testing.T) *Engine {
	t.Helper()
	sup, err := pebblestore.NewSupplier()
	if err != nil {
		t.Fatal(err)
	}
	return &Engine{
		cfg:   Config{Settings: settings.Settings{StateDir: t.TempDir(), ApplicationID: "app", TaskTimeout: time.Minute}, DefaultSupplier: sup},
		specs: map[int]*task.Spec{0: {ID: 0, Stores: []task.StoreSpec{{Name: "s", Kind: state.KindKeyValue, ChangelogTopic: "app-s-changelog"}}}},
	}
}
