package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddystream/eddy/metrics"
	"github.com/eddystream/eddy/processor"
)

// Exactly-once settings.
//
// The transaction timeout bounds how long the coordinator lets an open
// transaction live: if a member dies (or freezes) mid-transaction, its
// partial work is aborted after this long and its partitions' new owner
// can read past it (read_committed stops at the open transaction). Kafka
// Streams uses 10 s under exactly-once for the same reason.
//
// No record delivery timeout is set (kgo.RecordDeliveryTimeout), and none
// may be: kgo measures it from each record's timestamp, and eddy's output
// records carry the event time of their input, which may be far in the
// past (a backlog, or a partition held back by another member's open
// transaction). Such records would fail the moment they are produced. A
// commit that cannot complete is bounded instead by endTimeout, and a
// transaction left open by a stuck or dead member by the transaction
// timeout, after which the coordinator aborts it.
const (
	transactionTimeout = 10 * time.Second
	// maxFailedCommits is how many commits in a row may abort before the
	// worker gives up: an abort is normal after a rebalance, a long run
	// of them means the cluster or the application is broken.
	maxFailedCommits = 10
	// endTimeout bounds one transaction commit or abort.
	endTimeout = 30 * time.Second
)

// transactionalID is the worker's transactional id: stable across restarts
// of an instance that keeps its state directory (the process id lives
// there), so a restarted worker fences its predecessor's zombie. A zombie
// of an instance whose state was wiped has another id; the group
// generation sent with the offsets (KIP-447) fences it instead.
func transactionalID(appID, processID string, worker int) string {
	return fmt.Sprintf("%s-%s-%d", appID, processID, worker)
}

// eosOpts are the client options exactly-once adds.
func eosOpts(appID, processID string, worker int) []kgo.Opt {
	return []kgo.Opt{
		kgo.TransactionalID(transactionalID(appID, processID, worker)),
		kgo.TransactionTimeout(transactionTimeout),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	}
}

// fatalTxnError reports errors after which the worker must stop: it was
// fenced by a newer instance of itself, it may not use transactions, or
// its client is gone. INVALID_PRODUCER_EPOCH is not among them: the
// coordinator answers it when it aborted a transaction that outlived the
// transaction timeout (a long rebalance, a frozen process), which is an
// abort like any other; if the producer cannot recover, maxFailedCommits
// stops the worker.
func fatalTxnError(err error) bool {
	return errors.Is(err, kerr.ProducerFenced) ||
		errors.Is(err, kerr.TransactionalIDAuthorizationFailed) ||
		errors.Is(err, kerr.ClusterAuthorizationFailed) ||
		errors.Is(err, kgo.ErrClientClosed)
}

// commitTransaction commits the open transaction after making sure every
// record of it was delivered: a record that failed before it was ever sent
// does not stop kgo from committing the rest, which would lose it, so a
// transaction with any failed record is aborted instead. The changelog
// records must have been produced already. w.mu is held.
func (w *worker) commitTransaction(ctx context.Context) error {
	if err := w.cl.Flush(ctx); err != nil {
		return fmt.Errorf("flush the producer: %w", err)
	}
	// kgo calls every promise before Flush returns.
	w.produced.Lock()
	failed := w.produced.err
	w.produced.err = nil
	w.produced.Unlock()
	if failed != nil {
		w.log.Warn("a record of the transaction failed; aborting it", "err", failed)
		w.failedCommits++
	}
	return w.endTransaction(ctx, failed == nil, !w.mu.closing)
}

