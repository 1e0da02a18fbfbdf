package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// commitAttemptTimeout bounds one attempt at a commit: the flush of its
// records, then the offset commit or the transaction's end. Kafka Streams'
// producer gives a record delivery.timeout.ms (2 minutes) before it fails;
// an attempt here is shorter because a failed attempt is retried, warned
// about and shown in health, and only TaskTimeout of them fails the
// application.
const commitAttemptTimeout = 30 * time.Second

// produceRetries is how many times the producer retries a record whose
// write failed with an error that may pass (NOT_ENOUGH_REPLICAS,
// NOT_LEADER_OR_FOLLOWER, ...) before it fails the record with that error:
// with kgo's backoff (250ms doubling up to 5s), about 13 seconds of
// retries, inside one commit attempt. The worker then knows the cause
// (the error, topic and partition) to warn about, goes back to its last
// commit and tries again, until TaskTimeout. Transient blips (a leader
// moving) pass within the retries.
const produceRetries = 6

// stall is the state of a worker whose commits fail. The loop goroutine
// owns it; publishHealth copies it for the probes.
type stall struct {
	// since is when the first failed attempt of the current streak began
	// (zero: the last commit succeeded).
	since time.Time
	// attempts counts the failed attempts of the streak.
	attempts int
	// cause is why the last attempt failed.
	cause error
	// brokerCause is the last cause that was not a deadline: what the
	// brokers said.
	brokerCause error
	// orphaned is set when tasks were revoked or lost after the last
	// failed attempt: the uncommitted work it left went with them, to be
	// redone by their next owner. A later failed attempt clears it.
	orphaned bool
}

// produceError is a record the producer failed, with where it went.
type produceError struct {
	topic     string
	partition int32
	err       error
}

func (e *produceError) Error() string {
	return fmt.Sprintf("produce to %s-%d: %v", e.topic, e.partition, e.err)
}

func (e *produceError) Unwrap() error { return e.err }

// diagnose adds to cause, the failure of a commit attempt, what the
// cluster says of the partitions the worker writes to: kgo fails a record
// after its retries with kgo.ErrRecordRetries, which does not carry the
// brokers' last error, and a producer that cannot begin its next
// transaction (the coordinator cannot write the last one's markers) says
// only that it timed out. The partition of a failed record is looked at
// first, then every partition of the topics the worker writes to (sinks,
// changelogs, the dead-letter topic): one without a leader
// (LEADER_NOT_AVAILABLE) or with fewer in-sync replicas than its
// min.insync.replicas (the brokers answer NOT_ENOUGH_REPLICAS) is named.
// The listing is bounded; without an answer, or with nothing wrong,
// cause is returned as it is.
func (w *worker) diagnose(cause error) error {
	topics := w.e.written
	var pe *produceError
	if errors.As(cause, &pe) {
		topics = append([]string{pe.topic}, topics...)
	}
	if len(topics) == 0 {
		return cause
	}
	ctx, cancel := context.WithTimeout(w.prodCtx, 5*time.Second)
	defer cancel()
	listed, err := w.e.adm.ListTopics(ctx, topics...)
	if err != nil {
		return cause
	}
	var described kadm.ResourceConfigs
	minISR := func(topic string) int {
		if described == nil {
			if described, err = w.e.adm.DescribeTopicConfigs(ctx, listed.Names()...); err != nil {
				described = kadm.ResourceConfigs{}
			}
		}
		rc, err := described.On(topic, nil)
		if err != nil {
			return 0
		}
		for _, c := range rc.Configs {
			var n int
			if c.Key == "min.insync.replicas" && c.Value != nil {
				if _, err := fmt.Sscan(*c.Value, &n); err == nil {
					return n
				}
			}
		}
		return 0
	}
	check := func(topic string, p kadm.PartitionDetail) error {
		if p.Leader < 0 {
			return fmt.Errorf("%w (%s-%d has no leader: LEADER_NOT_AVAILABLE)", cause, topic, p.Partition)
		}
		// Kafka caps the min ISR a write needs at the replicas
		// (KIP-966).
		if need := min(minISR(topic), len(p.Replicas)); len(p.ISR) < need {
			return fmt.Errorf("%w (%s-%d has %d in-sync replicas, fewer than its min.insync.replicas %d: the brokers answer NOT_ENOUGH_REPLICAS)",
				cause, topic, p.Partition, len(p.ISR), need)
		}
		return nil
	}
	if pe != nil {
		if p, ok := listed[pe.topic].Partitions[pe.partition]; ok {
			if err := check(pe.topic, p); err != nil {
				return err
			}
		}
	}
	for _, topic := range topics {
		for _, p := range listed[topic].Partitions.Sorted() {
			if err := check(topic, p); err != nil {
				return err
			}
		}
	}
	return cause
}

