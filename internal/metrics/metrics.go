package metrics

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

const namespace = "eddy"

// Label names of the variable labels. The constant labels given to New must
// use other names.
const (
	labelTask      = "task"
	labelWorker    = "worker"
	labelResult    = "result"
	labelState     = "state"
	labelTopic     = "topic"
	labelPartition = "partition"
	labelStore     = "store"
	labelReason    = "reason"
)

// Histogram buckets, in the metric's unit.
var (
	// batchDurationBuckets spans 100µs, a small batch through a stateless
	// topology, to 10s, a batch stuck on a slow store or a huge poll.
	batchDurationBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	// batchRecordsBuckets spans one record to kgo's largest fetches.
	batchRecordsBuckets = prometheus.ExponentialBuckets(1, 4, 10) // 1 to 262144
	// commitDurationBuckets spans 1ms, an at-least-once commit on a local
	// broker, to 60s, a transaction held up by a rebalance or a slow ISR.
	commitDurationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
	// restoreDurationBuckets spans 10ms, an empty changelog, to two hours,
	// a large store restored from the start.
	restoreDurationBuckets = []float64{.01, .1, .5, 1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200}
)

// CommitResult is the outcome of a commit, the result label of
// eddy_commits_total.
type CommitResult string

// The commit results.
const (
	// CommitOK is a commit that made the worker's progress durable.
	CommitOK CommitResult = "ok"
	// CommitAborted is an exactly-once transaction that was aborted, for
	// example by a rebalance or a fenced producer epoch; the worker rewinds
	// and reprocesses from the last commit.
	CommitAborted CommitResult = "aborted"
	// CommitFailed is a commit that failed with an error.
	CommitFailed CommitResult = "failed"
)

var commitResults = []CommitResult{CommitOK, CommitAborted, CommitFailed}

// DropReason is why a task dropped a record on purpose, the reason label
// of eddy_dropped_records_total.
type DropReason string

// The drop reasons.
const (
	// DropNullKey is a record with a null key that a stream aggregation
	// skipped.
	DropNullKey DropReason = "null_key"
	// DropNullValue is a record with a null value that a stream
	// aggregation skipped.
	DropNullValue DropReason = "null_value"
	// DropInvalidTimestamp is an input record with a negative timestamp
	// that its source skipped.
	DropInvalidTimestamp DropReason = "invalid_timestamp"
	// DropLate is a record a windowed aggregation skipped because its
	// windows had closed (end plus grace at or before the stream time).
	DropLate DropReason = "late"
)

var dropReasons = []DropReason{DropNullKey, DropNullValue, DropInvalidTimestamp, DropLate}

// The values of the state label of eddy_tasks.
const (
	stateRestoring = "restoring" // an active task restoring its stores
	stateRunning   = "running"   // an active task processing records
	stateStandby   = "standby"   // a standby replica
)

// Metrics holds eddy's metrics for one application. Make it with New. Its
// methods and the handles it returns are safe for concurrent use.
type Metrics struct {
	taskConsumed          *prometheus.CounterVec
	taskProcessed         *prometheus.CounterVec
	taskProduced          *prometheus.CounterVec
	taskChangelogProduced *prometheus.CounterVec
	dropped               *prometheus.CounterVec
	restoreRemaining      *prometheus.GaugeVec
	restored              *prometheus.CounterVec
	standbyLag            *prometheus.GaugeVec
	storeSize             *prometheus.GaugeVec

	batchDuration  *prometheus.HistogramVec
	batchRecords   *prometheus.HistogramVec
	commits        *prometheus.CounterVec
	commitDuration *prometheus.HistogramVec
	rebalances     *prometheus.CounterVec
	generation     *prometheus.GaugeVec
	tasks          *prometheus.GaugeVec
	commitStall    *prometheus.GaugeVec

	restoreDuration prometheus.Observer
	consumerLag     *prometheus.GaugeVec

	// byTask are the vectors with a task label, which RemoveTask clears.
	byTask []*prometheus.MetricVec
	// byWorker are the vectors with a worker label, which RemoveWorker
	// clears.
	byWorker []*prometheus.MetricVec

	mu struct {
		sync.Mutex
		tasks   map[string]*TaskMetrics
		workers map[int]*WorkerMetrics
	}
}

