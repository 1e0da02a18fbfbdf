package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddystream/eddy/internal/metrics"
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
// commit that cannot complete is bounded instead by commitAttemptTimeout
// and TaskTimeout, and a transaction left open by a stuck or dead member
// by the transaction timeout, after which the coordinator aborts it.
const transactionTimeout = 10 * time.Second

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
// abort like any other; if the producer cannot recover, the task timeout
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
// transaction with any failed record, or whose records are not all
// acknowledged within the attempt's deadline, is aborted instead and
// tried again (see retryOrFail). The changelog records must have been
// produced already. w.mu is held.
func (w *worker) commitTransaction(ctx context.Context, start time.Time) error {
	actx, cancel := w.attemptContext(ctx, start)
	defer cancel()
	begin := !w.mu.closing
	if cause := w.flush(actx); cause != nil {
		if err := w.retryOrFail(start, cause); err != nil {
			// Abort what is open before failing, so that the next owner
			// of these tasks need not wait for the transaction timeout.
			return errors.Join(err, w.endTransaction(ctx, start, false, false))
		}
		return w.endTransaction(ctx, start, false, begin)
	}
	return w.endTransaction(ctx, start, true, begin)
}

// endTransaction ends the open transaction, committing the running tasks'
// work if commit is set and the transaction can still commit, and begins
// the next one if begin is set. The transaction began to end at start.
// w.mu is held.
//
// The transaction commits the running tasks' input offsets (what they
// processed, not what the client polled). On a commit, the overlays are
// applied and checkpoints advanced. On an abort (asked for, or forced by a
// rebalance or an error), the tasks reset to the last commit without
// restoring (see resetTasks).
func (w *worker) endTransaction(ctx context.Context, start time.Time, commit, begin bool) error {
	ctx, cancel := w.attemptContext(ctx, start)
	defer cancel()
	running := w.runningTasks(nil)
	offsets := taskOffsets(running)
	committed, yielded, err := w.end(ctx, commit, offsets)
	settled := false // committed, found out after End reported an error
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
		actx, acancel := context.WithTimeout(w.prodCtx, commitAttemptTimeout)
		_, aerr := w.sess.End(actx, kgo.TryAbort)
		acancel()
		// The end may have been cut off after the coordinator ended the
		// transaction and, since KIP-890, bumped the producer epoch: the
		// client, which never saw the answer, can then be fenced by its
		// own bump (see selfFenced).
		w.endCutOff = true
		if errors.Is(aerr, kerr.ProducerFenced) {
			return w.selfFenced(start, fmt.Errorf("end transaction: %v; then aborting it: %w", err, aerr))
		}
		if aerr != nil {
			err := fmt.Errorf("end transaction: %w; then aborting it: %w", err, aerr)
			if !mayPass(aerr) {
				return err
			}
			// The coordinator cannot finish the abort yet (it cannot
			// write its markers while partitions lack in-sync replicas):
			// one more failed attempt, and the client, left mid-abort,
			// is replaced with the worker.
			if ferr := w.retryOrFail(start, err); ferr != nil {
				return ferr
			}
			return &wedgedProducerError{err: err}
		}
		committed = false
		if commit {
			// The request to commit may have reached the coordinator
			// before End gave up on its answer: the abort above only
			// settled the outcome. Redoing a committed transaction's
			// work would output it twice.
			ok, serr := w.committedAfterAll(offsets)
			if serr != nil {
				// (The end's error is not wrapped: a cut-off end's
				// context.Canceled is not the shutdown's.)
				serr = fmt.Errorf("end transaction: %v; whether it committed is unknown: %w", err, serr)
				if ferr := w.retryOrFail(start, serr); ferr != nil {
					return ferr
				}
				// A new worker restores the tasks from what the brokers
				// hold, whichever way the transaction ended.
				return &wedgedProducerError{err: serr}
			}
			if ok {
				w.log.Info("the transaction committed although its end reported an error", "err", err)
				committed, settled = true, true
				err = nil
			}
		}
	}
	w.mu.abortPending = false
	if err != nil && fatalTxnError(err) {
		return fmt.Errorf("end transaction: %w (a newer instance with this transactional id, %s, fenced this one: do two instances share a state directory?)",
			err, transactionalID(w.e.cfg.ApplicationID, w.e.procID, w.idx))
	}
	if committed {
		w.noteCommitted(offsets)
		if err := w.applyCommitted(running); err != nil {
			return err
		}
		if settled && begin {
			// End rewound the client to its own idea of the last
			// commit: the tasks drop what they hold and read on from
			// what was committed.
			if err := w.resetTasks(); err != nil {
				return err
			}
		}
		w.committed()
		w.log.Debug("transaction committed", "tasks", len(running), "took", time.Since(start))
	} else {
		if commit && err != nil && !yielded {
			// The commit itself failed (not a rebalance's abort): one
			// more failed attempt.
			if ferr := w.retryOrFail(start, fmt.Errorf("end transaction: %w", err)); ferr != nil {
				return ferr
			}
		}
		w.log.Info("transaction aborted; tasks rewind to the last committed offsets", "tasks", len(running), "wanted_commit", commit, "err", err)
		if !begin {
			// Shutting down: the tasks close next; just drop their writes.
			for _, at := range running {
				at.t.AbortStores()
			}
		} else if err := w.resetTasks(); err != nil {
			return err
		}
	}
	// End has flushed or aborted every record of this transaction; what
	// failed belonged to it, not to the next one.
	w.produced.Lock()
	w.produced.err = nil
	w.produced.Unlock()
	if !committed {
		w.uncommitted = false // dropped with the transaction
	}
	if begin {
		return w.begin(start)
	}
	return nil
}

