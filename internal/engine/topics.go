package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/eddystream/eddy/changelog"
	"github.com/eddystream/eddy/internal/task"
	"github.com/eddystream/eddy/topology"
)

// MissingTopicError reports source or sink topics that do not exist.
type MissingTopicError struct {
	Topics []string
}

func (e *MissingTopicError) Error() string {
	return fmt.Sprintf("eddy: topics %s do not exist: create them before starting the application (eddy creates only its internal topics)", strings.Join(e.Topics, ", "))
}

// CopartitionError reports co-partitioned topics whose partition counts
// differ: a task reads partition p of each, so the counts must be equal
// (a stream-stream join's two inputs, for one). Partitions lists the
// sub-topology's source topics whose counts are known, external and
// repartition topics alike.
type CopartitionError struct {
	Subtopology int
	Partitions  map[string]int
}

func (e *CopartitionError) Error() string {
	topics := make([]string, 0, len(e.Partitions))
	for t := range e.Partitions {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	parts := make([]string, len(topics))
	for i, t := range topics {
		parts[i] = fmt.Sprintf("%s has %d", t, e.Partitions[t])
	}
	return fmt.Sprintf("eddy: sub-topology %d reads co-partitioned topics with different partition counts (%s): give them the same number of partitions", e.Subtopology, strings.Join(parts, ", "))
}

// InternalTopicMismatchError reports an existing internal topic with the
// wrong partition count.
type InternalTopicMismatchError struct {
	Topic       string
	Partitions  int
	Want        int
	Subtopology int
}

func (e *InternalTopicMismatchError) Error() string {
	return fmt.Sprintf("eddy: internal topic %s has %d partitions, but sub-topology %d has %d tasks: the input topics changed since it was created, or another application uses the id; delete the topic (eddy reset) or choose another application id", e.Topic, e.Partitions, e.Subtopology, e.Want)
}

// layout is what topic setup learns: the task count of each sub-topology.
type layout struct {
	partitions map[int]int // sub-topology -> number of tasks
	// globals is the partition count of each global table's topic.
	globals map[string]int
}

// setupTopics checks the source and sink topics, derives each
// sub-topology's task count, and creates or validates the internal topics.
// A dead-letter topic, if given, must exist like a sink topic.
func setupTopics(ctx context.Context, adm *kadm.Client, top *topology.Topology, appID string, replication int16, deadLetter string) (*layout, error) {
	subs := top.Subtopologies(appID)
	internal := top.InternalTopics(appID)
	isInternal := map[string]bool{}
	for _, it := range internal {
		isInternal[it.Name] = true
	}
	var external []string
	seen := map[string]bool{}
	if deadLetter != "" {
		external = append(external, deadLetter)
		seen[deadLetter] = true
	}
	for _, st := range subs {
		for _, t := range append(append([]string(nil), st.SourceTopics...), st.SinkTopics...) {
			if !isInternal[t] && !seen[t] {
				seen[t] = true
				external = append(external, t)
			}
		}
	}
	globals := task.GlobalsOf(top, appID)
	for _, g := range globals {
		if !seen[g.Topic] {
			seen[g.Topic] = true
			external = append(external, g.Topic)
		}
	}
	details, err := describeExisting(ctx, adm, external)
	if err != nil {
		return nil, err
	}

	lay := &layout{partitions: map[int]int{}, globals: map[string]int{}}
	for _, g := range globals {
		lay.globals[g.Topic] = len(details[g.Topic].Partitions)
	}
	// inputs are the partition counts known of each sub-topology's source
	// topics, for errors that name them all.
	inputs := map[int]map[string]int{}
	// Sub-topologies reading external topics take their count from them.
	for _, st := range subs {
		counts := map[string]int{}
		inputs[st.ID] = counts
		for _, t := range st.SourceTopics {
			if !isInternal[t] {
				counts[t] = len(details[t].Partitions)
			}
		}
		n := -1
		for _, c := range counts {
			if n >= 0 && c != n {
				return nil, &CopartitionError{Subtopology: st.ID, Partitions: counts}
			}
			n = c
		}
		if n > 0 {
			lay.partitions[st.ID] = n
		}
	}
	// Repartition topics take their writer's count (or their own), and the
	// reader takes the repartition topic's. Resolve in passes: a chain of
	// repartitions resolves one link per pass.
	repartition := map[string]int{}
	for pass := 0; pass <= len(subs); pass++ {
		for _, it := range internal {
			if it.Kind != topology.Repartition {
				continue
			}
			n := it.Partitions
			if n == 0 {
				n = lay.partitions[it.Subtopology]
			}
			if n == 0 {
				continue
			}
			repartition[it.Name] = n
			if inputs[it.ReadBy] == nil {
				inputs[it.ReadBy] = map[string]int{}
			}
			inputs[it.ReadBy][it.Name] = n
			if have, ok := lay.partitions[it.ReadBy]; ok && have != n {
				return nil, &CopartitionError{Subtopology: it.ReadBy, Partitions: inputs[it.ReadBy]}
			}
			lay.partitions[it.ReadBy] = n
		}
	}
	for _, st := range subs {
		if lay.partitions[st.ID] == 0 {
			return nil, fmt.Errorf("eddy: cannot derive the partition count of sub-topology %d", st.ID)
		}
	}

	want := map[string]int{}
	for _, it := range internal {
		if it.Kind == topology.Repartition {
			want[it.Name] = repartition[it.Name]
		} else {
			want[it.Name] = lay.partitions[it.Subtopology]
		}
	}
	stores := map[string]task.StoreSpec{} // by changelog topic
	for _, spec := range task.SpecsOf(top, appID) {
		for _, s := range spec.Stores {
			if s.ChangelogTopic != "" {
				stores[s.ChangelogTopic] = s
			}
		}
	}
	if err := ensureInternalTopics(ctx, adm, internal, want, stores, replication); err != nil {
		return nil, err
	}
	return lay, nil
}

// changelogTopicConfigs returns the configs to create the changelog topic
// of store s with: those of every changelog (changelog.TopicConfigs) and
// the store's own settings, validated for its kind.
func changelogTopicConfigs(s task.StoreSpec) (map[string]*string, error) {
	own, err := s.Changelog.TopicConfigs(s.Kind)
	if err != nil {
		return nil, fmt.Errorf("eddy: store %q: %w", s.Name, err)
	}
	configs := changelog.TopicConfigs()
	for k, v := range own {
		configs[k] = &v
	}
	return configs, nil
}

// ensureInternalTopics creates the internal topics that do not exist, with
// want partitions each; a changelog gets the configs of its store in
// stores (by topic).
func ensureInternalTopics(ctx context.Context, adm *kadm.Client, internal []topology.InternalTopic, want map[string]int, stores map[string]task.StoreSpec, replication int16) error {
	if len(internal) == 0 {
		return nil
	}
	// Validate every store's settings before creating anything.
	configs := map[string]map[string]*string{}
	for _, it := range internal {
		if it.Kind != topology.Changelog {
			continue
		}
		s, ok := stores[it.Name]
		if !ok {
			return fmt.Errorf("eddy: changelog topic %s belongs to no store of the topology", it.Name)
		}
		c, err := changelogTopicConfigs(s)
		if err != nil {
			return err
		}
		configs[it.Name] = c
	}
	names := make([]string, len(internal))
	for i, it := range internal {
		names[i] = it.Name
	}
	check := func() (map[string]bool, error) {
		details, err := adm.ListTopics(ctx, names...)
		if err != nil {
			return nil, fmt.Errorf("eddy: describe internal topics: %w", err)
		}
		exists := map[string]bool{}
		for _, it := range internal {
			d, ok := details[it.Name]
			if !ok || d.Err != nil {
				continue
			}
			exists[it.Name] = true
			if got := len(d.Partitions); got != want[it.Name] {
				return nil, &InternalTopicMismatchError{Topic: it.Name, Partitions: got, Want: want[it.Name], Subtopology: it.Subtopology}
			}
		}
		return exists, nil
	}
	exists, err := check()
	if err != nil {
		return err
	}
	created := false
	for _, it := range internal {
		if exists[it.Name] {
			continue
		}
		resp, err := adm.CreateTopic(ctx, int32(want[it.Name]), replication, configs[it.Name], it.Name)
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("eddy: create internal topic %s: %w", it.Name, err)
		}
		if resp.Err != nil && !errors.Is(resp.Err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("eddy: create internal topic %s: %w", it.Name, resp.Err)
		}
		created = true
	}
	if !created {
		return nil
	}
	// Wait until the new topics are in the brokers' metadata with a leader
	// for every partition: a client that asks too early learns the topic
	// is unknown and asks again only after its metadata max age (5 s in
	// kgo), which would stall the first records by seconds. This also
	// checks the partition counts again, in case another instance created
	// a topic concurrently.
	deadline := time.Now().Add(missingTopicGrace)
	for {
		exists, err := check()
		if err != nil {
			return err
		}
		ready := len(exists) == len(internal)
		if ready {
			details, err := adm.ListTopics(ctx, names...)
			if err != nil {
				return fmt.Errorf("eddy: describe internal topics: %w", err)
			}
			for _, d := range details {
				for _, p := range d.Partitions {
					if p.Err != nil || p.Leader < 0 {
						ready = false
					}
				}
			}
		}
		if ready || time.Now().After(deadline) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// missingTopicGrace is how long startup waits for source and sink topics
// that do not exist yet: a topic created just before the application
// starts may take a moment to reach every broker's metadata.
const missingTopicGrace = 3 * time.Second

// describeExisting describes topics, failing with a MissingTopicError if
// some still do not exist after missingTopicGrace.
func describeExisting(ctx context.Context, adm *kadm.Client, topics []string) (kadm.TopicDetails, error) {
	deadline := time.Now().Add(missingTopicGrace)
	for {
		details, err := adm.ListTopics(ctx, topics...)
		if err != nil {
			return nil, fmt.Errorf("eddy: describe the application's topics: %w", err)
		}
		var missing []string
		for _, t := range topics {
			d, ok := details[t]
			if !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
				missing = append(missing, t)
			} else if d.Err != nil {
				return nil, fmt.Errorf("eddy: describe topic %s: %w", t, d.Err)
			}
		}
		if len(missing) == 0 {
			return details, nil
		}
		if time.Now().After(deadline) {
			sort.Strings(missing)
			return nil, &MissingTopicError{Topics: missing}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
