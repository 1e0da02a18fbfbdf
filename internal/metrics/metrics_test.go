package metrics_test

import (
	"errors"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/eddystream/eddy/internal/metrics"
)

var app = prometheus.Labels{"application": "wordcount"}

func newT(t *testing.T, reg prometheus.Registerer) *metrics.Metrics {
	t.Helper()
	m, err := metrics.New(reg, app)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m
}

// exercise touches every metric once, so that each has a series.
func exercise(m *metrics.Metrics) {
	task := m.Task("0_3")
	task.Consumed.Add(10)
	task.Processed.Add(9)
	task.Produced.Add(4)
	task.ChangelogProduced.Add(2)
	task.Dropped(metrics.DropNullKey)
	task.SetRestoreRemaining(0)
	task.AddRestored(100)
	task.SetStandbyLag(0)
	task.SetStoreSize("counts", 4096)
	w := m.Worker(0)
	w.ObserveBatch(2*time.Millisecond, 10)
	w.ObserveCommit(metrics.CommitOK, 15*time.Millisecond)
	w.Rebalanced()
	w.SetGeneration(7)
	w.SetTaskCounts(1, 2, 3)
	m.ObserveRestoreDuration(3 * time.Second)
	m.SetConsumerLag("words", 3, 42)
}

// series returns the label sets of the series of metric name, without the
// constant labels.
func series(t *testing.T, g prometheus.Gatherer, name string) []map[string]string {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	var out []map[string]string
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.Metric {
			out = append(out, variableLabels(m))
		}
	}
	return out
}

func variableLabels(m *dto.Metric) map[string]string {
	labels := map[string]string{}
	for _, l := range m.Label {
		if _, constant := app[l.GetName()]; !constant {
			labels[l.GetName()] = l.GetValue()
		}
	}
	return labels
}

func TestLint(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	exercise(newT(t, reg))
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatalf("GatherAndLint: %v", err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}

// TestDocListsEveryMetric checks the list in the public package's doc.go
// (metrics/doc.go, what users read) against what New registers: the same
// names, types and variable labels.
func TestDocListsEveryMetric(t *testing.T) {
	src, err := os.ReadFile("../../metrics/doc.go")
	if err != nil {
		t.Fatal(err)
	}
	type metric struct{ typ, labels string }
	documented := map[string]metric{}
	entry := regexp.MustCompile(`(?m)^//   - (eddy_\w+) \((\w+); ([^)]*)\): `)
	for _, m := range entry.FindAllStringSubmatch(string(src), -1) {
		documented[m[1]] = metric{typ: m[2], labels: m[3]}
	}

	reg := prometheus.NewRegistry()
	exercise(newT(t, reg))
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]metric{}
	for _, f := range families {
		var labels []string
		for name := range variableLabels(f.Metric[0]) {
			labels = append(labels, name)
		}
		slices.Sort(labels)
		list := strings.Join(labels, ", ")
		if list == "" {
			list = "none"
		}
		exported[f.GetName()] = metric{typ: strings.ToLower(f.GetType().String()), labels: list}
	}
	for name, got := range exported {
		want, ok := documented[name]
		if !ok {
			t.Errorf("%s (%s; %s) is not listed in doc.go", name, got.typ, got.labels)
			continue
		}
		// doc.go lists labels in a natural order; compare them as sets.
		wantLabels := strings.Split(want.labels, ", ")
		slices.Sort(wantLabels)
		want.labels = strings.Join(wantLabels, ", ")
		if got != want {
			t.Errorf("doc.go lists %s as (%s; %s), New registers (%s; %s)", name, want.typ, want.labels, got.typ, got.labels)
		}
	}
	for name := range documented {
		if _, ok := exported[name]; !ok {
			t.Errorf("doc.go lists %s, which New does not register", name)
		}
	}
	if len(exported) != 19 {
		t.Errorf("New registers %d metrics, want 19", len(exported))
	}
}