// beginBounded begins a transaction within the attempt's deadline. kgo's
// Begin first recovers the producer id, retrying CONCURRENT_TRANSACTIONS
// without a deadline for as long as the coordinator cannot finish the last
// transaction. Past the deadline the call is left to the client's close
// (in shutdown, which waits for it: beginDone), and the worker is
// replaced. Closing the client here would run the revoke callback, which
// takes w.mu, held here. w.mu is held.
func (w *worker) beginBounded(start time.Time) error {
	ctx, cancel := w.attemptContext(w.prodCtx, start)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- w.sess.Begin() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		w.beginDone = done
		return fmt.Errorf("the producer did not recover within %v: %w", time.Since(start).Round(time.Millisecond), ctx.Err())
	}
}

// selfFenced handles PRODUCER_FENCED after a transaction's end was cut off
// (w.endCutOff): the coordinator may have ended it and bumped the
// producer's epoch (KIP-890) in an answer the client never saw, so the
// client's next request carries an epoch its own transaction replaced.
// That is not another instance with this transactional id (the state
// directory's lock keeps two instances of one process id apart), so it is
// one more failed attempt and the worker is replaced, with a new client
// whose producer id is fresh; the tasks restore from what the brokers
// hold. PRODUCER_FENCED at any other moment still stops the worker.
func (w *worker) selfFenced(start time.Time, err error) error {
	w.log.Warn("the producer was fenced after a transaction's end was cut off (its own epoch bump, not another instance): replacing the worker", "err", err)
	// One more failed attempt of the streak, which the new worker carries
	// on (as retryOrFail counts one, but PRODUCER_FENCED would not pass its
	// check of errors that may pass).
	if w.stall.since.IsZero() {
		w.stall.since = start
	}
	w.stall.attempts++
	w.stall.cause = err
	w.wm.SetCommitStall(time.Since(w.stall.since))
	w.publishHealth()
	if stalled := time.Since(w.stall.since); stalled >= w.e.cfg.TaskTimeout {
		return &CommitTimeoutError{Worker: w.idx, Stalled: stalled, Attempts: w.stall.attempts, Cause: err}
	}
	return &wedgedProducerError{err: err}
}

// wedgedProducerError stops a worker whose transactional producer cannot
// recover in its client; the engine replaces the worker with a new one
// that carries the streak of failed attempts on (see Engine.Run).
type wedgedProducerError struct{ err error }

func (e *wedgedProducerError) Error() string {
	return fmt.Sprintf("%v (the transactional producer cannot recover in this client: the worker is replaced)", e.err)
}

func (e *wedgedProducerError) Unwrap() error { return e.err }

// beginRetry is how often the loop tries again to begin a transaction
// that could not begin.
const beginRetry = time.Second

