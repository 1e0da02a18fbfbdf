// Package rebalance owns the group balancer that eddy members use: the
// member metadata codec, the task assignor and the translation between tasks
// and topic partitions.
//
// # Tasks and partitions
//
// A task is a sub-topology applied to one partition number of its source
// topics (processor.TaskID). A Layout lists the sub-topologies and their
// source topics; partition p of every source topic of sub-topology s belongs
// to task s_p, so a task is the unit the group assigns: all its partitions
// go to one member. A member is one worker of an instance (process); an
// instance may run several workers, all with the instance's process id.
//
// # Protocol
//
// Members join the group under the protocol ProtocolName with kgo's
// "consumer" protocol type. Like Kafka Streams, eddy keeps the standard
// consumer-protocol envelopes (kmsg.ConsumerMemberMetadata and
// kmsg.ConsumerMemberAssignment), so brokers and tools still see each
// member's topics, owned partitions and assigned partitions, and puts its own
// fields in their user data, behind two magic bytes and a version byte:
//
//   - MemberMetadata, sent at join: process id, endpoint, rack, worker
//     index and count, owned partitions, generation, previously owned active
//     and standby tasks, and per-task changelog offset sums.
//   - Assignment, received at sync: the active and standby tasks, and the
//     partitions of the active tasks, which kgo consumes.
//
// A later version appends fields; a reader ignores the fields of versions
// newer than its own, so members of adjacent versions can share a group
// during a rolling upgrade. The decoders reject anything else with errors
// wrapping ErrNotEddy or ErrMalformed, and never panic.
//
// # Assignment
//
// The group leader's Balancer runs Assign, which is pure: no I/O, no clock,
// the same input gives the same Plan. It balances task counts across
// processes and then across the members of each process, keeps tasks with
// their previous owners where balance allows, and spreads each
// sub-topology's tasks across processes. See Assign for the precise rules.
//
// # Cooperative moves
//
// The Balancer is cooperative: members keep consuming across a rebalance
// what they keep. A task must never run on two members at once, so a task
// that moves from member A to member B takes two rebalances:
//
//  1. The leader plans the task for B, but because A owns its partitions
//     now (A's metadata lists them as owned), B does not get it: the task is
//     only missing from A's new assignment (Plan.Deferred).
//  2. A's kgo client diffs its new assignment against its previous one,
//     calls OnPartitionsRevoked for the task's partitions (where the engine
//     commits and closes the task) and, because it lost partitions, rejoins
//     the group at once.
//  3. That rejoin starts a new rebalance. Now no member owns the task's
//     partitions, and the leader assigns it; B receives it through
//     OnPartitionsAssigned.
//
// kgo's own cooperative-sticky balancer does the same per partition
// (BalancePlan.AdjustCooperative); eddy does it per task, so a member never
// holds part of a task.
//
// # Using the Balancer
//
// Give each member's kgo client its own Balancer, built by NewBalancer from
// the topology's sub-topologies and the instance's process id, with
// kgo.ConsumerGroup, kgo.Balancers(balancer) and
// kgo.ConsumeTopics(balancer.Layout().SourceTopics()...). The engine learns
// its tasks from Config.OnAssignment or Balancer.LastAssignment, and maps
// the partitions of fetched records to tasks with Layout.TaskOf.
package rebalance
