package engine

import (
	"sync"

	"github.com/eddystream/eddy/changelog"
)

// collector is what one task has produced since it was opened (or
// reset): the next offset of each of its changelog partitions that the
// brokers acknowledged. Produce promises run on
// kgo's goroutines, hence the lock. A collector is the task's and goes
// with it when it closes: another task, or this task opened again, starts
// from a fresh one.
type collector struct {
	mu   sync.Mutex
	next map[changelog.TopicPartition]int64
}

func newCollector() *collector {
	return &collector{next: map[changelog.TopicPartition]int64{}}
}

// acked records that the changelog record at offset of tp was
// acknowledged.
func (c *collector) acked(tp changelog.TopicPartition, offset int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if next := offset + 1; next > c.next[tp] {
		c.next[tp] = next
	}
}

// changelogEnds returns the next offset of every changelog partition the
// task wrote to and the brokers acknowledged.
func (c *collector) changelogEnds() map[changelog.TopicPartition]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[changelog.TopicPartition]int64, len(c.next))
	for tp, n := range c.next {
		out[tp] = n
	}
	return out
}
