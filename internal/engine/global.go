package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddystream/eddy/internal/changelog"
	"github.com/eddystream/eddy/internal/task"
	"github.com/eddystream/eddy/state"
)

// globalManager keeps the process's global stores (topology.
// GlobalTableFrom), one copy per process shared by every worker, as Kafka
// Streams' GlobalStreamThread. Run bootstraps them before it creates any
// worker: each store reads every partition of its topic from the log
// start up to the last stable offset listed when the bootstrap began
// (read_committed, through the changelog restorer, which sees past
// transaction markers). Then the manager's goroutine (run, owned by Run)
// consumes the topic from there on and applies each fetch to the stores.
//
// The stores are written by that goroutine alone and read by the tasks of
// every worker through task.GlobalStore, whose mutex serializes the two:
// a task's lookup sees every record applied so far, which is unrelated to
// what the task itself has committed, and can be behind or ahead of the
// stream record's time (as in Kafka Streams). Persistent stores are not
// checkpointed: every start wipes them and bootstraps in full.
type globalManager struct {
	e      *Engine
	log    *slog.Logger
	stores []*globalStore
	// typed are the stores' typed views by name, for task.Config.Globals.
	typed map[string]any
	// next is, per topic and partition, the offset the updater starts at.
	next map[string]map[int32]kgo.Offset
}

// globalStore is one global store and its backend.
type globalStore struct {
	spec    task.GlobalSpec
	backend state.Backend
	store   *task.GlobalStore
}

// openGlobals opens the backends of the topology's global stores, empty,
// under <state-dir>/<application-id>/global/<store>.
func openGlobals(e *Engine, specs []task.GlobalSpec) (*globalManager, error) {
	g := &globalManager{e: e, log: e.log.With("component", "global"), typed: map[string]any{}, next: map[string]map[int32]kgo.Offset{}}
	for _, spec := range specs {
		sup := spec.Supplier
		if sup == nil {
			sup = e.cfg.DefaultSupplier
		}
		dir := filepath.Join(e.cfg.StateDir, e.cfg.ApplicationID, "global", spec.Name)
		// No checkpoint is kept: what a persistent store holds from a
		// previous run is dropped, and the bootstrap reads the topic in
		// full.
		if err := sup.Destroy(dir); err != nil {
			g.close()
			return nil, fmt.Errorf("eddy: global store %q: wipe %s: %w", spec.Name, dir, err)
		}
		b, err := sup.Open(dir, g.log.With("store", spec.Name))
		if err != nil {
			g.close()
			return nil, fmt.Errorf("eddy: global store %q: open: %w", spec.Name, err)
		}
		gs := &globalStore{spec: spec, backend: b, store: task.NewGlobalStore(spec.Name, b)}
		g.stores = append(g.stores, gs)
		g.typed[spec.Name] = spec.Typed(gs.store)
	}
	return g, nil
}

// typedStores returns the stores' typed views by name (nil for an engine
// that has not opened them).
func (g *globalManager) typedStores() map[string]any {
	if g == nil {
		return nil
	}
	return g.typed
}

// bootstrap fills every global store from its topic, whose partition
// counts are given, up to the last stable offsets listed as it starts.
// Broker errors are retried until ctx ends.
func (g *globalManager) bootstrap(ctx context.Context, partitions map[string]int) error {
	if len(g.stores) == 0 {
		return nil
	}
	start := time.Now()
	cl, err := kgo.NewClient(g.e.clientOpts()...)
	if err != nil {
		return fmt.Errorf("eddy: create global bootstrap client: %w", err)
	}
	defer cl.Close()
	r, err := changelog.NewRestorer(cl, changelog.WithLogger(g.log))
	if err != nil {
		return err
	}
	var jobs []changelog.RestoreJob
	for _, gs := range g.stores {
		for p := range partitions[gs.spec.Topic] {
			jobs = append(jobs, changelog.RestoreJob{
				Partition:  changelog.TopicPartition{Topic: gs.spec.Topic, Partition: int32(p)},
				Checkpoint: changelog.NoCheckpoint,
				Target:     &globalTarget{store: gs.store, tp: fmt.Sprintf("%s-%d", gs.spec.Topic, p)},
			})
		}
	}
	results, errs := r.RestoreAll(ctx, jobs)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("eddy: bootstrap the global stores: %w", err)
	}
	var records int64
	for i, res := range results {
		tp := jobs[i].Partition
		if g.next[tp.Topic] == nil {
			g.next[tp.Topic] = map[int32]kgo.Offset{}
		}
		g.next[tp.Topic][tp.Partition] = kgo.NewOffset().At(res.EndOffset)
		records += res.Records
	}
	g.log.Info(fmt.Sprintf("bootstrapped %d global stores: %d records in %s", len(g.stores), records, time.Since(start).Round(time.Millisecond)),
		"stores", len(g.stores), "records", records, "duration", time.Since(start))
	return nil
}

