package state

import (
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"
)

// ChangelogConfig is how a logged store's changelog topic is created: its
// cleanup policy, its retention and any other topic configs. The zero value
// is the default for the store's kind. Kafka Streams takes the same as the
// map of Materialized.withLoggingEnabled and
// StoreBuilder.withLoggingEnabled.
//
// eddy applies it when it creates the topic, the first time the application
// runs. It does not alter the configs of a topic that exists already: use
// kafka-configs.sh, or eddy reset and a new start, for that.
type ChangelogConfig struct {
	// CleanupPolicy is the topic's cleanup.policy: "compact", "delete" or
	// "compact,delete". A key-value store needs "compact" in it, or the
	// broker would drop the latest values of keys the store still holds.
	//
	// Default (""): "compact" for a key-value store, "compact,delete" for
	// a window or session store, whose records expire.
	CleanupPolicy string
	// Retention is the topic's retention.ms, how long the broker keeps a
	// record before the "delete" policy may drop it; it must be a whole
	// number of milliseconds, and it needs "delete" in CleanupPolicy.
	//
	// Default (0): not set, so the broker's log.retention.ms applies (where
	// the policy has "delete"). The DSL sets it for the window and session
	// stores it creates: the store's retention plus a day, Kafka Streams'
	// windowstore.changelog.additional.retention.ms, so that a restore
	// finds every window the store still keeps.
	Retention time.Duration
	// Configs are further topic configs, such as "min.insync.replicas" or
	// "segment.bytes", passed to the broker as they are (the broker
	// rejects an unknown name or a bad value when the topic is created).
	// They may not name a setting eddy decides: "cleanup.policy" and
	// "retention.ms" are CleanupPolicy and Retention, and
	// "message.timestamp.type" is always CreateTime, so that a restored
	// record has the timestamp it was processed with.
	//
	// Default: none.
	Configs map[string]string
}

// Cleanup policies of a changelog topic.
const (
	cleanupCompact = "compact"
	cleanupDelete  = "delete"
)

// reservedConfigs are the topic configs ChangelogConfig.Configs may not
// set, with the reason.
var reservedConfigs = map[string]string{
	"cleanup.policy":         "set CleanupPolicy instead",
	"retention.ms":           "set Retention instead",
	"message.timestamp.type": "eddy creates every changelog with CreateTime, so that restored records keep their timestamps",
}

// TopicConfigs validates c for a store of kind, and returns the configs
// that the store's changelog topic is created with: "cleanup.policy"
// always, "retention.ms" if Retention is set, and Configs. The map is new
// on every call. An invalid c is an error that says what to change, such
// as a key-value store with the policy "delete" alone.
func (c ChangelogConfig) TopicConfigs(kind StoreKind) (map[string]string, error) {
	if kind != KindKeyValue && kind != KindWindow && kind != KindSession {
		return nil, fmt.Errorf("state: changelog of a %v store: the kind is not supported", kind)
	}
	compact, del, err := parseCleanupPolicy(c.CleanupPolicy)
	if err != nil {
		return nil, err
	}
	if c.CleanupPolicy == "" {
		// The key-value default; window and session stores' records
		// expire, and so do their changelogs' (Kafka Streams:
		// "compact,delete").
		compact, del = true, kind != KindKeyValue
	}
	var errs []error
	if !compact {
		errs = append(errs, fmt.Errorf("state: changelog of a %v store: cleanup policy %q drops the latest value of a key once it is older than the retention, and the store restored from it would lose the key: use \"compact\" or \"compact,delete\"", kind, c.CleanupPolicy))
	}
	switch {
	case c.Retention < 0:
		errs = append(errs, fmt.Errorf("state: changelog retention %v is negative", c.Retention))
	case c.Retention%time.Millisecond != 0:
		errs = append(errs, fmt.Errorf("state: changelog retention %v is not a whole number of milliseconds", c.Retention))
	case c.Retention > 0 && !del:
		errs = append(errs, fmt.Errorf("state: changelog retention %v has no effect without \"delete\" in the cleanup policy: set CleanupPolicy to \"compact,delete\", or leave Retention unset", c.Retention))
	}
	for name := range c.Configs {
		if name == "" {
			errs = append(errs, errors.New("state: changelog config with an empty name"))
		} else if why, ok := reservedConfigs[name]; ok {
			errs = append(errs, fmt.Errorf("state: changelog config %q may not be set in Configs: %s", name, why))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	out := maps.Clone(c.Configs)
	if out == nil {
		out = map[string]string{}
	}
	switch {
	case compact && del:
		out["cleanup.policy"] = cleanupCompact + "," + cleanupDelete
	default:
		out["cleanup.policy"] = cleanupCompact
	}
	if c.Retention > 0 {
		out["retention.ms"] = strconv.FormatInt(c.Retention.Milliseconds(), 10)
	}
	return out, nil
}

// parseCleanupPolicy reads a cleanup.policy list: "compact", "delete" or
// both, separated by a comma, each once. The empty policy has neither.
func parseCleanupPolicy(policy string) (compact, del bool, err error) {
	if policy == "" {
		return false, false, nil
	}
	for p := range strings.SplitSeq(policy, ",") {
		p = strings.TrimSpace(p)
		switch {
		case p == cleanupCompact && !compact:
			compact = true
		case p == cleanupDelete && !del:
			del = true
		default:
			return false, false, fmt.Errorf("state: changelog cleanup policy %q: want \"compact\", \"delete\" or \"compact,delete\"", policy)
		}
	}
	return compact, del, nil
}
