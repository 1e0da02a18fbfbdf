// Package changelog holds what a user of eddy sees of a store's changelog:
// the topic's name (TopicName) and the configs it is created with
// (TopicConfigs), and the restore listener interface (RestoreListener)
// with its event types (TopicPartition, RestoreResult), the contract the
// engine's restorer reports restores through (Kafka Streams:
// StateRestoreListener). eddy's restore metrics implement it; no option
// takes a listener of the application's own yet. The restorer, the
// checkpoint files and the restore plans are the engine's and live in an
// internal package.
//
// # Topics
//
// Each logged store has one compacted changelog topic, named by TopicName
// ("<application-id>-<store>-changelog", as Kafka Streams names it) and
// created with TopicConfigs. The topic has one partition per task: task 1_3
// logs its store to partition 3. A record's key and value are the store's
// key and value bytes; a record with a nil value is a tombstone and deletes
// its key.
package changelog
