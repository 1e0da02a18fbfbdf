package rebalance

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/eddystream/eddy/processor"
)

// Subtopology names one sub-topology and the source topics it reads: its
// co-partitioned inputs, internal repartition topics included. Partition p
// of every source topic belongs to task (ID, p).
type Subtopology struct {
	// ID is the sub-topology's number; it is the Subtopology of its tasks'
	// processor.TaskID.
	ID int
	// SourceTopics lists the topics the sub-topology reads. They must all
	// have the same partition count.
	SourceTopics []string
}

// Layout is the translation between tasks and topic partitions for one
// topology: which sub-topology reads which source topics, and so which
// topic partitions make up each task. Every group member must run the same
// topology, because the group leader assigns by its own Layout.
//
// A Layout is immutable and safe for concurrent use.
type Layout struct {
	subs     []Subtopology  // sorted by ID, topics sorted
	topicSub map[string]int // source topic => index into subs
	topics   []string       // all source topics, sorted
}

// NewLayout validates the sub-topologies and returns their Layout. It
// rejects an empty list, a negative or repeated sub-topology ID, a
// sub-topology without source topics, an empty topic name, and a topic read
// by two sub-topologies (a partition can only belong to one task). The error
// wraps ErrInvalidConfig.
func NewLayout(subtopologies []Subtopology) (*Layout, error) {
	if len(subtopologies) == 0 {
		return nil, fmt.Errorf("%w: no sub-topologies; a topology needs at least one source", ErrInvalidConfig)
	}
	l := &Layout{topicSub: make(map[string]int)}
	for _, s := range subtopologies {
		if s.ID < 0 || s.ID > math.MaxInt32 {
			return nil, fmt.Errorf("%w: sub-topology id %d is out of range [0, %d]", ErrInvalidConfig, s.ID, math.MaxInt32)
		}
		if len(s.SourceTopics) == 0 {
			return nil, fmt.Errorf("%w: sub-topology %d has no source topics", ErrInvalidConfig, s.ID)
		}
		l.subs = append(l.subs, Subtopology{ID: s.ID, SourceTopics: slices.Sorted(slices.Values(s.SourceTopics))})
	}
	slices.SortFunc(l.subs, func(a, b Subtopology) int { return cmp.Compare(a.ID, b.ID) })
	for i, s := range l.subs {
		if i > 0 && l.subs[i-1].ID == s.ID {
			return nil, fmt.Errorf("%w: sub-topology id %d appears twice", ErrInvalidConfig, s.ID)
		}
		for _, topic := range s.SourceTopics {
			if topic == "" {
				return nil, fmt.Errorf("%w: sub-topology %d has an empty source topic name", ErrInvalidConfig, s.ID)
			}
			if prev, ok := l.topicSub[topic]; ok {
				if l.subs[prev].ID == s.ID {
					return nil, fmt.Errorf("%w: sub-topology %d lists source topic %q twice", ErrInvalidConfig, s.ID, topic)
				}
				return nil, fmt.Errorf("%w: topic %q is a source of sub-topologies %d and %d; a topic can feed only one sub-topology (merge them)",
					ErrInvalidConfig, topic, l.subs[prev].ID, s.ID)
			}
			l.topicSub[topic] = i
			l.topics = append(l.topics, topic)
		}
	}
	slices.Sort(l.topics)
	return l, nil
}

// Subtopologies returns the sub-topologies sorted by ID, each with its
// source topics sorted.
func (l *Layout) Subtopologies() []Subtopology {
	out := make([]Subtopology, len(l.subs))
	for i, s := range l.subs {
		out[i] = Subtopology{ID: s.ID, SourceTopics: slices.Clone(s.SourceTopics)}
	}
	return out
}

// SourceTopics returns every source topic of the topology, sorted. The kgo
// client that uses the Balancer must consume exactly these topics.
func (l *Layout) SourceTopics() []string { return slices.Clone(l.topics) }

// TaskOf returns the task that a topic partition belongs to. ok is false
// when the topic is not a source topic or the partition is negative.
func (l *Layout) TaskOf(topic string, partition int32) (task processor.TaskID, ok bool) {
	i, ok := l.topicSub[topic]
	if !ok || partition < 0 {
		return processor.TaskID{}, false
	}
	return processor.TaskID{Subtopology: l.subs[i].ID, Partition: partition}, true
}