// New creates eddy's metrics and registers them on reg. constLabels are
// added to every metric; the engine passes {"application": appID}, so that
// applications sharing a registry export distinct series. Their names must
// be valid Prometheus label names other than the variable labels (task,
// worker, result, state, topic, partition, store).
//
// A nil reg leaves the metrics unregistered but usable, for tests and
// benchmarks; New still checks the constant labels.
//
// New fails, registering nothing, when a metric cannot be registered. An
// error matching prometheus.AlreadyRegisteredError means reg already holds
// eddy's metrics with the same constant labels: two applications with one
// application id share the registry.
func New(reg prometheus.Registerer, constLabels prometheus.Labels) (*Metrics, error) {
	var all []namedCollector
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: name, Help: help, ConstLabels: constLabels,
		}, labels)
		all = append(all, namedCollector{prometheus.BuildFQName(namespace, "", name), v})
		return v
	}
	gauge := func(name, help string, labels ...string) *prometheus.GaugeVec {
		v := prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: name, Help: help, ConstLabels: constLabels,
		}, labels)
		all = append(all, namedCollector{prometheus.BuildFQName(namespace, "", name), v})
		return v
	}
	histogram := func(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
		v := prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: name, Help: help, ConstLabels: constLabels, Buckets: buckets,
		}, labels)
		all = append(all, namedCollector{prometheus.BuildFQName(namespace, "", name), v})
		return v
	}
	m := &Metrics{
		taskConsumed: counter("task_records_consumed_total",
			"Records the task took from its input partitions.", labelTask),
		taskProcessed: counter("task_records_processed_total",
			"Records the task ran through its topology.", labelTask),
		taskProduced: counter("task_records_produced_total",
			"Records the task sent to sink and repartition topics.", labelTask),
		taskChangelogProduced: counter("task_changelog_records_produced_total",
			"Records the task sent to the changelog topics of its stores.", labelTask),
		dropped: counter("dropped_records_total",
			"Records the task dropped on purpose, by reason: null_key or null_value (a stream aggregation skips records with a null key or value), invalid_timestamp (a source skips records with a negative timestamp), late (a windowed aggregation skips a record whose windows have closed, once per closed window).", labelTask, labelReason),
		restoreRemaining: gauge("restore_remaining_records",
			"Changelog records the task has left to restore before it can process input.", labelTask),
		restored: counter("restored_records_total",
			"Changelog records restored into the task's stores; rate() of it is the restore rate.", labelTask),
		standbyLag: gauge("standby_lag_records",
			"Changelog records the standby task has yet to apply to catch up with its active task.", labelTask),
		storeSize: gauge("store_size_bytes",
			"Approximate size of the store, as its backend reports it: bytes of keys and values in memory, or on disk for a persistent store.", labelTask, labelStore),

		batchDuration: histogram("process_batch_duration_seconds",
			"Time the worker took to process one polled batch through its tasks.", batchDurationBuckets, labelWorker),
		batchRecords: histogram("process_batch_records",
			"Records in each polled batch the worker processed.", batchRecordsBuckets, labelWorker),
		commits: counter("commits_total",
			"Commits by the worker, by result: ok, aborted (an exactly-once transaction was aborted) or failed.", labelWorker, labelResult),
		commitDuration: histogram("commit_duration_seconds",
			"Time the worker took to commit, whatever the result.", commitDurationBuckets, labelWorker),
		rebalances: counter("rebalances_total",
			"Assignments the worker received from its consumer group.", labelWorker),
		generation: gauge("group_generation",
			"Consumer group generation of the worker's latest assignment.", labelWorker),
		tasks: gauge("tasks",
			"Tasks the worker holds, by state: restoring, running or standby.", labelWorker, labelState),
		commitStall: gauge("commit_stalled_seconds",
			"How long the worker's commits have been failing, from the start of the first failed attempt; 0 once a commit succeeds.", labelWorker),

		restoreDuration: histogram("restore_duration_seconds",
			"Time a task took to restore its stores from their changelogs, from assignment to the end of restoration.",
			restoreDurationBuckets).WithLabelValues(),
		consumerLag: gauge("consumer_lag_records",
			"Records between the application's committed offset of the input partition and its end (its last stable offset under exactly-once).", labelTopic, labelPartition),
	}
	m.byTask = []*prometheus.MetricVec{
		m.taskConsumed.MetricVec, m.taskProcessed.MetricVec, m.taskProduced.MetricVec,
		m.taskChangelogProduced.MetricVec, m.dropped.MetricVec, m.restoreRemaining.MetricVec, m.restored.MetricVec,
		m.standbyLag.MetricVec, m.storeSize.MetricVec,
	}
	m.byWorker = []*prometheus.MetricVec{
		m.batchDuration.MetricVec, m.batchRecords.MetricVec, m.commits.MetricVec,
		m.commitDuration.MetricVec, m.rebalances.MetricVec, m.generation.MetricVec, m.tasks.MetricVec,
		m.commitStall.MetricVec,
	}
	m.mu.tasks = map[string]*TaskMetrics{}
	m.mu.workers = map[int]*WorkerMetrics{}

	if reg == nil {
		// A private registry checks the descriptors, which hold any error
		// in the constant labels until registration.
		reg = prometheus.NewRegistry()
	}
	if err := register(reg, all, constLabels); err != nil {
		return nil, err
	}
	return m, nil
}

