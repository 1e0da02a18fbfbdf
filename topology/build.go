package topology

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/eddystream/eddy/internal/task"
	"github.com/eddystream/eddy/state"
)

// Topology is a built, validated, immutable graph, split into
// sub-topologies. Create it with Builder.Build; run it with eddy.New or
// eddytest.
type Topology struct {
	subs       []*subtopology
	stores     map[string]*storeDecl
	storeOrder []string
	// globals are the global stores, in globalOrder (see global.go).
	globals     map[string]*globalDecl
	globalOrder []string
}

type subtopology struct {
	id     int
	nodes  []*node // in the order they were added
	stores []string
}

// Build validates the graph and returns the Topology. Errors name the
// node at fault (see NodeError); all of them are reported at once.
func (b *Builder) Build() (*Topology, error) {
	if b.built {
		return nil, ErrBuilt
	}
	b.built = true
	errs := append([]error(nil), b.errs...)
	if len(b.nodes) == 0 {
		errs = append(errs, errors.New("topology: the topology is empty: add a source"))
	}
	seenTopic := map[string]string{}
	for _, n := range b.nodes {
		for _, s := range n.stores {
			decl, ok := b.stores[s]
			if !ok {
				errs = append(errs, &NodeError{Node: n.name, Msg: fmt.Sprintf("uses store %q, which is not declared: declare it with AddKeyValueStore", s)})
				continue
			}
			decl.users = append(decl.users, n)
		}
		if n.kind == kindSource {
			for _, topic := range n.topics {
				if other, dup := seenTopic[topic]; dup {
					errs = append(errs, &NodeError{Node: n.name, Msg: fmt.Sprintf("topic %q is already read by source %q: read it once and share the stream", topic, other)})
				}
				seenTopic[topic] = n.name
			}
		}
	}
	errs = append(errs, b.globalErrors(seenTopic)...)
	for _, name := range b.storeOrder {
		if len(b.stores[name].users) == 0 {
			errs = append(errs, &NodeError{Node: name, Msg: "the store is declared but no processor uses it"})
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	t := &Topology{stores: b.stores, storeOrder: b.storeOrder, globals: b.globals, globalOrder: b.globalOrder}
	t.split(b)
	if errs := t.copartitionErrors(); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return t, nil
}

// split groups nodes into sub-topologies: the connected components of the
// graph, where processors sharing a store count as connected. Repartition
// topics separate components because their sink and source are distinct
// nodes with no edge between them.
func (t *Topology) split(b *Builder) {
	parent := make(map[*node]*node, len(b.nodes))
	var find func(n *node) *node
	find = func(n *node) *node {
		if parent[n] == nil || parent[n] == n {
			parent[n] = n
			return n
		}
		r := find(parent[n])
		parent[n] = r
		return r
	}
	union := func(a, c *node) { parent[find(a)] = find(c) }
	for _, n := range b.nodes {
		find(n)
		for _, c := range n.children {
			union(n, c)
		}
	}
	for _, name := range b.storeOrder {
		users := b.stores[name].users
		for _, u := range users[1:] {
			union(users[0], u)
		}
	}
	// Number the components in the order their first node was added, which
	// is the order their first source was declared.
	ids := map[*node]*subtopology{}
	for _, n := range b.nodes {
		root := find(n)
		st, ok := ids[root]
		if !ok {
			st = &subtopology{id: len(t.subs)}
			ids[root] = st
			t.subs = append(t.subs, st)
		}
		n.sub = st.id
		st.nodes = append(st.nodes, n)
		for _, s := range n.stores {
			if !slices.Contains(st.stores, s) {
				st.stores = append(st.stores, s)
			}
		}
	}
}

// resolve returns the full name of a topic for an application id.
func resolve(appID string) func(string, bool) string {
	return func(topic string, internal bool) string {
		if internal {
			return appID + "-" + topic
		}
		return topic
	}
}

// ChangelogTopic is the name of a store's changelog topic for an
// application id: <application-id>-<store>-changelog.
func ChangelogTopic(appID, store string) string { return appID + "-" + store + "-changelog" }

// Subtopology describes one sub-topology for the engine and tools.
type Subtopology struct {
	ID int
	// SourceTopics are the topics the sub-topology reads (full names).
	SourceTopics []string
	// SinkTopics are the fixed external topics it writes (not those a
	// ToFunc chooser picks per record, nor repartition topics).
	SinkTopics []string
	// Stores are the names of the stores its tasks own.
	Stores []string
}

// Subtopologies lists the sub-topologies with full topic names for appID.
func (t *Topology) Subtopologies(appID string) []Subtopology {
	name := resolve(appID)
	out := make([]Subtopology, len(t.subs))
	for i, st := range t.subs {
		out[i] = Subtopology{ID: st.id, Stores: append([]string(nil), st.stores...)}
		for _, n := range st.nodes {
			switch {
			case n.kind == kindSource:
				for _, topic := range n.topics {
					out[i].SourceTopics = append(out[i].SourceTopics, name(topic, n.internal))
				}
			case n.kind == kindSink && !n.internal && len(n.topics) > 0:
				out[i].SinkTopics = append(out[i].SinkTopics, n.topics[0])
			}
		}
	}
	return out
}

// InternalTopicKind says what an internal topic is for.
type InternalTopicKind int

const (
	// Repartition topics carry re-keyed records between sub-topologies.
	Repartition InternalTopicKind = iota
	// Changelog topics back stores.
	Changelog
)

func (k InternalTopicKind) String() string {
	if k == Repartition {
		return "repartition"
	}
	return "changelog"
}

// InternalTopic is a topic the application creates and owns.
type InternalTopic struct {
	Name string
	Kind InternalTopicKind
	// Subtopology is, for a repartition topic, the sub-topology that writes
	// it; for a changelog, the one that owns the store. Unless Partitions is
	// set, the topic gets as many partitions as that sub-topology has tasks
	// (a repartition topic is then co-partitioned with its writer).
	Subtopology int
	// ReadBy is the sub-topology reading a repartition topic (-1 for a
	// changelog).
	ReadBy int
	// Partitions is an explicit partition count (WithPartitions), or 0.
	Partitions int
}

// InternalTopics lists the internal topics for appID: repartition topics
// first, then changelogs, each in declaration order.
func (t *Topology) InternalTopics(appID string) []InternalTopic {
	name := resolve(appID)
	var out []InternalTopic
	readers := map[string]int{}
	for _, st := range t.subs {
		for _, n := range st.nodes {
			if n.kind == kindSource && n.internal {
				readers[n.topics[0]] = st.id
			}
		}
	}
	for _, st := range t.subs {
		for _, n := range st.nodes {
			if n.kind == kindSink && n.internal {
				out = append(out, InternalTopic{Name: name(n.topics[0], true), Kind: Repartition, Subtopology: st.id, ReadBy: readers[n.topics[0]], Partitions: n.repartitionPartitions})
			}
		}
	}
	for _, st := range t.subs {
		for _, s := range st.stores {
			if t.stores[s].logged {
				out = append(out, InternalTopic{Name: ChangelogTopic(appID, s), Kind: Changelog, Subtopology: st.id, ReadBy: -1})
			}
		}
	}
	return out
}

func init() {
	task.SpecsOf = func(top any, appID string) []*task.Spec { return top.(*Topology).taskSpecs(appID) }
	task.GlobalsOf = func(top any, _ string) []task.GlobalSpec { return top.(*Topology).globalSpecs() }
}

// taskSpecs returns the runtime form of every sub-topology for appID, for
// eddy's engine and test driver (through task.SpecsOf).
func (t *Topology) taskSpecs(appID string) []*task.Spec {
	subs := t.Subtopologies(appID)
	out := make([]*task.Spec, len(t.subs))
	for i, st := range t.subs {
		spec := &task.Spec{ID: st.id, SourceTopics: subs[i].SourceTopics}
		for _, s := range st.stores {
			decl := t.stores[s]
			ss := task.StoreSpec{Name: s, Kind: decl.kind, Supplier: decl.backend, Cached: decl.cached, Timestamped: decl.timestamped}
			topic := s
			if decl.logged {
				ss.ChangelogTopic = ChangelogTopic(appID, s)
				ss.Changelog = decl.changelog
				topic = ss.ChangelogTopic
			}
			typed := decl.typed
			ss.Typed = func(raw state.RawStore) any { return typed(raw, topic) }
			spec.Stores = append(spec.Stores, ss)
		}
		nodes := st.nodes
		topicName := resolve(appID)
		spec.Build = func(tk *task.Task) error {
			memo := make(map[*node]any, len(nodes))
			var inst func(n *node) any
			inst = func(n *node) any {
				if v, ok := memo[n]; ok {
					return v
				}
				kids := make([]any, len(n.children))
				for j, c := range n.children {
					kids[j] = inst(c)
				}
				v := n.instantiate(tk, topicName, kids)
				memo[n] = v
				return v
			}
			for _, n := range nodes {
				if n.kind == kindSource {
					inst(n)
				}
			}
			return nil
		}
		out[i] = spec
	}
	return out
}

// Describe prints the sub-topologies with their sources, processors,
// stores, sinks and internal topics, with internal topics shown under
// the placeholder application id "<application-id>".
func (t *Topology) Describe() string {
	const app = "<application-id>"
	name := resolve(app)
	var sb strings.Builder
	sb.WriteString("Topology\n")
	for _, st := range t.subs {
		fmt.Fprintf(&sb, "  Sub-topology %d\n", st.id)
		for _, n := range st.nodes {
			switch n.kind {
			case kindSource:
				topics := make([]string, len(n.topics))
				for i, tp := range n.topics {
					topics[i] = name(tp, n.internal)
				}
				fmt.Fprintf(&sb, "    Source: %s (topics: [%s])\n", n.name, strings.Join(topics, ", "))
			case kindProcessor:
				detail := ""
				if n.detail != "" {
					detail = "; " + n.detail
				}
				fmt.Fprintf(&sb, "    Processor: %s (stores: [%s]%s)\n", n.name, strings.Join(n.stores, ", "), detail)
			case kindSink:
				topic := "<chosen per record>"
				if len(n.topics) > 0 {
					topic = name(n.topics[0], n.internal)
				}
				fmt.Fprintf(&sb, "    Sink: %s (topic: %s)\n", n.name, topic)
			}
			if len(n.children) > 0 {
				fmt.Fprintf(&sb, "      --> %s\n", strings.Join(nodeNames(n.children), ", "))
			}
			if len(n.parents) > 0 {
				fmt.Fprintf(&sb, "      <-- %s\n", strings.Join(nodeNames(n.parents), ", "))
			}
		}
	}
	if len(t.storeOrder) > 0 {
		sb.WriteString("  Stores\n")
		for _, name := range t.storeOrder {
			fmt.Fprintf(&sb, "    %s\n", t.stores[name].describe(app))
		}
	}
	sb.WriteString(t.describeGlobals())
	internal := t.InternalTopics(app)
	if len(internal) > 0 {
		sb.WriteString("  Internal topics\n")
		for _, it := range internal {
			parts := fmt.Sprintf("partitions of sub-topology %d", it.Subtopology)
			if it.Partitions > 0 {
				parts = fmt.Sprintf("%d partitions", it.Partitions)
			}
			fmt.Fprintf(&sb, "    %s: %s (%s)\n", it.Kind, it.Name, parts)
		}
	}
	return sb.String()
}

func nodeNames(ns []*node) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.name
	}
	sort.Strings(out)
	return out
}