// TasksOf returns, sorted, the tasks of which the given topic partitions
// hold at least one partition. Partitions of topics outside the layout are
// ignored.
func (l *Layout) TasksOf(partitions map[string][]int32) []processor.TaskID {
	var tasks []processor.TaskID
	for topic, ps := range partitions {
		for _, p := range ps {
			if t, ok := l.TaskOf(topic, p); ok {
				tasks = append(tasks, t)
			}
		}
	}
	return sortTasks(tasks)
}

// Partitions returns the topic partitions that make up the given tasks:
// partition p of every source topic of sub-topology s, for each task (s, p).
// Tasks of unknown sub-topologies contribute nothing. Partitions are sorted
// within each topic.
func (l *Layout) Partitions(tasks []processor.TaskID) map[string][]int32 {
	out := make(map[string][]int32)
	for _, t := range tasks {
		for _, topic := range l.sourceTopics(t.Subtopology) {
			out[topic] = append(out[topic], t.Partition)
		}
	}
	for topic, ps := range out {
		slices.Sort(ps)
		out[topic] = slices.Compact(ps)
	}
	return out
}

// sourceTopics returns the (shared, sorted) source topics of a sub-topology,
// or nil if the layout has no such sub-topology.
func (l *Layout) sourceTopics(id int) []string {
	i, ok := slices.BinarySearchFunc(l.subs, id, func(s Subtopology, id int) int { return cmp.Compare(s.ID, id) })
	if !ok {
		return nil
	}
	return l.subs[i].SourceTopics
}

// Tasks returns every task of the topology, sorted, given the partition
// count of each source topic. A sub-topology has one task per partition of
// its source topics. If a source topic is missing from partitionCounts, or
// the source topics of a sub-topology disagree on their partition count,
// Tasks returns a *CopartitionError: a task cannot be formed from inputs
// that are not co-partitioned.
func (l *Layout) Tasks(partitionCounts map[string]int32) ([]processor.TaskID, error) {
	var tasks []processor.TaskID
	for _, s := range l.subs {
		counts := make(map[string]int32, len(s.SourceTopics))
		var missing []string
		n, agree := int32(-1), true
		for _, topic := range s.SourceTopics {
			c, ok := partitionCounts[topic]
			if !ok || c < 0 {
				missing = append(missing, topic)
				continue
			}
			counts[topic] = c
			if n >= 0 && c != n {
				agree = false
			}
			n = c
		}
		if len(missing) > 0 || !agree {
			return nil, &CopartitionError{Subtopology: s.ID, PartitionCounts: counts, MissingTopics: missing}
		}
		for p := range n {
			tasks = append(tasks, processor.TaskID{Subtopology: s.ID, Partition: p})
		}
	}
	return tasks, nil
}

// CopartitionError reports that the group leader could not form the tasks
// of a sub-topology because its source topics are not co-partitioned at
// balance time: a source topic is missing from the cluster metadata, or two
// source topics have different partition counts. The leader's kgo client
// surfaces it from the balance (a group management error); the group does
// not get an assignment until the topics are fixed.
type CopartitionError struct {
	// Subtopology is the ID of the sub-topology whose tasks could not be
	// formed.
	Subtopology int
	// PartitionCounts holds the partition count of each source topic the
	// leader found.
	PartitionCounts map[string]int32
	// MissingTopics lists, sorted, the source topics the leader did not
	// find in the cluster metadata.
	MissingTopics []string
}

func (e *CopartitionError) Error() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "rebalance: sub-topology %d: source topics are not co-partitioned:", e.Subtopology)
	for _, topic := range slices.Sorted(maps.Keys(e.PartitionCounts)) {
		fmt.Fprintf(&sb, " %s=%d", topic, e.PartitionCounts[topic])
	}
	if len(e.MissingTopics) > 0 {
		fmt.Fprintf(&sb, " missing=%s", strings.Join(e.MissingTopics, ","))
	}
	sb.WriteString("; create the missing topics and give every source topic of a sub-topology the same partition count")
	return sb.String()
}

// sortTasks sorts tasks and removes duplicates, in place.
func sortTasks(tasks []processor.TaskID) []processor.TaskID {
	slices.SortFunc(tasks, compareTasks)
	return slices.Compact(tasks)
}

func compareTasks(a, b processor.TaskID) int {
	switch {
	case a.Less(b):
		return -1
	case b.Less(a):
		return 1
	}
	return 0
}
