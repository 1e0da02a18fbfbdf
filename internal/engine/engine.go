package engine

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddystream/eddy/internal/metrics"
	"github.com/eddystream/eddy/internal/settings"
	"github.com/eddystream/eddy/internal/task"
	"github.com/eddystream/eddy/processor"
	"github.com/eddystream/eddy/state"
	"github.com/eddystream/eddy/topology"
)

// Config is the engine's configuration: the application's settings, as
// package eddy's options set and validated them (the engine takes them
// literally), and the metrics to record into.
type Config struct {
	settings.Settings
	// Metrics receives the engine's metrics. Required.
	Metrics *metrics.Metrics
	// DefaultSupplier makes the backends of the stores declared without a
	// supplier of their own. Required; package eddy fills it with a persistent
	// supplier whose stores share one block cache.
	DefaultSupplier state.BackendSupplier
}

// Engine runs a topology. Run it once.
type Engine struct {
	cfg   Config
	top   *topology.Topology
	log   *slog.Logger
	specs map[int]*task.Spec
	// written are the topics the workers produce to: sinks, changelogs
	// and the dead-letter topic (what a failed commit's diagnosis
	// looks at).
	written []string
	layout  *layout
	procID  string
	skipped atomic.Int64
	// adm lists changelog end offsets when a worker leads a rebalance.
	adm      *kadm.Client
	standbys *standbyManager
	running  runningSet
	metrics  *engineMetrics
	// workers holds the running workers, for the probes.
	workers struct {
		sync.Mutex
		list []*worker
	}
	// failed holds the error that stopped the engine.
	failed atomic.Pointer[error]
	// stopping is set once Run's context has ended.
	stopping atomic.Bool
	// diskSums holds the offset sum of each task's checkpoint on disk
	// (see taskOffsetSums).
	diskSums struct {
		sync.Mutex
		m map[processor.TaskID]int64
	}
	// closer closes revoked tasks' stores off the group callbacks.
	closer *closer
	// globals keeps the global stores (global.go); set before the
	// workers are created.
	globals *globalManager
	// bootstrapping is set while the global stores bootstrap, for the
	// probes.
	bootstrapping atomic.Bool
	// testing holds hooks that tests of the engine set before Run.
	testing testHooks
}

// testHooks let tests of the engine reach into it; all are nil or zero
// outside them.
type testHooks struct {
	// maxProcess bounds the records a task processes per step.
	maxProcess int
	// beforeStep runs on the loop, with w.mu held, before each step.
	beforeStep func(w *worker, fetches kgo.Fetches)
	// beforeOpenStore runs before a persistent store is opened.
	beforeOpenStore func(dir string)
	// beforeGlobalUpdates runs on the global stores' updater goroutine,
	// after the bootstrap, before it consumes anything.
	beforeGlobalUpdates func(ctx context.Context)
}

// New returns an engine for top.
func New(top *topology.Topology, cfg Config) *Engine {
	e := &Engine{cfg: cfg, top: top, log: cfg.Logger, specs: map[int]*task.Spec{}, closer: &closer{log: cfg.Logger}}
	subOf := map[string]int{}
	for _, s := range task.SpecsOf(top, cfg.ApplicationID) {
		e.specs[s.ID] = s
		for _, st := range s.Stores {
			if st.ChangelogTopic != "" {
				subOf[st.ChangelogTopic] = s.ID
			}
		}
	}
	e.metrics = newEngineMetrics(cfg.Metrics, subOf)
	seen := map[string]bool{}
	for _, st := range top.Subtopologies(cfg.ApplicationID) {
		for _, t := range st.SinkTopics {
			if !seen[t] {
				seen[t] = true
				e.written = append(e.written, t)
			}
		}
	}
	for _, t := range slices.Sorted(maps.Keys(subOf)) {
		if !seen[t] {
			seen[t] = true
			e.written = append(e.written, t)
		}
	}
	if cfg.DeadLetterTopic != "" && !seen[cfg.DeadLetterTopic] {
		e.written = append(e.written, cfg.DeadLetterTopic)
	}
	return e
}

// Skipped is the number of input records the skip handler dropped.
func (e *Engine) Skipped() int64 { return e.skipped.Load() }

