package changelog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// RestoreTarget is the store a Restorer restores into. The Restorer calls
// it from one goroutine at a time.
type RestoreTarget interface {
	// Wipe deletes everything in the store. The Restorer calls it before a
	// full restore (see Plan.Full), and again if it has to start over.
	Wipe() error
	// ApplyBatch writes changelog records to the store, in offset order.
	// A record's Key and Value are the store's key and value; a nil Value
	// is a tombstone that deletes the key, while an empty non-nil Value is
	// an empty value. Control records and records of aborted transactions
	// never reach ApplyBatch. ApplyBatch may keep the records, but not the
	// slice.
	ApplyBatch(records []*kgo.Record) error
}

// Syncer is implemented by targets that buffer or apply without making
// their writes durable (StoreTarget does). After a successful restore, the
// Restorer calls Sync from the restoring goroutine, so the targets of
// RestoreAll sync concurrently, each as soon as its own restore ends; the
// store is durable up to RestoreResult.EndOffset when Restore returns.
type Syncer interface {
	Sync() error
}

// RestoreJob is one store to restore with Restorer.RestoreAll.
type RestoreJob struct {
	// Partition is the store's changelog partition.
	Partition TopicPartition
	// Checkpoint is the store's checkpoint offset, or NoCheckpoint.
	Checkpoint int64
	// Target is the store.
	Target RestoreTarget
}

// Restorer restores stores from their changelog partitions, reading only
// committed data. It is safe for concurrent use; each Restore is independent.
//
// A Restorer issues Metadata, ListOffsets and Fetch requests on the client
// it is given and changes nothing else about it: it neither consumes through
// the client nor closes it. Fetch requests share a broker connection with
// the client's own fetches, so give it a client that does not consume, or
// restore fetches queue behind the consumer's long polls.
type Restorer struct {
	cl           *kgo.Client
	adm          *kadm.Client
	decompressor kgo.Decompressor
	cfg          restoreConfig
}

