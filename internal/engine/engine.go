package engine

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddystream/eddy/internal/task"
	"github.com/eddystream/eddy/metrics"
	"github.com/eddystream/eddy/processor"
	"github.com/eddystream/eddy/rebalance"
	"github.com/eddystream/eddy/topology"
)

// Config is the engine's configuration, validated by package eddy.
type Config struct {
	ApplicationID  string
	Brokers        []string
	StateDir       string
	CommitInterval time.Duration
	Workers        int
	KafkaOptions   []kgo.Opt
	Logger         *slog.Logger
	// SkipBadRecords selects the log-and-skip deserialization handler.
	SkipBadRecords bool
	// SkipProcessingErrors selects the log-and-skip processing handler.
	SkipProcessingErrors bool
	// DeadLetterTopic receives skipped records ("" for none).
	DeadLetterTopic string
	// ExactlyOnce commits outputs, changelogs and input offsets in one
	// transaction per worker.
	ExactlyOnce bool
	// NoProduceRetries fails a record at its first produce error instead
	// of letting the client retry transient ones.
	NoProduceRetries bool
	Replication      int16
	SessionTimeout   time.Duration
	// HeartbeatInterval is how often members heartbeat, and so how soon
	// they learn that a rebalance started.
	HeartbeatInterval time.Duration
	// InstanceID, if set, makes every worker a static group member with
	// instance id <InstanceID>-<worker>.
	InstanceID string
	// Endpoint and Rack are reported in the join metadata.
	Endpoint, Rack string
	// NumStandbys, AcceptableRecoveryLag, MaxWarmups and ProbingInterval
	// configure the assignor (see rebalance.Config).
	NumStandbys           int
	AcceptableRecoveryLag int64
	MaxWarmups            int
	ProbingInterval       time.Duration
	// Metrics receives the engine's metrics. Required.
	Metrics *metrics.Metrics
}

// Engine runs a topology. Run it once.
type Engine struct {
	cfg     Config
	top     *topology.Topology
	log     *slog.Logger
	specs   map[int]*task.Spec
	layout  *layout
	procID  string
	skipped atomic.Int64
	// cache is the block cache every persistent store of the process
	// shares, so one budget covers them all however many tasks run here.
	cache *pebble.Cache
	// adm lists changelog end offsets when a worker leads a rebalance.
	adm      *kadm.Client
	standbys *standbyManager
	running  runningSet
	metrics  *engineMetrics
	// balancers holds each running worker's balancer, for readiness.
	balancers struct {
		sync.Mutex
		list []*rebalance.Balancer
	}
	// failed holds the error that stopped the engine.
	failed atomic.Pointer[error]
}

// storeCacheBytes is the size of the shared block cache of the persistent
// stores.
const storeCacheBytes = 64 << 20

// New returns an engine for top.
func New(top *topology.Topology, cfg Config) *Engine {
	e := &Engine{cfg: cfg, top: top, log: cfg.Logger, specs: map[int]*task.Spec{}}
	subOf := map[string]int{}
	for _, s := range top.TaskSpecs(cfg.ApplicationID) {
		e.specs[s.ID] = s
		for _, st := range s.Stores {
			if st.ChangelogTopic != "" {
				subOf[st.ChangelogTopic] = s.ID
			}
		}
	}
	e.metrics = newEngineMetrics(cfg.Metrics, subOf)
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
// shutdown: nil) or a worker fails (its error).
func (e *Engine) Run(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			e.failed.Store(&err)
		}
	}()
	// Locked before anything else, the process id included: a second
	// instance on this directory would take the same id and tasks' state.
	// Released after the workers and the standbys have stopped (deferred
	// before them).
	dir := filepath.Join(e.cfg.StateDir, e.cfg.ApplicationID)
	lock, err := lockStateDir(dir)
	if err != nil {
		return err
	}
	defer lock.unlock()
	admCl, err := kgo.NewClient(e.clientOpts()...)
	if err != nil {
		return fmt.Errorf("eddy: create admin client: %w", err)
	}
	defer admCl.Close()
	e.adm = kadm.NewClient(admCl)
	setupCtx, cancelSetup := context.WithTimeout(ctx, 60*time.Second)
	e.layout, err = setupTopics(setupCtx, e.adm, e.top, e.cfg.ApplicationID, e.cfg.Replication, e.cfg.DeadLetterTopic)
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
	e.cache = pebble.NewCache(storeCacheBytes)
	// Each open store holds its own reference; this one is released once
	// every worker has stopped and closed its stores.
	defer e.cache.Unref()
	if e.standbys, err = newStandbyManager(e); err != nil {
		return err
	}
	// Deferred after the cache's Unref, so it runs before: the standby
	// stores use the cache.
	defer e.standbys.close()
	e.log.Info("eddy starting", "application", e.cfg.ApplicationID, "process", e.procID, "workers", e.cfg.Workers, "tasks_per_subtopology", e.layout.partitions)

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for i := 0; i < e.cfg.Workers; i++ {
		w, err := newWorker(e, i)
		if err != nil {
			cancel()
			wg.Wait()
			return err
		}
		e.balancers.Lock()
		e.balancers.list = append(e.balancers.list, w.bal)
		e.balancers.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.run(runCtx); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
				cancel()
			}
		}()
	}
	wg.Wait()
	return first
}

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

// Alive reports whether the engine runs: nil until it fails.
func (e *Engine) Alive() error {
	if err := e.failed.Load(); err != nil {
		return *err
	}
	return nil
}

// Ready reports whether every active task of the process runs: nil once
// every worker has received its first assignment and no active task is
// being restored.
func (e *Engine) Ready() error {
	if err := e.Alive(); err != nil {
		return err
	}
	e.balancers.Lock()
	bals := slices.Clone(e.balancers.list)
	e.balancers.Unlock()
	if len(bals) < e.cfg.Workers {
		return fmt.Errorf("starting: %d of %d workers created", len(bals), e.cfg.Workers)
	}
	running := map[processor.TaskID]bool{}
	for _, id := range e.running.snapshot() {
		running[id] = true
	}
	pending := 0
	for i, b := range bals {
		a, ok := b.LastAssignment()
		if !ok {
			return fmt.Errorf("starting: worker %d has no assignment yet", i)
		}
		for _, id := range a.ActiveTasks {
			if !running[id] {
				pending++
			}
		}
	}
	if pending > 0 {
		return fmt.Errorf("%d assigned active tasks are not running yet (restoring their state)", pending)
	}
	return nil
}
