package changelog

import "github.com/eddystream/eddy/changelog"

// The names a user sees (a restore's partition, result and listener) live
// in the public package changelog; the restorer uses them as they are.
type (
	// TopicPartition is changelog.TopicPartition.
	TopicPartition = changelog.TopicPartition
	// RestoreResult is changelog.RestoreResult.
	RestoreResult = changelog.RestoreResult
	// RestoreListener is changelog.RestoreListener.
	RestoreListener = changelog.RestoreListener
)