// metadataMinAge lowers kgo's floor between metadata refreshes (5 s by
// default). A task produces to several topics for the first time at start
// (repartition, changelog, outputs); with the default, a first produce
// soon after another refresh can wait out the floor. eddy bench's word
// count over 1,000 records: median 3.7 s with the default, 1.1 s with this.
const metadataMinAge = 500 * time.Millisecond

// clientOpts are the options every client of the engine starts from.
func (e *Engine) clientOpts(extra ...kgo.Opt) []kgo.Opt {
	opts := []kgo.Opt{kgo.SeedBrokers(e.cfg.Brokers...), kgo.MetadataMinAge(metadataMinAge)}
	opts = append(opts, extra...)
	return append(opts, e.cfg.KafkaOptions...)
}

// Run sets up the topics and runs the workers until ctx ends (a clean
// shutdown: nil) or a worker fails (its error). Once ctx ends or a worker
// fails, the workers have ShutdownTimeout to stop; Run returns by then
// whatever they do, with an error if they did not stop.
func (e *Engine) Run(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			e.failed.Store(&err)
		}
	}()
	if e.cfg.DefaultSupplier == nil {
		return errors.New("eddy: the engine has no default store supplier (Config.DefaultSupplier)")
	}
	stopWatch := context.AfterFunc(ctx, func() { e.stopping.Store(true) })
	defer stopWatch()
	defer e.registerForAbort()() // eddy bench's RequestAbort (aborthook.go)
	// abandoned is set when Run returns while a worker did not stop: what
	// it may still use (the state directory, clients, stores) is then
	// left alone.
	abandoned := false
	// Locked before anything else, the process id included: a second
	// instance on this directory would take the same id and tasks' state.
	// Released after the workers and the standbys have stopped (deferred
	// before them).
	dir := filepath.Join(e.cfg.StateDir, e.cfg.ApplicationID)
	lock, err := lockStateDir(dir)
	if err != nil {
		return err
	}
	defer func() {
		if !abandoned {
			lock.unlock()
		}
	}()
	admCl, err := kgo.NewClient(e.clientOpts()...)
	if err != nil {
		return fmt.Errorf("eddy: create admin client: %w", err)
	}
	// Closed last, unless a worker that did not stop may still use it.
	defer func() {
		if !abandoned {
			admCl.Close()
		}
	}()
	e.adm = kadm.NewClient(admCl)
	setupCtx, cancelSetup := context.WithTimeout(ctx, 60*time.Second)
	e.layout, err = setupTopics(setupCtx, e.adm, e.top, e.cfg.ApplicationID, e.cfg.ReplicationFactor, e.cfg.DeadLetterTopic)
	cancelSetup()
	if err != nil {
		if ctx.Err() != nil {
			return nil // shut down while starting: not a failure
		}
		return err
	}
	if e.procID, err = loadProcessID(dir); err != nil {
		return err
	}
	e.loadOffsetSums()
	// The global stores are filled before any worker exists, so that the
	// first record a task processes sees them whole (Kafka Streams starts
	// its stream threads after the global thread's bootstrap).
	if e.globals, err = openGlobals(e, task.GlobalsOf(e.top, e.cfg.ApplicationID)); err != nil {
		return err
	}
	defer func() {
		if !abandoned {
			e.globals.close()
		}
	}()
	e.bootstrapping.Store(true)
	err = e.globals.bootstrap(ctx, e.layout.globals)
	e.bootstrapping.Store(false)
	if err != nil {
		if ctx.Err() != nil {
			return nil // shut down while starting: not a failure
		}
		return err
	}
	if e.standbys, err = newStandbyManager(e); err != nil {
		return err
	}
	defer func() {
		if !abandoned {
			e.standbys.close()
			if !e.closer.waitFor(e.cfg.ShutdownTimeout) {
				// A store that does not close (a disk that does not
				// answer): Run returns anyway, and the state directory
				// stays locked until the process ends.
				abandoned = true
				err = errors.Join(err, fmt.Errorf("eddy: closing the tasks' stores did not finish within %v (ShutdownTimeout): is the state directory's disk answering?", e.cfg.ShutdownTimeout))
			}
		}
	}()
	e.log.Info("eddy starting", "application", e.cfg.ApplicationID, "process", e.procID, "workers", e.cfg.Workers, "tasks_per_subtopology", e.layout.partitions)

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	fail := func(err error) {
		mu.Lock()
		if first == nil {
			first = err
			e.failed.Store(&err) // the probes fail at once
		}
		mu.Unlock()
		cancel() // the others stop, and the shutdown deadline runs
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := e.globals.run(runCtx); err != nil {
			fail(err)
		}
	}()
	for i := 0; i < e.cfg.Workers; i++ {
		w, err := newWorker(e, i)
		if err != nil {
			cancel()
			wg.Wait()
			return err
		}
		e.workers.Lock()
		e.workers.list = append(e.workers.list, w)
		e.workers.Unlock()
		// Told before the worker's own shutdown, and again with its
		// shutdown's errors after it.
		w.onFail = fail
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := e.runReplacing(runCtx, w)
			if err != nil {
				mu.Lock()
				if errors.Is(err, first) {
					// The failure told before, with its shutdown's errors.
					first = err
					e.failed.Store(&err)
				}
				mu.Unlock()
				fail(err)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		e.monitorLag(runCtx)
	}()
	stopped := make(chan struct{})
	go func() {
		wg.Wait()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-runCtx.Done():
		e.stopping.Store(true)
		select {
		case <-stopped:
		case <-time.After(e.cfg.ShutdownTimeout):
			// Unblock what waits on the producer (a flush, a transaction's
			// end) and give the workers a last moment.
			e.workers.Lock()
			for _, w := range e.workers.list {
				w.prodCancel()
			}
			e.workers.Unlock()
			select {
			case <-stopped:
			case <-time.After(shutdownGrace):
				abandoned = true
				mu.Lock()
				defer mu.Unlock()
				return errors.Join(first, fmt.Errorf("eddy: the shutdown did not finish within %v (ShutdownTimeout): a worker is stuck (see the log for what it waits on); what it did not commit will be processed again by the next owner of its tasks", e.cfg.ShutdownTimeout))
			}
		}
	}
	return first
}

