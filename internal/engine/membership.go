package engine

import (
	"context"
	"os"
	"path/filepath"
	"sync"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/eddystream/eddy/internal/changelog"
	"github.com/eddystream/eddy/internal/rebalance"
	"github.com/eddystream/eddy/processor"
)

// runningSet is the process's running active tasks, for the join metadata:
// kgo's group goroutine reads it while a worker's loop may hold its own
// lock, so it has a lock of its own that is never held across anything
// else.
type runningSet struct {
	mu    sync.Mutex
	tasks map[processor.TaskID]bool
}

func (rs *runningSet) set(id processor.TaskID, running bool) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.tasks == nil {
		rs.tasks = map[processor.TaskID]bool{}
	}
	if running {
		rs.tasks[id] = true
	} else {
		delete(rs.tasks, id)
	}
}

func (rs *runningSet) snapshot() []processor.TaskID {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	ids := make([]processor.TaskID, 0, len(rs.tasks))
	for id := range rs.tasks {
		ids = append(ids, id)
	}
	return ids
}

// taskOffsetSums tells the group leader how far this process's state of
// each stateful task has caught up: rebalance.OffsetSumRunning for the
// active tasks it runs, the replay position of its standby tasks, and the
// checkpoints of the task directories on disk for the rest (a task being
// restored counts by its checkpoint). The leader compares the sums with
// the changelogs' end offsets to place tasks where their state is.
func (e *Engine) taskOffsetSums() map[processor.TaskID]int64 {
	out := map[processor.TaskID]int64{}
	entries, _ := os.ReadDir(filepath.Join(e.cfg.StateDir, e.cfg.ApplicationID))
	for _, ent := range entries {
		if !ent.IsDir() {
			continue
		}
		id, err := processor.ParseTaskID(ent.Name())
		if err != nil || !e.stateful(id) {
			continue
		}
		cp, err := changelog.ReadCheckpoint(filepath.Join(e.cfg.StateDir, e.cfg.ApplicationID, ent.Name(), checkpointFile))
		if err != nil || len(cp) == 0 {
			continue
		}
		var sum int64
		for _, off := range cp {
			sum += off
		}
		out[id] = sum
	}
	if e.standbys != nil {
		for id, sum := range e.standbys.offsetSums() {
			out[id] = max(out[id], sum)
		}
	}
	for _, id := range e.running.snapshot() {
		if e.stateful(id) {
			out[id] = rebalance.OffsetSumRunning
		}
	}
	return out
}

// stateful reports whether task id has logged stores.
func (e *Engine) stateful(id processor.TaskID) bool {
	spec := e.specs[id.Subtopology]
	if spec == nil {
		return false
	}
	for _, s := range spec.Stores {
		if s.ChangelogTopic != "" {
			return true
		}
	}
	return false
}

// endOffsets lists the end offsets of topics' partitions, for the group
// leader's lag computation.
func (e *Engine) endOffsets(ctx context.Context, topics []string) (map[string]map[int32]int64, error) {
	listed, err := e.adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, err
	}
	if err := listed.Error(); err != nil {
		return nil, err
	}
	out := map[string]map[int32]int64{}
	listed.Each(func(o kadm.ListedOffset) {
		if out[o.Topic] == nil {
			out[o.Topic] = map[int32]int64{}
		}
		out[o.Topic][o.Partition] = o.Offset
	})
	return out, nil
}