// namedCollector is a metric vector and its full name, for errors.
type namedCollector struct {
	name string
	c    prometheus.Collector
}

// register registers every metric on reg, or none.
func register(reg prometheus.Registerer, all []namedCollector, constLabels prometheus.Labels) error {
	for i, c := range all {
		err := reg.Register(c.c)
		if err == nil {
			continue
		}
		for _, done := range all[:i] {
			reg.Unregister(done.c)
		}
		if errors.As(err, new(prometheus.AlreadyRegisteredError)) {
			return fmt.Errorf("metrics: register %s: the registry already holds eddy's metrics with constant labels %v (two applications with one application id on one registry?); give each application its own Registerer or distinct constant labels: %w", c.name, constLabels, err)
		}
		return fmt.Errorf("metrics: register %s with constant labels %v: %w; check that the constant labels have valid names, none of them task, worker, result, state, topic, partition or store, and that nothing else on the registry uses eddy's metric names", c.name, constLabels, err)
	}
	return nil
}

// Task returns the metrics of task id ("0_3"), creating them on first use:
// the record counters (and the dropped-records counter of each reason) at
// zero, so that rate() sees the task from its start;
// the restore, standby and store series when first set. Later calls return
// the same handle, which the caller should keep: its counters are the
// children of the vectors, so counting a record costs one atomic add and no
// label lookup.
//
// Call RemoveTask when the task leaves the member.
func (m *Metrics) Task(id string) *TaskMetrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t, ok := m.mu.tasks[id]; ok {
		return t
	}
	t := &TaskMetrics{
		Consumed:          m.taskConsumed.WithLabelValues(id),
		Processed:         m.taskProcessed.WithLabelValues(id),
		Produced:          m.taskProduced.WithLabelValues(id),
		ChangelogProduced: m.taskChangelogProduced.WithLabelValues(id),
		dropped:           make(map[DropReason]prometheus.Counter, len(dropReasons)),
		m:                 m,
		id:                id,
	}
	for _, r := range dropReasons {
		t.dropped[r] = m.dropped.WithLabelValues(id, string(r))
	}
	m.mu.tasks[id] = t
	return t
}

// RemoveTask deletes every series of task id, so that a task that left the
// member stops being exported. Handles of the task keep working but are no
// longer exported, and their setters create no series; a later Task(id)
// starts the task's counters again from zero, which rate() reads as a reset.
func (m *Metrics) RemoveTask(id string) {
	m.mu.Lock()
	t, ok := m.mu.tasks[id]
	delete(m.mu.tasks, id)
	m.mu.Unlock()
	if ok {
		// Marked first, under the handle's lock, so that no setter running
		// now creates a series after the deletes below.
		t.mu.Lock()
		defer t.mu.Unlock()
		t.mu.removed = true
	}
	for _, v := range m.byTask {
		v.DeletePartialMatch(prometheus.Labels{labelTask: id})
	}
}

