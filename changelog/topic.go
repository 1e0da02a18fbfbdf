package changelog

import "strconv"

// TopicName returns the name of the changelog topic of store storeName in
// application applicationID: "<applicationID>-<storeName>-changelog", as in
// Kafka Streams, so that tooling written for Kafka Streams finds eddy's
// changelogs. The caller validates both parts; the result must be a legal
// Kafka topic name (at most 249 characters of [a-zA-Z0-9._-]).
func TopicName(applicationID, storeName string) string {
	return applicationID + "-" + storeName + "-changelog"
}

// TopicConfigs returns the topic configs to create a key-value store's
// changelog topic with, in the form kadm.Client.CreateTopics takes. A fresh
// map is returned on every call, so the caller may add to it.
//
//   - cleanup.policy=compact: the topic keeps the latest record of every key
//     and, for delete.retention.ms after a tombstone, the tombstone, so it
//     stays as large as the store rather than as large as its history, and
//     a restore replays each key about once.
//   - message.timestamp.type=CreateTime: the broker keeps the timestamps
//     eddy writes, even where it is configured to stamp append time
//     (log.message.timestamp.type=LogAppendTime), so a restored record has
//     the timestamp it was processed with. Kafka Streams sets this on every
//     internal topic.
//
// Partition count and replication factor are not configs: the partition
// count is the task count of the store's sub-topology, and the replication
// factor is the application's choice.
func TopicConfigs() map[string]*string {
	compact, createTime := "compact", "CreateTime"
	return map[string]*string{
		"cleanup.policy":         &compact,
		"message.timestamp.type": &createTime,
	}
}

// TopicPartition names one partition of a topic; in this package, one
// changelog partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// String returns "<topic>-<partition>", the form Kafka tools print.
func (tp TopicPartition) String() string {
	return tp.Topic + "-" + strconv.FormatInt(int64(tp.Partition), 10)
}

// Less orders topic partitions by topic, then partition.
func (tp TopicPartition) Less(o TopicPartition) bool {
	if tp.Topic != o.Topic {
		return tp.Topic < o.Topic
	}
	return tp.Partition < o.Partition
}