// begin begins the next transaction. Beginning recovers the producer
// after a failed transaction, which fails while its coordinator cannot
// finish the last one (CONCURRENT_TRANSACTIONS: its markers cannot be
// written while the partitions lack in-sync replicas): that is one more
// failed attempt, and the loop processes nothing until a transaction is
// open (see retryBegin). w.mu is held.
func (w *worker) begin(start time.Time) error {
	err := w.beginBounded(start)
	if err == nil {
		w.needBegin = false
		w.endCutOff = false
		return nil
	}
	err = fmt.Errorf("begin transaction: %w", err)
	if errors.Is(err, kerr.ProducerFenced) && w.endCutOff {
		return w.selfFenced(start, err)
	}
	if !mayPass(err) {
		return err
	}
	if ferr := w.retryOrFail(start, err); ferr != nil {
		return ferr
	}
	if errors.Is(err, kerr.ConcurrentTransactions) || w.beginDone != nil {
		// kgo keeps this error as its producer's state for good: only a
		// new client (a new member, whose InitProducerID waits for the
		// coordinator) gets on. The engine replaces the worker.
		return &wedgedProducerError{err: err}
	}
	w.needBegin = true
	w.nextBegin = time.Now().Add(beginRetry)
	return nil
}

// retryBegin is step while no transaction is open: it puts back the
// records of this poll (nothing may be processed outside a transaction)
// and tries to begin one, at most every beginRetry. w.mu is held.
func (w *worker) retryBegin(fetches kgo.Fetches) error {
	w.mu.abortPending = false // nothing is open to abort
	w.noteReads(fetches)
	if len(w.rewindTo) > 0 {
		w.cl.SetOffsets(w.rewindTo)
	}
	if time.Now().Before(w.nextBegin) {
		return nil
	}
	return w.begin(time.Now())
}