// CommitTimeoutError is returned by Run when a worker's commits kept
// failing with errors that may pass for longer than TaskTimeout.
type CommitTimeoutError struct {
	// Worker is the index of the worker whose commits failed.
	Worker int
	// Stalled is how long the commits had been failing.
	Stalled time.Duration
	// Attempts is how many attempts failed.
	Attempts int
	// Cause is why the last attempt failed.
	Cause error
}

func (e *CommitTimeoutError) Error() string {
	return fmt.Sprintf("commits failed for %v (%d attempts), longer than the task timeout; the last attempt failed with: %v (check the brokers: are enough in-sync replicas up for the topics' min.insync.replicas, and may the application write to them?)",
		e.Stalled.Round(time.Millisecond), e.Attempts, e.Cause)
}

// Unwrap returns the cause of the last failed attempt.
func (e *CommitTimeoutError) Unwrap() error { return e.Cause }

// attemptContext returns the context of one commit attempt that began at
// start: bounded by commitAttemptTimeout, and by the moment the worker's
// task timeout runs out.
func (w *worker) attemptContext(parent context.Context, start time.Time) (context.Context, context.CancelFunc) {
	since := w.stall.since
	if since.IsZero() {
		since = start
	}
	deadline := start.Add(commitAttemptTimeout)
	if limit := since.Add(w.e.cfg.TaskTimeout); limit.Before(deadline) {
		deadline = limit
	}
	return context.WithDeadline(parent, deadline)
}

// flush waits until every record produced so far is acknowledged. It
// returns nil, or why not: the first record that failed, or ctx's end
// with the number of records still waiting. A record's failure is
// forgotten once returned: it belongs to the attempt that returns it.
func (w *worker) flush(ctx context.Context) error {
	begin := time.Now()
	err := w.cl.Flush(ctx)
	w.produced.Lock()
	failed := w.produced.err
	w.produced.err = nil
	w.produced.Unlock()
	if failed != nil {
		return failed
	}
	if err != nil {
		return fmt.Errorf("%d records were not acknowledged within %v (is a broker down or unreachable?): %w",
			w.cl.BufferedProduceRecords(), time.Since(begin).Round(time.Millisecond), err)
	}
	return nil
}

// mayPass reports whether a commit that failed with err may succeed if
// tried again: the broker answered with a retriable error, or did not
// answer in time.
func mayPass(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, kgo.ErrRecordTimeout) || errors.Is(err, kgo.ErrRecordRetries) {
		return true
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		// CONCURRENT_TRANSACTIONS, which kerr does not call retriable,
		// means the coordinator is still completing the last transaction
		// (it cannot write its markers while partitions lack in-sync
		// replicas): it passes once they have them.
		//
		// INVALID_PRODUCER_EPOCH and TRANSACTION_ABORTABLE on a record mean
		// the coordinator aborted the transaction (it outlived the
		// transaction timeout while commits failed): an abort like any
		// other, after which the producer recovers its epoch.
		return ke.Retriable || errors.Is(err, kerr.ConcurrentTransactions) ||
			errors.Is(err, kerr.InvalidProducerEpoch) || errors.Is(err, kerr.TransactionAbortable)
	}
	return false
}

