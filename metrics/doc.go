// Package metrics documents the Prometheus metrics that eddy exports: the
// list below is what an App registers on the registry given with
// eddy.MetricsRegistry (or on a registry of its own, which eddy.AdminAddr's
// /metrics serves). The code that creates and updates them is the
// engine's, in an internal package; this package has no identifiers.
//
// Series of a task, a worker or an input partition that leaves the
// instance are deleted, so that a long-running instance exports only what
// it holds.
//
// # Metrics
//
// Every metric carries the constant label application, the application
// id, so that applications sharing a registry export distinct series.
// Durations are in seconds, sizes in bytes, and counters end in _total.
// Each entry gives the name, the type and the variable labels:
//
//   - eddy_task_records_consumed_total (counter; task): records the task
//     took from its input partitions. The task label is the task id,
//     "<subtopology>_<partition>".
//   - eddy_task_records_processed_total (counter; task): records the task
//     ran through its topology.
//   - eddy_task_records_produced_total (counter; task): records the task
//     sent to sink and repartition topics.
//   - eddy_task_changelog_records_produced_total (counter; task): records
//     the task sent to the changelog topics of its stores.
//   - eddy_dropped_records_total (counter; task, reason): records the task
//     dropped on purpose, as Kafka Streams' dropped-records-total, by
//     reason: null_key or null_value, a record with a null key or value
//     that a stream aggregation (count, reduce, aggregate) skips, whether
//     at the aggregation or before the repartition topic that feeds it;
//     invalid_timestamp, an input record with a negative timestamp that
//     its source skips (topology.SkipOnInvalidTimestamp); late, a record
//     a windowed aggregation skips because the windows it falls in have
//     closed (their end plus the grace period is at or before the stream
//     time), counted once per closed window as Kafka Streams counts it.
//     The four series exist, at zero, from the task's start.
//   - eddy_process_batch_duration_seconds (histogram; worker): time a worker
//     took to process one polled batch through its tasks, from 100µs to
//     10s. It is per batch, not per record: a clock read per record would
//     cost more than processing many a record, and the record path reads no
//     clock. Divide by eddy_process_batch_records for a mean per record. The
//     worker label is the worker's index in the instance, from 0.
//   - eddy_process_batch_records (histogram; worker): records in each
//     polled batch a worker processed, from 1 to 262144 in powers of 4.
//   - eddy_commits_total (counter; worker, result): commits by a worker.
//     result is ok (progress made durable), aborted (an exactly-once
//     transaction was aborted, and the worker reprocesses from the last
//     commit) or failed (the commit returned an error).
//   - eddy_commit_duration_seconds (histogram; worker): time a worker took
//     to commit, whatever the result, from 1ms to 60s.
//   - eddy_commit_stalled_seconds (gauge; worker): how long a worker's
//     commits have been failing (a broker rejecting writes, say), from the
//     start of the first failed attempt; 0 once a commit succeeds.
//   - eddy_rebalances_total (counter; worker): assignments a worker received
//     from its consumer group.
//   - eddy_group_generation (gauge; worker): the consumer group generation
//     of a worker's latest assignment.
//   - eddy_tasks (gauge; worker, state): tasks a worker holds, by state:
//     restoring (active, restoring its stores), running (active, processing)
//     or standby. Sum by state for the instance.
//   - eddy_restore_remaining_records (gauge; task): changelog records a task
//     has left to restore before it processes input; 0 once restored.
//   - eddy_restored_records_total (counter; task): changelog records restored
//     into a task's stores; rate() of it is the restore rate.
//   - eddy_restore_duration_seconds (histogram; none): time a task took to
//     restore its stores, from 10ms to two hours.
//   - eddy_standby_lag_records (gauge; task): changelog records a standby
//     task has yet to apply to catch up with its active task.
//   - eddy_consumer_lag_records (gauge; topic, partition): records between
//     the application's committed offset of an input partition assigned to
//     the instance and the partition's end (its last stable offset under
//     exactly-once), listed from the brokers every few seconds: it keeps
//     growing while the instance is stalled, whatever its fetch buffer
//     holds. Under exactly-once a partition whose last write was a
//     transaction shows a lag of 1 once caught up: its commit marker,
//     which takes an offset but is no record to consume.
//   - eddy_store_size_bytes (gauge; task, store): approximate size of a
//     store as its backend's state.Sizer reports it: the bytes of keys and
//     values of an in-memory store, the bytes on disk of a persistent one.
//
// A test checks that this list matches what the engine registers, and
// lints the names with promlint.
package metrics