// committedAfterAll finds out whether a transaction whose end failed and
// was then aborted committed after all: End reports an error when its
// context ends while the request to commit is on its way or its answer
// is, and the coordinator may have committed. The abort that follows
// settles the outcome (the producer's epoch is bumped, ending whatever
// was open), so the group's committed offsets now tell: the transaction
// committed if and only if they are the offsets it carried. Only
// partitions the transaction moved are compared; a transaction that
// moved none (a punctuation's output alone) is taken as aborted. The
// fetch requires stable offsets, so a transaction still being completed
// is waited for, within commitAttemptTimeout. w.mu is held.
func (w *worker) committedAfterAll(offsets map[string]map[int32]kgo.EpochOffset) (bool, error) {
	moved := map[string]map[int32]int64{}
	for topic, ps := range offsets {
		for p, o := range ps {
			if before, ok := w.rewindTo[topic][p]; ok && before.Offset == o.Offset {
				continue
			}
			if moved[topic] == nil {
				moved[topic] = map[int32]int64{}
			}
			moved[topic][p] = o.Offset
		}
	}
	if len(moved) == 0 {
		return false, nil
	}
	ctx, cancel := context.WithTimeout(w.prodCtx, commitAttemptTimeout)
	defer cancel()
	wait := 50 * time.Millisecond
	for {
		resp, err := w.e.adm.FetchOffsets(kadm.RequireStable(ctx), w.e.cfg.ApplicationID)
		if err == nil {
			err = resp.Error()
		}
		if err == nil {
			var yes, no int
			for topic, ps := range moved {
				for p, o := range ps {
					if r, ok := resp.Lookup(topic, p); ok && r.At == o {
						yes++
					} else {
						no++
					}
				}
			}
			if yes > 0 && no > 0 {
				return false, fmt.Errorf("the group's offsets hold %d of the %d the transaction committed", yes, yes+no)
			}
			return yes > 0, nil
		}
		// A transaction still completing (UNSTABLE_OFFSET_COMMIT) is
		// waited for; so is a group coordinator that moves or is down
		// (the fault that cut the end off may be its): only an answer
		// settles the question, and the attempt's deadline bounds it.
		var ke *kerr.Error
		if errors.As(err, &ke) && !ke.Retriable && !errors.Is(err, kerr.UnstableOffsetCommit) {
			return false, fmt.Errorf("fetch the group's offsets: %w", err)
		}
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("fetch the group's offsets: %v (gave up after %v: %w)", err, commitAttemptTimeout, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}

// errRebalanceWaiting cancels a transaction's end that a rebalance waits
// for (see end).
var errRebalanceWaiting = errors.New("a rebalance waits for the worker")

// end ends the open transaction, committing if commit is set, with
// offsets as the input offsets it commits (kgo's session would commit
// the client's polled positions: they are replaced in its request).
// yielded reports that it aborted instead because a rebalance was
// waiting.
//
// kgo's session, committing a transaction that holds offsets, makes the
// group heartbeat before it ends the transaction, and waits for that
// heartbeat. But once the group has a rebalance to run, its goroutine
// waits for the worker to allow it (BlockRebalanceOnPoll), which the
// worker does only after the commit: the heartbeat never comes, and End
// used to wait out its whole deadline (30 s of stalled output after a
// broker fault). A rebalance that waits means the session aborts the
// transaction anyway, so end aborts at once: when the group says a
// rebalance waits (OnPartitionsCallbackBlocked) before End starts, or
// while it runs, by cancelling its context.
func (w *worker) end(ctx context.Context, commit bool, offsets map[string]map[int32]kgo.EpochOffset) (committed, yielded bool, err error) {
	if commit && w.rebalanceWaiting.Load() {
		commit, yielded = false, true
	}
	ctx = kgo.PreTxnCommitFnContext(ctx, func(req *kmsg.TxnOffsetCommitRequest) error {
		setTxnOffsets(req, offsets)
		return nil
	})
	ectx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	w.endCancel.Store(&cancel)
	committed, err = w.sess.End(ectx, kgo.TransactionEndTry(commit))
	w.endCancel.Store(nil)
	if errors.Is(context.Cause(ectx), errRebalanceWaiting) {
		yielded = true
	}
	if yielded {
		w.log.Info("a rebalance waits: the transaction is aborted rather than committed", "err", err)
	}
	return committed, yielded, err
}

// onRebalanceBlocked is kgo's OnPartitionsCallbackBlocked: a rebalance
// waits for the loop to allow it. A transaction's end in progress is
// cancelled (see end); the flag holds until the loop allows the
// rebalance.
func (w *worker) onRebalanceBlocked(context.Context, *kgo.Client) {
	w.rebalanceWaiting.Store(true)
	if c := w.endCancel.Load(); c != nil {
		(*c)(errRebalanceWaiting)
	}
}

// setTxnOffsets replaces the partitions of a transaction's offset commit
// with offsets, keeping the topic ids kgo set. It runs under kgo's
// transaction lock: it only edits the request.
func setTxnOffsets(req *kmsg.TxnOffsetCommitRequest, offsets map[string]map[int32]kgo.EpochOffset) {
	ids := map[string][16]byte{}
	for _, t := range req.Topics {
		ids[t.Topic] = t.TopicID
	}
	req.Topics = req.Topics[:0]
	for _, topic := range slices.Sorted(maps.Keys(offsets)) {
		rt := kmsg.NewTxnOffsetCommitRequestTopic()
		rt.Topic, rt.TopicID = topic, ids[topic]
		ps := offsets[topic]
		for _, p := range slices.Sorted(maps.Keys(ps)) {
			rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
			rp.Partition = p
			rp.Offset = ps[p].Offset
			rp.LeaderEpoch = ps[p].Epoch
			rp.Metadata = &req.MemberID
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
}

// noteReads gives every partition of fetches that has no rewind point yet
// the offset of its first record: where an abort before the partition's
// first commit rewinds it to.
func (w *worker) noteReads(fetches kgo.Fetches) {
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		if len(p.Records) == 0 {
			return
		}
		if w.rewindTo == nil {
			w.rewindTo = map[string]map[int32]kgo.EpochOffset{}
		}
		ps := w.rewindTo[p.Topic]
		if ps == nil {
			ps = map[int32]kgo.EpochOffset{}
			w.rewindTo[p.Topic] = ps
		}
		if _, ok := ps[p.Partition]; !ok {
			ps[p.Partition] = kgo.EpochOffset{Epoch: -1, Offset: p.Records[0].Offset}
		}
	})
}
