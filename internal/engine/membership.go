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

// taskOffsetSums reports, per stateful task, the changelog offset sum of
// the state this process has: running (rebalance.OffsetSumRunning), a
// standby's replay position, or the checkpoint on disk. kgo's group
// goroutine calls it at each join, so it reads only memory: the on-disk
// sums are read once when Run starts (loadOffsetSums) and kept up to date
// as checkpoints are written (noteOffsetSum) and wiped (forgetOffsetSum).
func (e *Engine) taskOffsetSums() map[processor.TaskID]int64 {
	e.diskSums.Lock()
	out := make(map[processor.TaskID]int64, len(e.diskSums.m))
	for id, sum := range e.diskSums.m {
		out[id] = sum
	}
	e.diskSums.Unlock()
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

// loadOffsetSums reads the checkpoint of every task directory of the
// application, for taskOffsetSums. Run calls it before any worker joins.
func (e *Engine) loadOffsetSums() {
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
		e.noteOffsetSum(id, cp)
	}
}

// noteOffsetSum records the offset sum of task id's checkpoint on disk.
func (e *Engine) noteOffsetSum(id processor.TaskID, cp changelog.Checkpoint) {
	var sum int64
	for _, off := range cp {
		sum += off
	}
	e.diskSums.Lock()
	defer e.diskSums.Unlock()
	if e.diskSums.m == nil {
		e.diskSums.m = map[processor.TaskID]int64{}
	}
	e.diskSums.m[id] = sum
}

// forgetOffsetSum records that task id has no checkpoint on disk.
func (e *Engine) forgetOffsetSum(id processor.TaskID) {
	e.diskSums.Lock()
	defer e.diskSums.Unlock()
	delete(e.diskSums.m, id)
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
