package engine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"sync/atomic"
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
// stream record's time (as in Kafka Streams). A persistent store's
// offsets are checkpointed after the bootstrap and at close, and the next
// start bootstraps from them.
type globalManager struct {
	e      *Engine
	log    *slog.Logger
	stores []*globalStore
	// typed are the stores' typed views by name, for task.Config.Globals.
	typed map[string]any
	// next is, per topic and partition, the offset the updater starts at.
	next map[string]map[int32]kgo.Offset
	// applied is, per partition, the offset after the last record applied
	// (the bootstrap's end, then the updater's): what close checkpoints.
	// The updater writes it; close reads it once the updater has stopped.
	applied changelog.Checkpoint
	// bootstrapped counts the records the bootstrap applied (for tests).
	bootstrapped atomic.Int64
}

// globalStore is one global store and its backend.
type globalStore struct {
	spec    task.GlobalSpec
	backend state.Backend
	store   *task.GlobalStore
	// checkpointPath is where a persistent store's offsets are written
	// ("" for a store that is not persistent).
	checkpointPath string
	// checkpoint holds the offsets the store's data has reached, read at
	// open (nil: the store opened empty).
	checkpoint changelog.Checkpoint
}

// openGlobals opens the backends of the topology's global stores under
// <state-dir>/<application-id>/global/<store>. A persistent store with a
// valid checkpoint (<store>.checkpoint beside its directory) keeps its
// data and bootstraps from the checkpoint's offsets; any other store
// opens empty.
func openGlobals(e *Engine, specs []task.GlobalSpec) (*globalManager, error) {
	g := &globalManager{e: e, log: e.log.With("component", "global"), typed: map[string]any{}, next: map[string]map[int32]kgo.Offset{}, applied: changelog.Checkpoint{}}
	for _, spec := range specs {
		gs, err := g.open(spec)
		if err != nil {
			g.close()
			return nil, fmt.Errorf("eddy: global store %q: %w", spec.Name, err)
		}
		g.stores = append(g.stores, gs)
		g.typed[spec.Name] = spec.Typed(gs.store)
	}
	return g, nil
}

func (g *globalManager) open(spec task.GlobalSpec) (*globalStore, error) {
	sup := spec.Supplier
	if sup == nil {
		sup = g.e.cfg.DefaultSupplier
	}
	root := filepath.Join(g.e.cfg.StateDir, g.e.cfg.ApplicationID, "global")
	dir := filepath.Join(root, spec.Name)
	gs := &globalStore{spec: spec}
	if sup.Persistent() {
		gs.checkpointPath = filepath.Join(root, spec.Name+".checkpoint")
		cp, err := changelog.ReadCheckpoint(gs.checkpointPath)
		switch {
		case err == nil:
			gs.checkpoint = cp
		case errors.Is(err, fs.ErrNotExist):
		case errors.Is(err, changelog.ErrCorruptCheckpoint):
			g.log.Warn("a global store's checkpoint is corrupt; bootstrapping in full", "store", spec.Name, "err", err)
		default:
			return nil, err
		}
	}
	if gs.checkpoint == nil {
		if err := g.wipe(sup, dir, gs.checkpointPath); err != nil {
			return nil, err
		}
	}
	b, err := sup.Open(dir, g.log.With("store", spec.Name))
	if errors.Is(err, state.ErrCorruptStore) {
		g.log.Warn("a global store is corrupt; bootstrapping in full", "store", spec.Name, "err", err)
		gs.checkpoint = nil
		if err := g.wipe(sup, dir, gs.checkpointPath); err != nil {
			return nil, err
		}
		b, err = sup.Open(dir, g.log.With("store", spec.Name))
	}
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	gs.backend, gs.store = b, task.NewGlobalStore(spec.Name, b)
	return gs, nil
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
	records, err := g.restore(ctx, r, partitions)
	if errors.Is(err, errWipeGlobal) || errors.Is(err, changelog.ErrCheckpointAhead) {
		// A checkpoint behind the log start or ahead of the log's end,
		// or a log start that passed the bootstrap: a store cannot drop
		// one partition's keys alone, so every store drops them all and
		// reads its topic in full.
		g.log.Warn("a global store must be bootstrapped in full", "err", err)
		for _, gs := range g.stores {
			gs.checkpoint = nil
			// The checkpoint goes first: a crash must not find it over
			// a store that lost its keys.
			if gs.checkpointPath != "" {
				if err := changelog.DeleteCheckpoint(gs.checkpointPath); err != nil {
					return fmt.Errorf("eddy: global store %q: %w", gs.spec.Name, err)
				}
			}
			if err := gs.store.Apply([]state.Write{{DeleteRange: true}}); err != nil {
				return fmt.Errorf("eddy: global store %q: wipe: %w", gs.spec.Name, err)
			}
		}
		records, err = g.restore(ctx, r, partitions)
	}
	if err != nil {
		return fmt.Errorf("eddy: bootstrap the global stores: %w", err)
	}
	g.bootstrapped.Store(records)
	g.writeCheckpoints()
	g.log.Info(fmt.Sprintf("bootstrapped %d global stores: %d records in %s", len(g.stores), records, time.Since(start).Round(time.Millisecond)),
		"stores", len(g.stores), "records", records, "duration", time.Since(start))
	return nil
}

