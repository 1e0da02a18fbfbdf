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

// Subtopology names one sub-topology, the source topics it reads (its
// co-partitioned inputs, internal repartition topics included) and the
// changelog topics of its logged state stores. Partition p of every source
// topic and of every changelog topic belongs to task (ID, p).
type Subtopology struct {
	// ID is the sub-topology's number; it is the Subtopology of its tasks'
	// processor.TaskID.
	ID int
	// SourceTopics lists the topics the sub-topology reads. They must all
	// have the same partition count.
	SourceTopics []string
	// ChangelogTopics lists the changelog topics of the sub-topology's
	// logged state stores; nil for a stateless sub-topology. The tasks of
	// a sub-topology with changelog topics are stateful: the assignor
	// keeps them where their state is caught up and places standby and
	// warm-up replicas for them. A changelog topic may also be one of the
	// sub-topology's own source topics (a source table whose input is its
	// changelog), but not a topic of another sub-topology.
	ChangelogTopics []string
}

// Layout is the translation between tasks and topic partitions for one
// topology: which sub-topology reads which source topics, and so which
// topic partitions make up each task. Every group member must run the same
// topology, because the group leader assigns by its own Layout.
//
// A Layout is immutable and safe for concurrent use.
type Layout struct {
	subs       []Subtopology  // sorted by ID, topics sorted
	topicSub   map[string]int // source topic => index into subs
	topics     []string       // all source topics, sorted
	changelogs []string       // all changelog topics, sorted
}

// NewLayout validates the sub-topologies and returns their Layout. It
// rejects an empty list, a negative or repeated sub-topology ID, a
// sub-topology without source topics, an empty topic name, a topic listed
// twice by one sub-topology, and a topic used by two sub-topologies, as a
// source or a changelog (a partition can only belong to one task). The
// error wraps ErrInvalidConfig.
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
		l.subs = append(l.subs, Subtopology{
			ID:              s.ID,
			SourceTopics:    slices.Sorted(slices.Values(s.SourceTopics)),
			ChangelogTopics: sortedOrNil(s.ChangelogTopics),
		})
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
	changelogSub := make(map[string]int)
	for _, s := range l.subs {
		for i, topic := range s.ChangelogTopics {
			if topic == "" {
				return nil, fmt.Errorf("%w: sub-topology %d has an empty changelog topic name", ErrInvalidConfig, s.ID)
			}
			if i > 0 && s.ChangelogTopics[i-1] == topic {
				return nil, fmt.Errorf("%w: sub-topology %d lists changelog topic %q twice", ErrInvalidConfig, s.ID, topic)
			}
			if src, ok := l.topicSub[topic]; ok && l.subs[src].ID != s.ID {
				return nil, fmt.Errorf("%w: topic %q is a changelog of sub-topology %d and a source of sub-topology %d; "+
					"a changelog belongs to the sub-topology of its store", ErrInvalidConfig, topic, s.ID, l.subs[src].ID)
			}
			if prev, ok := changelogSub[topic]; ok {
				return nil, fmt.Errorf("%w: topic %q is a changelog of sub-topologies %d and %d; give each store its own changelog",
					ErrInvalidConfig, topic, prev, s.ID)
			}
			changelogSub[topic] = s.ID
			l.changelogs = append(l.changelogs, topic)
		}
	}
	slices.Sort(l.changelogs)
	return l, nil
}

func sortedOrNil(ts []string) []string {
	if len(ts) == 0 {
		return nil
	}
	return slices.Sorted(slices.Values(ts))
}

// Subtopologies returns the sub-topologies sorted by ID, each with its
// source and changelog topics sorted.
func (l *Layout) Subtopologies() []Subtopology {
	out := make([]Subtopology, len(l.subs))
	for i, s := range l.subs {
		out[i] = Subtopology{ID: s.ID, SourceTopics: slices.Clone(s.SourceTopics), ChangelogTopics: slices.Clone(s.ChangelogTopics)}
	}
	return out
}

// SourceTopics returns every source topic of the topology, sorted. The kgo
// client that uses the Balancer must consume exactly these topics.
func (l *Layout) SourceTopics() []string { return slices.Clone(l.topics) }

// ChangelogTopics returns every changelog topic of the topology, sorted, or
// nil if the topology is stateless. The group leader's Balancer asks
// Config.EndOffsets for their end offsets.
func (l *Layout) ChangelogTopics() []string { return slices.Clone(l.changelogs) }

// Stateful reports whether a task is stateful: whether its sub-topology has
// changelog topics.
func (l *Layout) Stateful(t processor.TaskID) bool { return len(l.changelogTopics(t.Subtopology)) > 0 }

// ChangelogPartitions returns the changelog topic partitions of the given
// tasks: partition p of every changelog topic of sub-topology s, for each
// task (s, p). Stateless tasks and tasks of unknown sub-topologies
// contribute nothing. Partitions are sorted within each topic.
func (l *Layout) ChangelogPartitions(tasks []processor.TaskID) map[string][]int32 {
	out := make(map[string][]int32)
	for _, t := range tasks {
		for _, topic := range l.changelogTopics(t.Subtopology) {
			out[topic] = append(out[topic], t.Partition)
		}
	}
	for topic, ps := range out {
		slices.Sort(ps)
		out[topic] = slices.Compact(ps)
	}
	return out
}

// TaskOffsetSum returns the sum of the offsets of a task's changelog
// partitions, looked up in offsets (topic => partition => offset). With
// end offsets it is the task's end offset sum; with the offsets a store has
// restored up to (its checkpoint: the next offset to read) it is the offset
// sum a member reports in Config.TaskOffsetSums. ok is false if the task is
// stateless or an offset is missing or negative.
func (l *Layout) TaskOffsetSum(t processor.TaskID, offsets map[string]map[int32]int64) (sum int64, ok bool) {
	topics := l.changelogTopics(t.Subtopology)
	if len(topics) == 0 {
		return 0, false
	}
	for _, topic := range topics {
		o, ok := offsets[topic][t.Partition]
		if !ok || o < 0 {
			return 0, false
		}
		if sum > math.MaxInt64-o {
			sum = math.MaxInt64 // saturate: no real changelog gets here
			continue
		}
		sum += o
	}
	return sum, true
}

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

// changelogTopics returns the (shared, sorted) changelog topics of a
// sub-topology, or nil if it is stateless or unknown.
func (l *Layout) changelogTopics(id int) []string {
	i, ok := slices.BinarySearchFunc(l.subs, id, func(s Subtopology, id int) int { return cmp.Compare(s.ID, id) })
	if !ok {
		return nil
	}
	return l.subs[i].ChangelogTopics
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

func compareTasks(a, b processor.TaskID) int { return a.Compare(b) }