// run keeps the global stores up to date until ctx ends (nil) or a store
// fails to apply a record (the error). Fetch errors are logged and
// retried by the client: a broker outage delays updates, it does not
// stop them.
func (g *globalManager) run(ctx context.Context) error {
	if len(g.stores) == 0 {
		return nil
	}
	if hook := g.e.testing.beforeGlobalUpdates; hook != nil {
		hook(ctx)
	}
	byTopic := map[string]*globalStore{}
	for _, gs := range g.stores {
		byTopic[gs.spec.Topic] = gs
	}
	cl, err := kgo.NewClient(g.e.clientOpts(
		kgo.ConsumePartitions(g.next),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Retention that deleted records not yet read: go on from the
		// log start, as Kafka Streams' global consumer resets.
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(500*time.Millisecond),
	)...)
	if err != nil {
		return fmt.Errorf("eddy: create global store client: %w", err)
	}
	defer cl.Close()
	var batch []state.Write
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		fs.EachError(func(topic string, p int32, err error) {
			g.log.Warn("reading a global table's topic failed; retrying", "topic", topic, "partition", p, "err", err)
		})
		var failed error
		fs.EachTopic(func(ft kgo.FetchTopic) {
			gs := byTopic[ft.Topic]
			if gs == nil || failed != nil {
				return
			}
			batch = batch[:0]
			ft.EachRecord(func(r *kgo.Record) {
				if w, ok := globalWrite(r); ok {
					batch = append(batch, w)
				}
			})
			if len(batch) > 0 {
				if err := gs.store.Apply(batch); err != nil {
					failed = fmt.Errorf("eddy: global store %q: apply records of %s: %w", gs.spec.Name, ft.Topic, err)
				}
			}
			clear(batch)
		})
		if failed != nil {
			return failed
		}
	}
}

// close closes the stores' backends. Run calls it once no worker reads
// them.
func (g *globalManager) close() {
	for _, gs := range g.stores {
		if err := gs.backend.Close(); err != nil {
			g.log.Warn("closing a global store failed", "store", gs.spec.Name, "err", err)
		}
	}
}

// globalWrite is the store write of a record of a global table's topic: a
// null value deletes the key; a record with a null key has none (Kafka
// Streams drops it).
func globalWrite(r *kgo.Record) (state.Write, bool) {
	if r.Key == nil {
		return state.Write{}, false
	}
	return state.Write{Key: r.Key, Value: r.Value, Delete: r.Value == nil}, true
}

// globalTarget bootstraps one partition of a global store's topic into
// the store.
type globalTarget struct {
	store *task.GlobalStore
	tp    string
	// wiped is set once the restorer asked for a wipe, which it does
	// first (the store starts empty) and again only if the log start
	// moved past its position while it read.
	wiped bool
	batch []state.Write
}

// Wipe is a no-op the first time: the store was opened empty. Another
// wipe would have to delete the keys of this partition alone, which the
// store cannot tell from the others': the bootstrap fails instead, and a
// restart reads the topic afresh.
func (t *globalTarget) Wipe() error {
	if t.wiped {
		return fmt.Errorf("retention deleted records of %s while the global store read them: restart the instance to bootstrap it again", t.tp)
	}
	t.wiped = true
	return nil
}

func (t *globalTarget) ApplyBatch(recs []*kgo.Record) error {
	t.batch = t.batch[:0]
	for _, r := range recs {
		if w, ok := globalWrite(r); ok {
			t.batch = append(t.batch, w)
		}
	}
	err := t.store.Apply(t.batch)
	clear(t.batch)
	return err
}
