// Package rebalance describes how eddy assigns tasks to the members of an
// application's consumer group; the balancer itself is the engine's, in an
// internal package. It exports the name of eddy's group protocol
// (ProtocolName), which tools show for the group.
//
// A task is a sub-topology applied to one partition number of its source
// topics (processor.TaskID); all its partitions go to one member, and a
// member is one worker of an instance (eddy.Workers). The group leader
// balances task counts across instances, then across the workers of each
// instance, keeps tasks where they ran when balance allows, and moves a
// task cooperatively: revoked from its owner in one rebalance, assigned in
// the next, so it never runs on two members at once.
//
// Stateful tasks are placed by where their state is, as Kafka Streams does
// since KIP-441, with settings that eddy's options set under the same
// names:
//
//   - eddy.NumStandbyReplicas: standby replicas of each stateful task on
//     other instances (other racks first, eddy.Rack).
//   - eddy.AcceptableRecoveryLag: an instance whose state for a task is at
//     most this many changelog records behind is caught up. A stateful task
//     moves only to a caught-up instance while one exists; otherwise it is
//     held where its state is caught up and the target gets a warm-up
//     replica.
//   - eddy.MaxWarmupReplicas: how many warm-up replicas the group may
//     have at once (0: none; the held task then waits for a standby).
//   - eddy.ProbingRebalanceInterval: how often, while tasks are held, the
//     group rebalances to move those whose warm-ups caught up.
//
// Each option takes its value literally: a zero is a zero.
package rebalance