// wipe destroys a store's directory, and its checkpoint (if any) first.
func (g *globalManager) wipe(sup state.BackendSupplier, dir, checkpoint string) error {
	if checkpoint != "" {
		if err := changelog.DeleteCheckpoint(checkpoint); err != nil {
			return err
		}
	}
	if err := sup.Destroy(dir); err != nil {
		return fmt.Errorf("wipe %s: %w", dir, err)
	}
	return nil
}

// errWipeGlobal is a globalTarget's refusal to wipe a store that holds
// other partitions' keys.
var errWipeGlobal = errors.New("a global store cannot wipe one partition's keys")

// restore runs the bootstrap's restores, from the stores' checkpoints,
// and returns the records applied.
func (g *globalManager) restore(ctx context.Context, r *changelog.Restorer, partitions map[string]int) (int64, error) {
	var jobs []changelog.RestoreJob
	for _, gs := range g.stores {
		for p := range partitions[gs.spec.Topic] {
			tp := changelog.TopicPartition{Topic: gs.spec.Topic, Partition: int32(p)}
			cp, ok := gs.checkpoint[tp]
			if !ok {
				cp = changelog.NoCheckpoint
			}
			jobs = append(jobs, changelog.RestoreJob{
				Partition:  tp,
				Checkpoint: cp,
				// A partition the checkpoint lacks has no keys in the
				// store: it may be wiped (a no-op).
				Target: &globalTarget{store: gs.store, tp: tp.String(), wipeable: gs.checkpoint == nil || !ok},
			})
		}
	}
	results, errs := r.RestoreAll(ctx, jobs)
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}
	var records int64
	for i, res := range results {
		tp := jobs[i].Partition
		if g.next[tp.Topic] == nil {
			g.next[tp.Topic] = map[int32]kgo.Offset{}
		}
		g.next[tp.Topic][tp.Partition] = kgo.NewOffset().At(res.EndOffset)
		g.applied[tp] = res.EndOffset
		records += res.Records
	}
	return records, nil
}

// writeCheckpoints writes the offsets applied to the persistent stores'
// checkpoints. Their backends apply every batch durably (state.Backend's
// Apply), so the data is at least as far on; a failure is logged, and the
// next start bootstraps from an older checkpoint or in full.
func (g *globalManager) writeCheckpoints() {
	for _, gs := range g.stores {
		if gs.checkpointPath == "" {
			continue
		}
		cp := changelog.Checkpoint{}
		for tp, off := range g.applied {
			if tp.Topic == gs.spec.Topic {
				cp[tp] = off
			}
		}
		if err := changelog.WriteCheckpoint(gs.checkpointPath, cp); err != nil {
			g.log.Warn("writing a global store's checkpoint failed", "store", gs.spec.Name, "err", err)
		}
	}
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
			next := map[int32]int64{}
			ft.EachRecord(func(r *kgo.Record) {
				next[r.Partition] = r.Offset + 1
				if w, ok := globalWrite(r); ok {
					batch = append(batch, w)
				}
			})
			if len(batch) > 0 {
				if err := gs.store.Apply(batch); err != nil {
					failed = fmt.Errorf("eddy: global store %q: apply records of %s: %w", gs.spec.Name, ft.Topic, err)
					return
				}
			}
			clear(batch)
			for p, off := range next {
				g.applied[changelog.TopicPartition{Topic: ft.Topic, Partition: p}] = off
			}
		})
		if failed != nil {
			return failed
		}
	}
}

// close checkpoints the persistent stores and closes the stores'
// backends. Run calls it once no worker reads them and the updater has
// stopped.
func (g *globalManager) close() {
	if len(g.applied) > 0 { // bootstrapped
		g.writeCheckpoints()
	}
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
	// wipeable says that the store holds no key of this partition, so a
	// wipe is a no-op. It holds until the first batch is applied.
	wipeable bool
	batch    []state.Write
}

// Wipe is a no-op while the store holds no key of the partition (the
// restorer asks for a wipe before a full restore). Otherwise it would
// have to delete the keys of this partition alone, which the store cannot
// tell from the others': it fails with errWipeGlobal, and the bootstrap
// starts over with the store emptied.
func (t *globalTarget) Wipe() error {
	if !t.wipeable {
		return fmt.Errorf("%s: %w", t.tp, errWipeGlobal)
	}
	return nil
}

func (t *globalTarget) ApplyBatch(recs []*kgo.Record) error {
	t.wipeable = false
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
