package rebalance_test

import (
	"fmt"
	"log"

	"github.com/eddystream/eddy/internal/rebalance"
	"github.com/eddystream/eddy/processor"
	"github.com/twmb/franz-go/pkg/kgo"
)

// A member joins a group whose only member runs all four tasks. In the
// first rebalance the old member only gives up two tasks; the new member
// gets them in the rebalance that follows.
func ExampleAssign() {
	layout, err := rebalance.NewLayout([]rebalance.Subtopology{{ID: 0, SourceTopics: []string{"orders", "payments"}}})
	if err != nil {
		log.Fatal(err)
	}
	counts := map[string]int32{"orders": 4, "payments": 4}
	old := rebalance.MemberMetadata{
		ProcessID:       "instance-a",
		Generation:      3,
		ActiveTasks:     []processor.TaskID{{Subtopology: 0, Partition: 0}, {Subtopology: 0, Partition: 1}, {Subtopology: 0, Partition: 2}, {Subtopology: 0, Partition: 3}},
		OwnedPartitions: map[string][]int32{"orders": {0, 1, 2, 3}, "payments": {0, 1, 2, 3}},
	}
	members := []rebalance.Member{
		{ID: "member-a", Metadata: old},
		{ID: "member-b", Metadata: rebalance.MemberMetadata{ProcessID: "instance-b", Generation: -1}},
	}

	plan, err := rebalance.Assign(layout, counts, members, rebalance.AssignOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("first rebalance:")
	for _, id := range []string{"member-a", "member-b"} {
		fmt.Println(id, plan.Assignments[id].ActiveTasks, plan.Assignments[id].Partitions)
	}
	for _, d := range plan.Deferred {
		fmt.Println("deferred", d.Task, d.From, "->", d.To)
	}

	// member-a revoked 0_2 and 0_3 and rejoined.
	members[0].Metadata.Generation = 4
	members[0].Metadata.ActiveTasks = plan.Assignments["member-a"].ActiveTasks
	members[0].Metadata.OwnedPartitions = plan.Assignments["member-a"].Partitions
	members[1].Metadata.Generation = 4
	plan, err = rebalance.Assign(layout, counts, members, rebalance.AssignOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("second rebalance:")
	for _, id := range []string{"member-a", "member-b"} {
		fmt.Println(id, plan.Assignments[id].ActiveTasks, plan.Assignments[id].Partitions)
	}
	// Output:
	// first rebalance:
	// member-a [0_0 0_1] map[orders:[0 1] payments:[0 1]]
	// member-b [] map[]
	// deferred 0_2 [member-a] -> member-b
	// deferred 0_3 [member-a] -> member-b
	// second rebalance:
	// member-a [0_0 0_1] map[orders:[0 1] payments:[0 1]]
	// member-b [0_2 0_3] map[orders:[2 3] payments:[2 3]]
}

// Each member's kgo client gets its own Balancer and consumes exactly the
// layout's source topics.
func ExampleNewBalancer() {
	b, err := rebalance.NewBalancer(rebalance.Config{
		Subtopologies: []rebalance.Subtopology{
			{ID: 0, SourceTopics: []string{"orders"}},
			{ID: 1, SourceTopics: []string{"app-KSTREAM-REPARTITION", "customers"}},
		},
		ProcessID: "0b6c8f0e-3f7e-4c1a-9a59-7c2f3f1d2e11",
		Endpoint:  "10.0.0.7:8080",
		OnAssignment: func(a rebalance.Assignment) {
			// Hand a.ActiveTasks to the engine's task manager.
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	opts := []kgo.Opt{
		kgo.ConsumerGroup("app"),
		kgo.ConsumeTopics(b.Layout().SourceTopics()...),
		kgo.Balancers(b),
	}
	fmt.Println(len(opts), "options; topics", b.Layout().SourceTopics())
	task, _ := b.Layout().TaskOf("customers", 5)
	fmt.Println("customers partition 5 belongs to task", task)
	// Output:
	// 3 options; topics [app-KSTREAM-REPARTITION customers orders]
	// customers partition 5 belongs to task 1_5
}