// retryOrFail decides what follows a commit attempt that began at start
// and failed with cause: nil when the worker goes back to its last commit
// and tries again (it warns, and health and the stall metric show it), or
// the error to fail with. An error that cannot pass, any error under
// FailOnProductionError, and a streak of failures longer than the task
// timeout fail.
func (w *worker) retryOrFail(start time.Time, cause error) error {
	switch {
	case errors.Is(cause, context.Canceled):
		return fmt.Errorf("commit abandoned by the shutdown: %w", cause)
	case w.mu.closing:
		return cause // shutdown's final commit: it says so
	case w.e.cfg.FailOnProductionError || !mayPass(cause):
		return fmt.Errorf("%w (check that the topic exists and the application may write to it)", cause)
	}
	if w.stall.since.IsZero() {
		w.stall.since = start
	}
	w.stall.attempts++
	w.stall.orphaned = false
	if !errors.Is(cause, context.Canceled) {
		cause = w.diagnose(cause)
	}
	if !errors.Is(cause, context.DeadlineExceeded) {
		w.stall.brokerCause = cause
	} else if w.stall.brokerCause != nil {
		// The attempt ran out of time before any record failed: the last
		// error the brokers gave is still the best-known cause.
		cause = fmt.Errorf("%w; an earlier attempt failed with: %w", cause, w.stall.brokerCause)
	}
	w.stall.cause = cause
	stalled := time.Since(w.stall.since)
	w.wm.SetCommitStall(stalled)
	w.publishHealth()
	if stalled >= w.e.cfg.TaskTimeout {
		return &CommitTimeoutError{Worker: w.idx, Stalled: stalled, Attempts: w.stall.attempts, Cause: cause}
	}
	w.log.Warn("commit attempt failed; going back to the last commit to try again",
		"attempt", w.stall.attempts, "stalled_for", stalled.Round(time.Millisecond), "task_timeout", w.e.cfg.TaskTimeout, "cause", cause)
	return nil
}

// committed ends a streak of failed commits, if any.
func (w *worker) committed() {
	if w.stall.since.IsZero() {
		return
	}
	w.log.Info("commits succeed again", "stalled_for", time.Since(w.stall.since).Round(time.Millisecond), "failed_attempts", w.stall.attempts)
	w.stall = stall{}
	w.wm.SetCommitStall(0)
	w.publishHealth()
}

// rewind drops the work of the tasks since the last commit, under
// at-least-once, after a commit attempt failed: the records still
// buffered in the producer are failed, and the tasks reset to their last
// commit (see resetTasks). Records produced before the failure stay
// written, so this is a replay after a crash: outputs may repeat. w.mu is
// held.
func (w *worker) rewind() error {
	ctx, cancel := context.WithTimeout(w.prodCtx, commitAttemptTimeout)
	err := w.cl.AbortBufferedRecords(ctx)
	cancel()
	if err != nil {
		return fmt.Errorf("drop the records of a failed commit: %w", err)
	}
	w.produced.Lock()
	w.produced.err = nil
	w.produced.Unlock()
	return w.resetTasks()
}

// resetTasks takes every task back to its last commit, after an abort
// (exactly-once) or a failed commit (at-least-once), without restoring
// anything: each running task's uncommitted store writes are discarded
// (its stores hold the last committed state), its queued records dropped
// and its processors closed and built afresh over the same stores, which
// also drops what they kept in memory about the records being undone; a
// restoring task drops the records held for it; and every input partition
// is rewound to its rewind point (w.rewindTo). w.mu is held.
func (w *worker) resetTasks() error {
	for _, id := range w.sortedTasks() {
		at := w.mu.tasks[id]
		at.held = nil
		if !at.running() {
			continue
		}
		at.life.to(taskSuspended)
		at.t.AbortStores()
		at.t.DropBuffered()
		if err := at.t.Close(); err != nil {
			w.log.Warn("close task", "task", id, "err", err)
		}
		// What the task produced in the undone interval is not its
		// output any more.
		at.out = newCollector()
		t, err := w.newTask(at)
		if err != nil {
			return err
		}
		at.t = t
		at.life.to(taskRunning)
		if err := t.Init(); err != nil {
			return err
		}
		w.abortTaskRunning(id) // eddy bench's RequestAbort (aborthook.go)
	}
	if len(w.rewindTo) > 0 {
		w.cl.SetOffsets(w.rewindTo)
	}
	w.resets.Add(1)
	return nil
}