// endTransaction ends the open transaction, committing the running tasks'
// work if commit is set and the transaction can still commit, and begins
// the next one if begin is set. w.mu is held.
//
// On a commit, the overlays are applied and checkpoints written. On an
// abort (asked for, or forced by a rebalance or an error), every running
// task is closed without applying its overlay and reopened from its
// checkpoint: the client has already rewound its positions to the last
// committed offsets, and reopening also drops what processors kept in
// memory about the aborted records.
func (w *worker) endTransaction(ctx context.Context, commit, begin bool) error {
	ctx, cancel := context.WithTimeout(ctx, endTimeout)
	defer cancel()
	start := time.Now()
	committed, err := w.sess.End(ctx, kgo.TransactionEndTry(commit))
	defer func() {
		result := metrics.CommitOK
		if !committed {
			result = metrics.CommitAborted
		}
		if err != nil && fatalTxnError(err) {
			result = metrics.CommitFailed
		}
		w.wm.ObserveCommit(result, time.Since(start))
	}()
	if err != nil && !fatalTxnError(err) {
		// End can fail before it ends the transaction (its flush gives up
		// when ctx ends, as after a long freeze): end it with an abort
		// now, or the next Begin finds it still open.
		// (Ending a transaction that is not open is a no-op.)
		actx, acancel := context.WithTimeout(context.Background(), endTimeout)
		_, aerr := w.sess.End(actx, kgo.TryAbort)
		acancel()
		if aerr != nil {
			return fmt.Errorf("end transaction: %w; then aborting it: %w", err, aerr)
		}
		committed = false
	}
	w.mu.abortPending = false
	if !committed && len(w.txnStart) > 0 {
		// kgo's session rewinds only the partitions that have a committed
		// offset: one whose first transaction aborts would go on from
		// where the aborted transaction stopped, and its records would be
		// lost. Rewind every partition the transaction read explicitly.
		w.cl.SetOffsets(w.txnStart)
	}
	w.txnStart = nil
	if err != nil && fatalTxnError(err) {
		return fmt.Errorf("end transaction: %w (a newer instance with this transactional id, %s, fenced this one: do two instances share a state directory?)",
			err, transactionalID(w.e.cfg.ApplicationID, w.e.procID, w.idx))
	}
	running := w.runningTasks(nil)
	if committed {
		w.failedCommits = 0
		for _, at := range running {
			if err := at.t.CommitStores(); err != nil {
				return err
			}
			w.advanceCheckpoint(at)
			if err := at.writeCheckpoint(); err != nil {
				return err
			}
		}
		w.log.Debug("transaction committed", "tasks", len(running), "took", time.Since(start))
	} else {
		if commit {
			w.failedCommits++
		}
		w.log.Info("transaction aborted; tasks rewind to the last committed offsets", "tasks", len(running), "wanted_commit", commit, "err", err, "aborts_in_a_row", w.failedCommits)
		if w.failedCommits >= maxFailedCommits {
			return fmt.Errorf("%d transactions in a row aborted, the last with: %v", w.failedCommits, err)
		}
		if !begin {
			// Shutting down: the tasks close next; just drop their writes.
			for _, at := range running {
				at.t.AbortStores()
			}
		} else if err := w.reopen(running); err != nil {
			return err
		}
	}
	// End has flushed or aborted every record of this transaction; what
	// failed belonged to it, not to the next one.
	w.produced.Lock()
	w.produced.err = nil
	w.produced.Unlock()
	if begin {
		if err := w.sess.Begin(); err != nil {
			return fmt.Errorf("begin transaction: %w", err)
		}
	}
	return nil
}

// noteTxnStart remembers where the open transaction started reading a
// partition, the first time it reads from it.
func (w *worker) noteTxnStart(topic string, partition int32, offset int64) {
	if w.txnStart == nil {
		w.txnStart = map[string]map[int32]kgo.EpochOffset{}
	}
	ps := w.txnStart[topic]
	if ps == nil {
		ps = map[int32]kgo.EpochOffset{}
		w.txnStart[topic] = ps
	}
	if _, ok := ps[partition]; !ok {
		ps[partition] = kgo.EpochOffset{Epoch: -1, Offset: offset}
	}
}

// reopen closes tasks without applying their uncommitted writes and opens
// them again from their checkpoints. w.mu is held.
func (w *worker) reopen(tasks []*activeTask) error {
	ids := make([]processor.TaskID, len(tasks))
	for i, at := range tasks {
		ids[i] = at.t.ID()
	}
	w.closeTasks(ids, false)
	return w.startTasks(ids)
}
