package engine

import (
	"sync"

	"github.com/eddystream/eddy/internal/changelog"
	"github.com/eddystream/eddy/internal/metrics"
	"github.com/eddystream/eddy/processor"
)

// engineMetrics adapts package metrics to the engine: it maps changelog
// partitions to tasks and keeps the restore progress of each.
type engineMetrics struct {
	m *metrics.Metrics
	// subOf maps each changelog topic to its sub-topology.
	subOf map[string]int

	mu sync.Mutex
	// restoring holds the end offset and the records left of each
	// changelog partition being restored.
	restoring map[changelog.TopicPartition]restoreProgress
}

type restoreProgress struct{ end, left int64 }

func newEngineMetrics(m *metrics.Metrics, subOf map[string]int) *engineMetrics {
	return &engineMetrics{m: m, subOf: subOf, restoring: map[changelog.TopicPartition]restoreProgress{}}
}

// task returns the task's metric handles.
func (em *engineMetrics) task(id processor.TaskID) *metrics.TaskMetrics {
	return em.m.Task(id.String())
}

// restoreListener returns a changelog.RestoreListener that feeds the
// restore metrics.
func (em *engineMetrics) restoreListener() changelog.RestoreListener {
	return restoreMetrics{em}
}

type restoreMetrics struct{ em *engineMetrics }

func (r restoreMetrics) taskOf(tp changelog.TopicPartition) *metrics.TaskMetrics {
	sub, ok := r.em.subOf[tp.Topic]
	if !ok {
		return nil // not a changelog of this topology
	}
	return r.em.task(processor.TaskID{Subtopology: sub, Partition: tp.Partition})
}

// setProgress records tp's progress (done removes it) and sets its task's
// gauge to the records left over the task's partitions (a task may have
// several logged stores).
func (r restoreMetrics) setProgress(tp changelog.TopicPartition, p restoreProgress, done bool) {
	tm := r.taskOf(tp)
	if tm == nil {
		return
	}
	r.em.mu.Lock()
	defer r.em.mu.Unlock()
	if done {
		delete(r.em.restoring, tp)
	} else {
		r.em.restoring[tp] = p
	}
	var sum int64
	for other, op := range r.em.restoring {
		if other.Partition == tp.Partition && r.em.subOf[other.Topic] == r.em.subOf[tp.Topic] {
			sum += op.left
		}
	}
	tm.SetRestoreRemaining(sum)
}

func (r restoreMetrics) OnRestoreStart(tp changelog.TopicPartition, from, end int64) {
	r.setProgress(tp, restoreProgress{end: end, left: max(0, end-from)}, false)
}

func (r restoreMetrics) OnBatchRestored(tp changelog.TopicPartition, next int64, records int) {
	if tm := r.taskOf(tp); tm != nil {
		tm.AddRestored(records)
	}
	r.em.mu.Lock()
	p := r.em.restoring[tp]
	r.em.mu.Unlock()
	p.left = max(0, p.end-next)
	r.setProgress(tp, p, false)
}

func (r restoreMetrics) OnRestoreEnd(tp changelog.TopicPartition, res changelog.RestoreResult, err error) {
	r.setProgress(tp, restoreProgress{}, true)
	if err == nil && res.Records > 0 {
		r.em.m.ObserveRestoreDuration(res.Duration)
	}
}
