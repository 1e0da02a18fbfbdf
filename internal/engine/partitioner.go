package engine

import "github.com/twmb/franz-go/pkg/kgo"

// partitioner sends changelog records to the partition the task set on
// them and partitions every other record by key with Kafka's default
// (murmur2) hash, so that repartition topics and outputs are
// co-partitioned with topics written by Java clients.
type partitioner struct {
	manual map[string]bool
	byKey  kgo.Partitioner
	fixed  kgo.Partitioner
}

func newPartitioner(manualTopics []string) *partitioner {
	p := &partitioner{manual: map[string]bool{}, byKey: kgo.StickyKeyPartitioner(nil), fixed: kgo.ManualPartitioner()}
	for _, t := range manualTopics {
		p.manual[t] = true
	}
	return p
}

func (p *partitioner) ForTopic(topic string) kgo.TopicPartitioner {
	if p.manual[topic] {
		return p.fixed.ForTopic(topic)
	}
	return p.byKey.ForTopic(topic)
}
