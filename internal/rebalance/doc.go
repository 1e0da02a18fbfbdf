// Package rebalance (internal) owns the group balancer that eddy members
// use: the member metadata codec, the task assignor and the translation
// between tasks and topic partitions. Only the engine uses it. What a user
// sees of it, the protocol name and how eddy's options steer the
// assignment, is in the public package github.com/eddystream/eddy/rebalance.
//
// # Tasks and partitions
//
// A task is a sub-topology applied to one partition number of its source
// topics (processor.TaskID). A Layout lists the sub-topologies, their
// source topics and the changelog topics of their state stores; partition p
// of every source and changelog topic of sub-topology s belongs to task
// s_p, so a task is the unit the group assigns: all its partitions go to
// one member. A task whose sub-topology has changelog topics is stateful. A member is one worker of an instance (process); an
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
//   - Assignment, received at sync: the active and standby tasks, the
//     partitions of the active tasks, which kgo consumes, and whether the
//     member should trigger a probing rebalance.
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
// # Lag, standbys and warm-ups
//
// Stateful tasks are placed by where their state is, as Kafka Streams does
// since KIP-441. At each balance the leader fetches the end offsets of the
// changelog topics (Config.EndOffsets); each member reports, per task whose
// state its instance has, the sum of the changelog offsets that state has
// restored up to, or OffsetSumRunning for a task it runs
// (Config.TaskOffsetSums). An instance's lag for a task is the task's end
// offset sum minus its offset sum; it is caught up if the lag is at most
// Config.AcceptableRecoveryLag.
//
// Each stateful task gets Config.NumStandbyReplicas standby replicas on
// other instances than its active one: members that replay its changelogs
// into a copy of its state, so that another instance can take the task
// over without a long restore. They go to other racks first, then to the
// least loaded instances, and among equally loaded ones stay where their
// state is.
//
// A stateful task never moves to an instance without caught-up state, if
// some instance has caught-up state: the balanced plan's move is held, the
// task stays active where it is caught up, and the target instance gets a
// warm-up replica (a standby task, at most Config.MaxWarmupReplicas in the
// group at once). The leader then asks one member to trigger a probing
// rebalance after Config.ProbingRebalanceInterval
// (Assignment.ProbeRebalance, Config.RequestRebalance); when a probing
// rebalance finds the target caught up, the task moves there
// (cooperatively, in two rebalances). Until then, task counts are
// unbalanced. Stateless tasks move at once. If the end offsets are unknown, the leader assigns stateful
// tasks to their owners and to instances that report state for them, and
// probes again.
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
// the partitions of fetched records to tasks with Layout.TaskOf. For
// stateful topologies it also reports its standby tasks and offset sums
// (Layout.ChangelogPartitions and Layout.TaskOffsetSum help), gives the
// leader a way to list end offsets and the member a way to force a
// rebalance, and calls Balancer.Close when the member leaves.
package rebalance
