// Package eddy runs stream-processing topologies against Kafka.
//
// Build a topology with package topology, then run it:
//
//	app, err := eddy.New(top,
//		eddy.ApplicationID("wordcount"),
//		eddy.Brokers("localhost:9092"),
//	)
//	if err != nil { ... }
//	err = app.Run(ctx) // blocks until ctx ends or a fatal error
//
// # What Run does
//
// Run checks the topology's source and sink topics, creates its internal
// topics (repartition and changelog) with kadm, and starts Workers group
// members. The group id is the application id. Each input partition number
// of a sub-topology is a task; eddy's group balancer (package rebalance)
// hands whole tasks to members, and starting another instance with the same
// application id spreads the tasks over more processes.
//
// Each worker runs one loop:
//
//  1. Poll a batch of records.
//  2. Give each record to its task. A task picks, across its input
//     partitions, the queued record with the smallest timestamp, runs it
//     through its processors, and updates its stores; store writes go to a
//     per-task overlay.
//  3. Fire wall-clock punctuators that are due.
//  4. Every CommitInterval: write one changelog record per key each store
//     changed, flush the producer (sink and changelog records), commit the
//     input offsets, apply the overlays to the stores and write each task's
//     checkpoint file (the changelog offsets its persistent stores match).
//
// That order is what at-least-once means: outputs and state are durable in
// Kafka before the input offsets that produced them are committed, so a
// crash loses nothing (it may repeat work since the last commit).
//
// Under ExactlyOnce, step 4 is one Kafka transaction per worker: the
// changelog records, the outputs and the input offsets (with the group
// generation) commit together, and only then are the overlays applied. If
// the transaction aborts (a rebalance during it, an error), every task is
// reopened from its checkpoint and re-reads from the last committed offsets.
//
// When a task is assigned, its stores are restored from their changelogs,
// from the checkpoint on (persistent stores) or from the start (in-memory
// stores, or a missing or corrupt checkpoint), before it processes input.
// When a task is revoked, it commits and writes its checkpoint first.
//
// Shutdown (cancelling Run's context, or Close) commits, writes
// checkpoints and leaves the group at once.
package eddy