// NewRestorer returns a Restorer that talks to Kafka through cl. The caller
// keeps ownership of cl and closes it after the last restore has returned.
func NewRestorer(cl *kgo.Client, opts ...RestoreOption) (*Restorer, error) {
	if cl == nil {
		return nil, errors.New("changelog: NewRestorer: the client is nil")
	}
	cfg := defaultRestoreConfig()
	for _, opt := range opts {
		opt(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Restorer{
		cl:           cl,
		adm:          kadm.NewClient(cl),
		decompressor: kgo.DefaultDecompressor(),
		cfg:          cfg,
	}, nil
}

// Restore brings target up to date from changelog partition tp. checkpoint
// is the store's checkpoint offset for tp, or NoCheckpoint.
//
// Restore lists the partition's log start and last stable offsets, plans
// with PlanRestore, calls target.Wipe if the plan is full, and applies every
// committed record from the plan's From up to its End, in batches of at most
// WithBatchSize records. Records committed after the listing are left for
// the caller's normal processing or a later restore. On success the store
// reflects the changelog up to RestoreResult.EndOffset, which is the offset
// to checkpoint.
//
// If the log start moves past the restore's position while it reads
// (retention deleted the records it was about to read), Restore wipes the
// target and starts over from the new log start. Transient errors (leader
// changes, brokers restarting) are retried with backoff until ctx ends.
//
// Errors name the partition. A checkpoint past the end of the changelog
// fails with an error matching ErrCheckpointAhead, before target is touched;
// an error from target is returned wrapped; a canceled ctx returns ctx's
// error. After an error the store may hold part of the restore; restoring
// it again, from the checkpoint it had or from none, repairs it, because
// replaying a changelog from an offset the store has already passed ends in
// the same state.
func (r *Restorer) Restore(ctx context.Context, tp TopicPartition, checkpoint int64, target RestoreTarget) (res RestoreResult, err error) {
	if l := r.cfg.listener; l != nil {
		defer func() { l.OnRestoreEnd(tp, res, err) }()
	}
	return r.restore(ctx, tp, checkpoint, target)
}

func (r *Restorer) restore(ctx context.Context, tp TopicPartition, checkpoint int64, target RestoreTarget) (RestoreResult, error) {
	start := time.Now()
	res := RestoreResult{Partition: tp}
	for restarts := 0; ; restarts++ {
		first := restarts == 0
		if !first && !sleep(ctx, backoff(restarts)) {
			return res, fmt.Errorf("changelog: restore %s: %w", tp, ctx.Err())
		}
		plan, logStart, err := r.plan(ctx, tp, checkpoint)
		if err != nil {
			return res, fmt.Errorf("changelog: restore %s: %w", tp, err)
		}
		res.EndOffset = plan.End
		if first || plan.Full {
			res.StartOffset = plan.From
		}
		r.logPlan(tp, checkpoint, logStart, plan, first)
		if l := r.cfg.listener; l != nil {
			l.OnRestoreStart(tp, plan.From, plan.End)
		}
		if plan.Full {
			if err := target.Wipe(); err != nil {
				return res, fmt.Errorf("changelog: restore %s: wiping the store: %w", tp, err)
			}
			res.Full = true
		}
		next, applied, err := r.copy(ctx, tp, plan, target)
		res.Records += applied
		if errors.Is(err, kerr.OffsetOutOfRange) {
			// The log moved under the restore. Plan again from where it
			// got to, as if that were the checkpoint.
			checkpoint = next
			continue
		}
		if err != nil {
			return res, fmt.Errorf("changelog: restore %s: %w", tp, err)
		}
		if syncer, ok := target.(Syncer); ok {
			if err := syncer.Sync(); err != nil {
				return res, fmt.Errorf("changelog: restore %s: making the store durable: %w", tp, err)
			}
		}
		res.Duration = time.Since(start)
		if plan.From < plan.End {
			r.cfg.logger.Info(fmt.Sprintf("restored %s: %d records up to offset %d in %s", tp, res.Records, res.EndOffset, res.Duration.Round(time.Millisecond)),
				"partition", tp.String(), "records", res.Records, "end", res.EndOffset, "full", res.Full, "duration", res.Duration)
		}
		return res, nil
	}
}

// RestoreAll runs Restore for every job, at most WithConcurrency at a time,
// and returns each job's result and error at the job's index. The jobs must
// name distinct partitions and distinct targets.
func (r *Restorer) RestoreAll(ctx context.Context, jobs []RestoreJob) ([]RestoreResult, []error) {
	results := make([]RestoreResult, len(jobs))
	errs := make([]error, len(jobs))
	indexes := make(chan int)
	var wg sync.WaitGroup
	for range min(r.cfg.concurrency, len(jobs)) {
		wg.Go(func() {
			for i := range indexes {
				job := jobs[i]
				results[i], errs[i] = r.Restore(ctx, job.Partition, job.Checkpoint, job.Target)
			}
		})
	}
	for i := range jobs {
		indexes <- i
	}
	close(indexes)
	wg.Wait()
	return results, errs
}

// plan lists tp's offsets and plans its restore from checkpoint.
//
// A checkpoint above the last stable offset is ahead of the changelog only
// if it is above the log's end too. Between the two, the data it names is
// there, behind a transaction still open below it: one that another
// producer (a zombie of the task's previous owner, say) began before this
// store's last commit. plan waits until that transaction ends (the
// coordinator aborts it after the transaction timeout at the latest) or
// ctx does, rather than report the checkpoint ahead: the store would be
// wiped, and its committed state lost, for a transaction that ends
// seconds later.
func (r *Restorer) plan(ctx context.Context, tp TopicPartition, checkpoint int64) (Plan, int64, error) {
	for waits := 1; ; waits++ {
		logStart, end, err := r.listOffsets(ctx, tp)
		if err != nil {
			return Plan{}, 0, err
		}
		plan, err := planRestore(checkpoint, logStart, end)
		if !errors.Is(err, ErrCheckpointAhead) {
			return plan, logStart, err
		}
		logEnd, lerr := listedOffset(tp)(r.adm.ListEndOffsets(ctx, tp.Topic))
		if lerr != nil || checkpoint > logEnd {
			return plan, logStart, err
		}
		if waits == 1 || waits%20 == 0 {
			r.cfg.logger.Info(fmt.Sprintf("waiting to restore %s: its last stable offset %d is below the checkpoint %d, held there by a transaction still open (the log ends at %d)", tp, end, checkpoint, logEnd),
				"partition", tp.String(), "last_stable", end, "checkpoint", checkpoint, "log_end", logEnd)
		}
		if !sleep(ctx, backoff(waits)) {
			return Plan{}, logStart, ctx.Err()
		}
	}
}

func (r *Restorer) logPlan(tp TopicPartition, checkpoint, logStart int64, plan Plan, first bool) {
	log := r.cfg.logger
	attrs := []any{"partition", tp.String(), "from", plan.From, "end", plan.End, "full", plan.Full}
	switch {
	case !first && plan.Full:
		log.Warn(fmt.Sprintf("restarting the restore of %s from offset %d: the log start moved past offset %d while restoring, deleting records not yet read; wiping the store", tp, plan.From, checkpoint), attrs...)
	case !first:
		log.Warn(fmt.Sprintf("continuing the restore of %s at offset %d after the broker reported it out of range", tp, plan.From), attrs...)
	case plan.Full && checkpoint == NoCheckpoint:
		log.Info(fmt.Sprintf("restoring %s in full: offsets %d to %d (no checkpoint)", tp, plan.From, plan.End), attrs...)
	case plan.Full:
		log.Warn(fmt.Sprintf("restoring %s in full: offsets %d to %d; the checkpoint at offset %d is below the log start %d, so the records after it were deleted; wiping the store", tp, plan.From, plan.End, checkpoint, logStart), attrs...)
	case plan.From < plan.End:
		log.Info(fmt.Sprintf("restoring %s from its checkpoint: offsets %d to %d", tp, plan.From, plan.End), attrs...)
	default:
		log.Debug(fmt.Sprintf("%s is up to date at offset %d", tp, plan.End), attrs...)
	}
}

// copy applies the committed records of tp from plan.From to plan.End to
// target. It returns the next offset to read and the number of records
// applied, also on error.
//
// One goroutine fetches while this one applies, so that the next fetch is
// on the wire while a batch is written to the store. The fetcher stops when
// it reaches plan.End, when it fails (it sends its error), or when copy
// cancels it; copy waits for it before returning.
func (r *Restorer) copy(ctx context.Context, tp TopicPartition, plan Plan, target RestoreTarget) (next, applied int64, err error) {
	fetchCtx, cancel := context.WithCancel(ctx)
	fetched := make(chan fetchedBatch, 1)
	fetcherDone := make(chan struct{})
	go func() {
		defer close(fetcherDone)
		r.fetchLoop(fetchCtx, tp, plan.From, plan.End, fetched)
	}()
	defer func() {
		cancel()
		<-fetcherDone
	}()

	prog := progress{logger: r.cfg.logger, tp: tp, from: plan.From, end: plan.End, interval: r.cfg.progressInterval, last: time.Now()}
	next = plan.From
	for batch := range fetched {
		if batch.err != nil {
			return next, applied, batch.err
		}
		for chunk := range slices.Chunk(batch.records, r.cfg.batchSize) {
			if err := target.ApplyBatch(chunk); err != nil {
				return next, applied, fmt.Errorf("applying records at offsets %d to %d: %w", chunk[0].Offset, chunk[len(chunk)-1].Offset, err)
			}
			applied += int64(len(chunk))
			if l := r.cfg.listener; l != nil {
				l.OnBatchRestored(tp, chunk[len(chunk)-1].Offset+1, len(chunk))
			}
		}
		next = batch.next
		prog.report(next, applied)
	}
	// The fetcher closes the channel without an error only when it reached
	// plan.End or ctx ended.
	return next, applied, ctx.Err()
}

// progress logs a restore's progress at most once per interval.
type progress struct {
	logger    *slog.Logger
	tp        TopicPartition
	from, end int64
	interval  time.Duration
	last      time.Time
}

func (p *progress) report(next, applied int64) {
	now := time.Now()
	if now.Sub(p.last) < p.interval || next >= p.end {
		return
	}
	p.last = now
	p.logger.Info(fmt.Sprintf("restoring %s: %d/%d offsets, %d records applied", p.tp, next-p.from, p.end-p.from, applied),
		"partition", p.tp.String(), "offset", next, "end", p.end, "records", applied)
}
