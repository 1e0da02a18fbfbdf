package metrics_test

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"github.com/eddystream/eddy/internal/metrics"
)

func Example() {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, prometheus.Labels{"application": "wordcount"})
	if err != nil {
		fmt.Println(err)
		return
	}

	// A worker keeps the handles of its tasks and counts on them.
	task := m.Task("0_3")
	task.Consumed.Add(3)
	task.Processed.Add(3)
	task.Produced.Add(2)
	w := m.Worker(0)
	w.ObserveBatch(1500*time.Microsecond, 3)
	w.ObserveCommit(metrics.CommitOK, 12*time.Millisecond)

	out, err := testutil.GatherAndFormat(reg, expfmt.TypeTextPlain,
		"eddy_task_records_produced_total", "eddy_commits_total")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(string(out))

	// When the task leaves the member, its series go.
	m.RemoveTask("0_3")
	n, _ := testutil.GatherAndCount(reg, "eddy_task_records_produced_total")
	fmt.Println("series after RemoveTask:", n)
	// Output:
	// # HELP eddy_commits_total Commits by the worker, by result: ok, aborted (an exactly-once transaction was aborted) or failed.
	// # TYPE eddy_commits_total counter
	// eddy_commits_total{application="wordcount",result="aborted",worker="0"} 0
	// eddy_commits_total{application="wordcount",result="failed",worker="0"} 0
	// eddy_commits_total{application="wordcount",result="ok",worker="0"} 1
	// # HELP eddy_task_records_produced_total Records the task sent to sink and repartition topics.
	// # TYPE eddy_task_records_produced_total counter
	// eddy_task_records_produced_total{application="wordcount",task="0_3"} 2
	// series after RemoveTask: 0
}
