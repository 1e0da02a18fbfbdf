package rebalance

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// timeline records, across all members, who owns which partition, from
// kgo's OnPartitionsAssigned, OnPartitionsRevoked and OnPartitionsLost.
// Assigning a partition that another member still owns is a violation: it
// would run a task on two members at once.
type timeline struct {
	mu         sync.Mutex
	seq        int
	owner      map[topicPartition]string
	events     []string
	violations []string
	// assignedAt and revokedAt hold, per partition, the sequence numbers
	// of its assignments and revocations, with the member.
	assignedAt map[topicPartition][]ownerEvent
	revokedAt  map[topicPartition][]ownerEvent
}

type ownerEvent struct {
	seq    int
	member string
}

func newTimeline() *timeline {
	return &timeline{
		owner:      make(map[topicPartition]string),
		assignedAt: make(map[topicPartition][]ownerEvent),
		revokedAt:  make(map[topicPartition][]ownerEvent),
	}
}

func (tl *timeline) record(member, what string, ps map[string][]int32) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.seq++
	tl.events = append(tl.events, fmt.Sprintf("%3d %s %s %v", tl.seq, member, what, ps))
	for topic, parts := range ps {
		for _, p := range parts {
			tp := topicPartition{topic, p}
			switch what {
			case "assigned":
				if o, ok := tl.owner[tp]; ok && o != member {
					tl.violations = append(tl.violations, fmt.Sprintf("#%d: %s:%d assigned to %s while %s owns it", tl.seq, topic, p, member, o))
				}
				tl.owner[tp] = member
				tl.assignedAt[tp] = append(tl.assignedAt[tp], ownerEvent{tl.seq, member})
			default: // revoked, lost
				if tl.owner[tp] == member {
					delete(tl.owner, tp)
				}
				tl.revokedAt[tp] = append(tl.revokedAt[tp], ownerEvent{tl.seq, member})
			}
		}
	}
}

// ownership returns each member's partitions now.
func (tl *timeline) ownership() map[string]map[string][]int32 {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	out := make(map[string]map[string][]int32)
	for tp, m := range tl.owner {
		if out[m] == nil {
			out[m] = make(map[string][]int32)
		}
		out[m][tp.topic] = append(out[m][tp.topic], tp.partition)
	}
	for _, ps := range out {
		for _, p := range ps {
			slices.Sort(p)
		}
	}
	return out
}

func (tl *timeline) String() string {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return strings.Join(tl.events, "\n")
}

// TestKfakeGroup runs real kgo consumers with the Balancer against kfake:
// two members, then a third joins, then one leaves. Every member always
// owns whole tasks, every task ends up owned exactly once, and a task that
// moves is revoked from its owner before it is assigned to the next.
func TestKfakeGroup(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(6, "a", "b"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()

	subs := []Subtopology{{ID: 0, SourceTopics: []string{"a", "b"}}}
	tl := newTimeline()
	type groupMember struct {
		client   *kgo.Client
		balancer *Balancer
		closed   bool
	}
	members := make(map[string]*groupMember)
	defer func() {
		for _, m := range members {
			if !m.closed {
				m.client.Close()
			}
		}
	}()
	join := func(name string) {
		b, err := NewBalancer(Config{Subtopologies: subs, ProcessID: "process-" + name})
		if err != nil {
			t.Fatal(err)
		}
		record := func(what string) func(context.Context, *kgo.Client, map[string][]int32) {
			return func(_ context.Context, _ *kgo.Client, ps map[string][]int32) {
				if len(ps) > 0 {
					tl.record(name, what, ps)
				}
			}
		}
		cl, err := kgo.NewClient(
			kgo.SeedBrokers(cluster.ListenAddrs()...),
			kgo.ConsumerGroup("eddy-kfake"),
			kgo.ConsumeTopics(b.Layout().SourceTopics()...),
			kgo.Balancers(b),
			kgo.DisableAutoCommit(),
			// Members notice a rebalance at their next heartbeat, and
			// kfake completes a join as soon as every member rejoined.
			kgo.HeartbeatInterval(100*time.Millisecond),
			kgo.RebalanceTimeout(10*time.Second),
			kgo.OnPartitionsAssigned(record("assigned")),
			kgo.OnPartitionsRevoked(record("revoked")),
			kgo.OnPartitionsLost(record("lost")),
		)
		if err != nil {
			t.Fatal(err)
		}
		members[name] = &groupMember{client: cl, balancer: b}
	}

	// settled waits until the live members own every partition exactly
	// once, each member whole tasks, balanced, as their last assignments
	// say.
	settled := func(live ...string) map[string]map[string][]int32 {
		t.Helper()
		layout := members[live[0]].balancer.Layout()
		deadline := time.Now().Add(30 * time.Second)
		var why string
		for time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
			own := tl.ownership()
			why = ""
			total := 0
			var counts []int
			for _, name := range live {
				ps := own[name]
				tasks := layout.TasksOf(ps)
				if !equalPartitions(ps, layout.Partitions(tasks)) {
					why = fmt.Sprintf("%s owns %v: not whole tasks", name, ps)
					break
				}
				a, ok := members[name].balancer.LastAssignment()
				if !ok || !slices.Equal(a.ActiveTasks, tasks) {
					why = fmt.Sprintf("%s owns tasks %v, its last assignment says %v", name, tasks, a.ActiveTasks)
					break
				}
				total += len(tasks)
				counts = append(counts, len(tasks))
			}
			if why == "" && (total != 6 || len(own) != len(live)) {
				why = fmt.Sprintf("owned: %v", own)
			}
			if why == "" && spread(counts) > 1 {
				why = fmt.Sprintf("unbalanced: %v", own)
			}
			if why == "" {
				return own
			}
		}
		t.Fatalf("the group did not settle: %s\ntimeline:\n%s", why, tl)
		return nil
	}

	join("m1")
	join("m2")
	settled("m1", "m2")

	join("m3")
	before := tl.ownership()
	own := settled("m1", "m2", "m3")
	// m3's tasks came from m1 and m2: each was revoked from its owner
	// before m3 was assigned it.
	moved := 0
	for topic, ps := range own["m3"] {
		for _, p := range ps {
			tp := topicPartition{topic, p}
			var prev string
			for name, theirs := range before {
				if slices.Contains(theirs[topic], p) {
					prev = name
				}
			}
			if prev == "" {
				continue
			}
			moved++
			tl.mu.Lock()
			assigned := tl.assignedAt[tp][len(tl.assignedAt[tp])-1]
			revokedBefore := slices.ContainsFunc(tl.revokedAt[tp], func(e ownerEvent) bool {
				return e.member == prev && e.seq < assigned.seq
			})
			tl.mu.Unlock()
			if assigned.member != "m3" || !revokedBefore {
				t.Errorf("%s:%d moved from %s to m3 without being revoked first", topic, p, prev)
			}
		}
	}
	if moved != 4 { // two whole tasks of two partitions each
		t.Errorf("%d partitions moved to m3, want 4\ntimeline:\n%s", moved, tl)
	}

	members["m1"].client.Close()
	members["m1"].closed = true
	settled("m2", "m3")

	tl.mu.Lock()
	violations := slices.Clone(tl.violations)
	tl.mu.Unlock()
	if len(violations) > 0 {
		t.Errorf("partitions owned by two members at once:\n%s\ntimeline:\n%s", strings.Join(violations, "\n"), tl)
	}
	t.Logf("timeline:\n%s", tl)
}