func TestValues(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newT(t, reg)
	w := m.Worker(1)
	w.ObserveCommit(metrics.CommitOK, time.Millisecond)
	w.ObserveCommit(metrics.CommitOK, time.Millisecond)
	w.ObserveCommit(metrics.CommitAborted, time.Millisecond)
	w.ObserveCommit("bogus", time.Millisecond)
	w.Rebalanced()
	w.SetGeneration(4)
	w.Rebalanced()
	w.SetGeneration(5)
	w.SetTaskCounts(1, 2, 0)
	task := m.Task("1_0")
	task.Processed.Add(3)
	if m.Task("1_0") != task {
		t.Error("a second Task call returned a new handle")
	}
	task.AddRestored(5)
	task.AddRestored(6)
	task.Dropped(metrics.DropNullKey)
	task.Dropped(metrics.DropNullValue)
	task.Dropped(metrics.DropNullValue)
	task.Dropped("other")
	m.SetConsumerLag("in", 0, 7)
	m.SetConsumerLag("in", 0, 4)

	want := `
# HELP eddy_commits_total Commits by the worker, by result: ok, aborted (an exactly-once transaction was aborted) or failed.
# TYPE eddy_commits_total counter
eddy_commits_total{application="wordcount",result="aborted",worker="1"} 1
eddy_commits_total{application="wordcount",result="failed",worker="1"} 1
eddy_commits_total{application="wordcount",result="ok",worker="1"} 2
# HELP eddy_rebalances_total Assignments the worker received from its consumer group.
# TYPE eddy_rebalances_total counter
eddy_rebalances_total{application="wordcount",worker="1"} 2
# HELP eddy_group_generation Consumer group generation of the worker's latest assignment.
# TYPE eddy_group_generation gauge
eddy_group_generation{application="wordcount",worker="1"} 5
# HELP eddy_tasks Tasks the worker holds, by state: restoring, running or standby.
# TYPE eddy_tasks gauge
eddy_tasks{application="wordcount",state="restoring",worker="1"} 1
eddy_tasks{application="wordcount",state="running",worker="1"} 2
eddy_tasks{application="wordcount",state="standby",worker="1"} 0
# HELP eddy_task_records_processed_total Records the task ran through its topology.
# TYPE eddy_task_records_processed_total counter
eddy_task_records_processed_total{application="wordcount",task="1_0"} 3
# HELP eddy_dropped_records_total Records the task dropped on purpose, by reason: null_key or null_value (a stream aggregation skips records with a null key or value), invalid_timestamp (a source skips records with a negative timestamp), late (a windowed aggregation skips a record whose windows have closed, once per closed window).
# TYPE eddy_dropped_records_total counter
eddy_dropped_records_total{application="wordcount",reason="invalid_timestamp",task="1_0"} 0
eddy_dropped_records_total{application="wordcount",reason="late",task="1_0"} 0
eddy_dropped_records_total{application="wordcount",reason="null_key",task="1_0"} 1
eddy_dropped_records_total{application="wordcount",reason="null_value",task="1_0"} 2
eddy_dropped_records_total{application="wordcount",reason="other",task="1_0"} 1
# HELP eddy_restored_records_total Changelog records restored into the task's stores; rate() of it is the restore rate.
# TYPE eddy_restored_records_total counter
eddy_restored_records_total{application="wordcount",task="1_0"} 11
# HELP eddy_consumer_lag_records Records between the application's committed offset of the input partition and its end (its last stable offset under exactly-once).
# TYPE eddy_consumer_lag_records gauge
eddy_consumer_lag_records{application="wordcount",partition="0",topic="in"} 4
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"eddy_commits_total", "eddy_rebalances_total", "eddy_group_generation", "eddy_tasks",
		"eddy_task_records_processed_total", "eddy_restored_records_total", "eddy_consumer_lag_records",
		"eddy_dropped_records_total",
	); err != nil {
		t.Error(err)
	}
	// Series set only when first used are absent until then.
	for _, name := range []string{"eddy_restore_remaining_records", "eddy_standby_lag_records", "eddy_store_size_bytes"} {
		if got := series(t, reg, name); len(got) != 0 {
			t.Errorf("%s has series %v before it was set", name, got)
		}
	}
}

func TestRemoveTask(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newT(t, reg)
	for _, id := range []string{"0_1", "0_2"} {
		task := m.Task(id)
		task.Consumed.Inc()
		task.Processed.Inc()
		task.Produced.Inc()
		task.ChangelogProduced.Inc()
		task.Dropped(metrics.DropNullKey)
		task.Dropped("other")
		task.SetRestoreRemaining(5)
		task.AddRestored(1)
		task.SetStandbyLag(3)
		task.SetStoreSize("a", 1)
		task.SetStoreSize("b", 2)
	}
	stale := m.Task("0_1")
	m.RemoveTask("0_1")
	// A handle kept past RemoveTask must not bring its series back.
	stale.Consumed.Inc()
	stale.Dropped(metrics.DropNullValue)
	stale.Dropped("other")
	stale.SetRestoreRemaining(1)
	stale.AddRestored(1)
	stale.SetStandbyLag(1)
	stale.SetStoreSize("a", 9)
	stale.SetStoreSize("c", 9)

	for _, name := range []string{
		"eddy_task_records_consumed_total", "eddy_task_records_processed_total",
		"eddy_task_records_produced_total", "eddy_task_changelog_records_produced_total",
		"eddy_dropped_records_total", "eddy_restore_remaining_records", "eddy_restored_records_total",
		"eddy_standby_lag_records", "eddy_store_size_bytes",
	} {
		got := series(t, reg, name)
		if len(got) == 0 {
			t.Errorf("%s: the remaining task 0_2 has no series", name)
		}
		for _, labels := range got {
			if labels["task"] != "0_2" {
				t.Errorf("%s: series %v left after RemoveTask(0_1)", name, labels)
			}
		}
	}
	if got := len(series(t, reg, "eddy_store_size_bytes")); got != 2 {
		t.Errorf("eddy_store_size_bytes has %d series, want the 2 stores of 0_2", got)
	}

	// The task can come back, counting from zero.
	m.Task("0_1").Consumed.Inc()
	if got := testutil.ToFloat64(m.Task("0_1").Consumed); got != 1 {
		t.Errorf("consumed of a task assigned again = %v, want 1", got)
	}
}

func TestRemoveWorker(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newT(t, reg)
	for _, idx := range []int{0, 1} {
		w := m.Worker(idx)
		w.ObserveBatch(time.Millisecond, 1)
		w.ObserveCommit(metrics.CommitOK, time.Millisecond)
		w.Rebalanced()
		w.SetGeneration(1)
		w.SetTaskCounts(1, 1, 1)
	}
	m.RemoveWorker(0)
	for _, name := range []string{
		"eddy_process_batch_duration_seconds", "eddy_process_batch_records", "eddy_commits_total",
		"eddy_commit_duration_seconds", "eddy_rebalances_total", "eddy_group_generation", "eddy_tasks",
	} {
		got := series(t, reg, name)
		if len(got) == 0 {
			t.Errorf("%s: the remaining worker 1 has no series", name)
		}
		for _, labels := range got {
			if labels["worker"] != "1" {
				t.Errorf("%s: series %v left after RemoveWorker(0)", name, labels)
			}
		}
	}
}

func TestRemoveConsumerLag(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newT(t, reg)
	m.SetConsumerLag("in", 0, 1)
	m.SetConsumerLag("in", 1, 2)
	m.SetConsumerLag("other", 0, 3)
	m.RemoveConsumerLag("in", 1)
	m.RemoveConsumerLag("absent", 9) // not an error
	got := series(t, reg, "eddy_consumer_lag_records")
	want := []map[string]string{
		{"topic": "in", "partition": "0"},
		{"topic": "other", "partition": "0"},
	}
	if len(got) != len(want) {
		t.Fatalf("series after RemoveConsumerLag = %v, want %v", got, want)
	}
	for _, w := range want {
		if !slices.ContainsFunc(got, func(g map[string]string) bool { return g["topic"] == w["topic"] && g["partition"] == w["partition"] }) {
			t.Errorf("series after RemoveConsumerLag = %v, want %v", got, want)
		}
	}
}

func TestTwoApplicationsOnOneRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	first := newT(t, reg)
	first.Task("0_0").Consumed.Inc()

	_, err := metrics.New(reg, app)
	if err == nil {
		t.Fatal("a second New with the same constant labels on one registry succeeded")
	}
	if !errors.As(err, new(prometheus.AlreadyRegisteredError)) {
		t.Errorf("error %v does not match prometheus.AlreadyRegisteredError", err)
	}
	for _, hint := range []string{"eddy_task_records_consumed_total", "application id", "its own Registerer"} {
		if !strings.Contains(err.Error(), hint) {
			t.Errorf("error %q does not mention %q", err, hint)
		}
	}

	other, err := metrics.New(reg, prometheus.Labels{"application": "other"})
	if err != nil {
		t.Fatalf("New with other constant labels on the same registry: %v", err)
	}
	other.Task("0_0").Consumed.Add(5)
	if got := len(series(t, reg, "eddy_task_records_consumed_total")); got != 2 {
		t.Errorf("eddy_task_records_consumed_total has %d series, want one per application", got)
	}
}

// TestFailedNewRegistersNothing makes New fail on the last metric it
// registers, then checks that it left none of the others behind. (The
// squatter has the same help and labels: a registry remembers those of
// every name it ever saw, even after Unregister.)
func TestFailedNewRegistersNothing(t *testing.T) {
	reg := prometheus.NewRegistry()
	squatter := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name:        "eddy_consumer_lag_records",
		Help:        "Records between the application's committed offset of the input partition and its end (its last stable offset under exactly-once).",
		ConstLabels: app,
	}, []string{"topic", "partition"})
	reg.MustRegister(squatter)
	if _, err := metrics.New(reg, app); err == nil {
		t.Fatal("New succeeded with one of its metrics already registered")
	}
	reg.Unregister(squatter)
	newT(t, reg)
}

func TestInvalidConstLabels(t *testing.T) {
	for _, labels := range []prometheus.Labels{
		{"task": "clash"},
		{"__reserved": "x"},
	} {
		for _, reg := range []prometheus.Registerer{nil, prometheus.NewRegistry()} {
			if _, err := metrics.New(reg, labels); err == nil {
				t.Errorf("New(%v, %v) succeeded", reg, labels)
			} else if !strings.Contains(err.Error(), "constant labels") {
				t.Errorf("New(%v, %v): error %q does not point at the constant labels", reg, labels, err)
			}
		}
	}
}

func TestNilRegisterer(t *testing.T) {
	m, err := metrics.New(nil, nil)
	if err != nil {
		t.Fatalf("New(nil, nil): %v", err)
	}
	exercise(m)
	if got := testutil.ToFloat64(m.Task("0_3").Consumed); got != 10 {
		t.Errorf("consumed = %v, want 10", got)
	}
}

// TestConcurrentUse runs the handles from several goroutines, as the
// workers of one instance do, for the race detector.
func TestConcurrentUse(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newT(t, reg)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			wm := m.Worker(w)
			for i := range 200 {
				id := []string{"0_0", "0_1", "0_2"}[i%3]
				task := m.Task(id)
				task.Processed.Inc()
				task.SetStoreSize("s", int64(i))
				task.SetStandbyLag(int64(i))
				if i%7 == 0 {
					m.RemoveTask(id)
				}
				wm.ObserveBatch(time.Microsecond, i)
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			if _, err := reg.Gather(); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Wait()
}

func TestClearStandbyLag(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newT(t, reg)
	task := m.Task("0_1")
	task.SetStandbyLag(12)
	if got := len(series(t, reg, "eddy_standby_lag_records")); got != 1 {
		t.Fatalf("%d standby lag series, want 1", got)
	}
	task.ClearStandbyLag()
	if got := len(series(t, reg, "eddy_standby_lag_records")); got != 0 {
		t.Fatalf("%d standby lag series after ClearStandbyLag, want 0", got)
	}
	if got := len(series(t, reg, "eddy_task_records_processed_total")); got != 1 {
		t.Fatalf("ClearStandbyLag removed the task's other series (%d processed series left)", got)
	}
	task.SetStandbyLag(3) // a standby again
	if got := len(series(t, reg, "eddy_standby_lag_records")); got != 1 {
		t.Fatalf("%d standby lag series after setting it again, want 1", got)
	}
}