// ObserveRestoreDuration records that a task took d to restore its stores.
func (m *Metrics) ObserveRestoreDuration(d time.Duration) {
	m.restoreDuration.Observe(d.Seconds())
}

// SetConsumerLag sets the lag of an input partition: records between the
// worker's consumed position and the partition's end (its last stable
// offset under exactly-once). Call RemoveConsumerLag when the partition is
// revoked, from the goroutine that sets it.
func (m *Metrics) SetConsumerLag(topic string, partition int32, records int64) {
	m.consumerLag.WithLabelValues(topic, strconv.FormatInt(int64(partition), 10)).Set(float64(records))
}

// RemoveConsumerLag deletes the lag series of a revoked input partition.
func (m *Metrics) RemoveConsumerLag(topic string, partition int32) {
	m.consumerLag.DeleteLabelValues(topic, strconv.FormatInt(int64(partition), 10))
}

// Worker returns the metrics of worker idx (0 to Workers-1), creating them
// on first use with every series at zero. Later calls return the same
// handle. Call RemoveWorker when the worker stops.
func (m *Metrics) Worker(idx int) *WorkerMetrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	if w, ok := m.mu.workers[idx]; ok {
		return w
	}
	label := strconv.Itoa(idx)
	w := &WorkerMetrics{
		batchDuration:  m.batchDuration.WithLabelValues(label),
		batchRecords:   m.batchRecords.WithLabelValues(label),
		commitDuration: m.commitDuration.WithLabelValues(label),
		rebalances:     m.rebalances.WithLabelValues(label),
		generation:     m.generation.WithLabelValues(label),
		commits:        make(map[CommitResult]prometheus.Counter, len(commitResults)),
		restoring:      m.tasks.WithLabelValues(label, stateRestoring),
		running:        m.tasks.WithLabelValues(label, stateRunning),
		standby:        m.tasks.WithLabelValues(label, stateStandby),
		commitStall:    m.commitStall.WithLabelValues(label),
	}
	for _, r := range commitResults {
		w.commits[r] = m.commits.WithLabelValues(label, string(r))
	}
	m.mu.workers[idx] = w
	return w
}

// RemoveWorker deletes every series of worker idx. Handles of the worker
// keep working but are no longer exported.
func (m *Metrics) RemoveWorker(idx int) {
	m.mu.Lock()
	delete(m.mu.workers, idx)
	m.mu.Unlock()
	for _, v := range m.byWorker {
		v.DeletePartialMatch(prometheus.Labels{labelWorker: strconv.Itoa(idx)})
	}
}

// TaskMetrics are the metrics of one task, returned by Metrics.Task.
type TaskMetrics struct {
	// Consumed counts records the task took from its input partitions.
	Consumed prometheus.Counter
	// Processed counts records the task ran through its topology.
	Processed prometheus.Counter
	// Produced counts records the task sent to sink and repartition
	// topics.
	Produced prometheus.Counter
	// ChangelogProduced counts records the task sent to its changelogs.
	ChangelogProduced prometheus.Counter

	// dropped holds the series of each DropReason; read-only once made.
	dropped map[DropReason]prometheus.Counter

	m  *Metrics
	id string
	mu struct {
		sync.Mutex
		removed bool
		// The series below are created when first set, so that a task
		// that never restores, or is never a standby, does not export
		// them.
		restoreRemaining prometheus.Gauge
		restored         prometheus.Counter
		standbyLag       prometheus.Gauge
		stores           map[string]prometheus.Gauge
	}
}