// replaceWait is how long the engine waits before it replaces a worker
// whose transactional producer is wedged.
const replaceWait = time.Second

// runReplacing runs w, and replaces it with a new worker of the same index
// (new clients, a new group member) each time it stops because its
// transactional producer cannot recover in its client (see begin). The new
// worker carries the streak of failed attempts on, so TaskTimeout still
// bounds it. It returns the error of the last worker.
func (e *Engine) runReplacing(ctx context.Context, w *worker) error {
	for {
		err := w.run(ctx)
		var wedged *wedgedProducerError
		if err == nil || ctx.Err() != nil || !errors.As(err, &wedged) {
			return err
		}
		w.log.Warn("replacing the worker: its transactional producer cannot recover", "err", err, "stalled_for", time.Since(w.stall.since).Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return err
		case <-time.After(replaceWait):
		}
		next, nerr := newWorker(e, w.idx)
		if nerr != nil {
			return errors.Join(err, nerr)
		}
		next.stall, next.onFail = w.stall, w.onFail
		next.mu.Lock()
		next.publishHealth() // the probes see the stall go on
		next.mu.Unlock()
		e.workers.Lock()
		for i, x := range e.workers.list {
			if x == w {
				e.workers.list[i] = next
			}
		}
		e.workers.Unlock()
		w = next
	}
}

// shutdownGrace is how long Run still waits, after ShutdownTimeout, for
// workers whose producer waits it has just cancelled.
const shutdownGrace = time.Second

// loadProcessID reads the instance's process id from dir, creating it on
// first start, so that the group leader recognises the instance (and the
// state it has) across restarts.
func loadProcessID(dir string) (string, error) {
	path := filepath.Join(dir, "process-id")
	if b, err := os.ReadFile(path); err == nil {
		if id := strings.TrimSpace(string(b)); len(id) == 36 {
			return id, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("eddy: read process id: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("eddy: create state directory: %w", err)
	}
	var u [16]byte
	if _, err := rand.Read(u[:]); err != nil {
		return "", err
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	id := fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:])
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(id+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("eddy: write process id: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("eddy: write process id: %w", err)
	}
	return id, nil
}