// Dropped counts a record the task dropped on purpose, for reason. The
// DropReason constants cost one atomic add; another reason makes its
// series on the spot.
func (t *TaskMetrics) Dropped(reason DropReason) {
	if c, ok := t.dropped[reason]; ok {
		c.Inc()
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.mu.removed {
		t.m.dropped.WithLabelValues(t.id, string(reason)).Inc()
	}
}

// SetRestoreRemaining sets how many changelog records the task has left to
// restore, summed over its stores. Set it to 0 when restoration ends.
func (t *TaskMetrics) SetRestoreRemaining(records int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if g := seriesLocked(t, &t.mu.restoreRemaining, t.m.restoreRemaining); g != nil {
		g.Set(float64(records))
	}
}

// AddRestored counts changelog records restored into the task's stores.
func (t *TaskMetrics) AddRestored(records int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c := seriesLocked(t, &t.mu.restored, t.m.restored); c != nil {
		c.Add(float64(records))
	}
}

// SetStandbyLag sets how many changelog records the standby task has yet
// to apply: the changelogs' end offsets minus its position, summed over its
// stores.
func (t *TaskMetrics) SetStandbyLag(records int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if g := seriesLocked(t, &t.mu.standbyLag, t.m.standbyLag); g != nil {
		g.Set(float64(records))
	}
}

// seriesLocked returns the task's series of vec, kept in *slot and made
// on first use, so that a task exports only the series it sets; nil after
// RemoveTask. t.mu is held.
func seriesLocked[T any](t *TaskMetrics, slot *T, vec interface{ WithLabelValues(...string) T }) T {
	var zero T
	if t.mu.removed {
		return zero
	}
	if any(*slot) == nil {
		*slot = vec.WithLabelValues(t.id)
	}
	return *slot
}

// ClearStandbyLag deletes the task's standby lag series: the process no
// longer keeps the task as a standby (it closed it, or promoted it to
// active).
func (t *TaskMetrics) ClearStandbyLag() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mu.standbyLag != nil {
		t.m.standbyLag.DeleteLabelValues(t.id)
		t.mu.standbyLag = nil
	}
}

// SetStoreSize sets the approximate size of one of the task's stores, as
// its backend's state.Sizer reports it.
func (t *TaskMetrics) SetStoreSize(store string, bytes int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mu.removed {
		return
	}
	g, ok := t.mu.stores[store]
	if !ok {
		if t.mu.stores == nil {
			t.mu.stores = map[string]prometheus.Gauge{}
		}
		g = t.m.storeSize.WithLabelValues(t.id, store)
		t.mu.stores[store] = g
	}
	g.Set(float64(bytes))
}

// WorkerMetrics are the metrics of one worker, returned by Metrics.Worker.
// The engine measures the durations it passes: this package reads no
// clock.
type WorkerMetrics struct {
	batchDuration  prometheus.Observer
	batchRecords   prometheus.Observer
	commitDuration prometheus.Observer
	rebalances     prometheus.Counter
	generation     prometheus.Gauge
	commits        map[CommitResult]prometheus.Counter // read-only once made
	restoring      prometheus.Gauge
	running        prometheus.Gauge
	standby        prometheus.Gauge
	commitStall    prometheus.Gauge
}

// ObserveBatch records that the worker took d to process one polled batch
// of records through its tasks. The latency is per batch, not per record:
// reading the clock for each record would cost more than processing many
// a record, and the record path reads no clock at all.
func (w *WorkerMetrics) ObserveBatch(d time.Duration, records int) {
	w.batchDuration.Observe(d.Seconds())
	w.batchRecords.Observe(float64(records))
}

// ObserveCommit counts a commit with its result and records how long it
// took. A result other than CommitOK, CommitAborted or CommitFailed counts
// as CommitFailed.
func (w *WorkerMetrics) ObserveCommit(result CommitResult, d time.Duration) {
	c, ok := w.commits[result]
	if !ok {
		c = w.commits[CommitFailed]
	}
	c.Inc()
	w.commitDuration.Observe(d.Seconds())
}

// SetCommitStall records how long the worker's commits have been failing:
// 0 once one succeeds.
func (w *WorkerMetrics) SetCommitStall(d time.Duration) { w.commitStall.Set(d.Seconds()) }

// Rebalanced counts an assignment the worker received.
func (w *WorkerMetrics) Rebalanced() { w.rebalances.Inc() }

// SetGeneration records the group generation of the worker's membership.
func (w *WorkerMetrics) SetGeneration(generation int32) { w.generation.Set(float64(generation)) }

// SetTaskCounts sets how many tasks the worker holds in each state. Each
// worker sets its own share; sum by state for the instance.
func (w *WorkerMetrics) SetTaskCounts(restoring, running, standby int) {
	w.restoring.Set(float64(restoring))
	w.running.Set(float64(running))
	w.standby.Set(float64(standby))
}
