package changelog

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	// fetchMaxWaitMillis bounds how long a broker holds a fetch that has
	// no data yet. A restore only fetches offsets below the last stable
	// offset, so data is normally there at once.
	fetchMaxWaitMillis = 500
	minBackoff         = 100 * time.Millisecond
	maxBackoff         = 2 * time.Second
)

// errNoProgress is a fetch that returned nothing and did not advance,
// although committed data lay ahead; it is retried.
var errNoProgress = errors.New("the broker returned no data below the end offset")

// errNoLeader is a partition without a leader, as during an election; it is
// retried.
var errNoLeader = errors.New("the partition has no leader")

// fetchedBatch is what the fetcher hands the applier: the committed records
// of one fetch and the next offset to fetch after them, or an error that
// ended fetching at next.
type fetchedBatch struct {
	records []*kgo.Record
	next    int64
	err     error
}

// leader is where to fetch a partition from.
type leader struct {
	broker  int32
	epoch   int32
	topicID [16]byte
}

// fetchLoop fetches tp from next up to end and sends what it gets to out,
// retrying transient errors. It closes out when it reaches end, after it
// sends a permanent error, or when ctx ends.
func (r *Restorer) fetchLoop(ctx context.Context, tp TopicPartition, next, end int64, out chan<- fetchedBatch) {
	defer close(out)
	send := func(b fetchedBatch) bool {
		select {
		case out <- b:
			return true
		case <-ctx.Done():
			return false
		}
	}
	var (
		ld       leader
		haveLead bool
		failures int
	)
	for next < end {
		var (
			records []*kgo.Record
			after   = next
			err     error
		)
		if !haveLead {
			ld, err = r.lookupLeader(ctx, tp)
			haveLead = err == nil
		}
		if err == nil {
			records, after, err = r.fetch(ctx, tp, ld, next)
		}
		if err == nil && after <= next {
			err = errNoProgress
		}
		if err != nil {
			if !retriable(ctx, err) {
				send(fetchedBatch{next: next, err: err})
				return
			}
			failures++
			haveLead = false
			r.cfg.logger.Warn(fmt.Sprintf("fetching %s at offset %d failed, retrying: %v", tp, next, err),
				"partition", tp.String(), "offset", next, "attempt", failures, "error", err)
			if !sleep(ctx, backoff(failures)) {
				return
			}
			continue
		}
		failures = 0
		// A fetch may return records committed after the end offset was
		// listed. They are left for later: the store must end exactly at
		// the end offset, which becomes its checkpoint.
		if after > end {
			after = end
			for len(records) > 0 && records[len(records)-1].Offset >= end {
				records = records[:len(records)-1]
			}
		}
		if !send(fetchedBatch{records: records, next: after}) {
			return
		}
		next = after
	}
}

// fetch issues one read_committed Fetch for tp at offset next to its
// leader. It returns the committed data records from next on and the next
// offset to fetch, which is past everything the response covered: records,
// control records, records of aborted transactions and compaction gaps.
func (r *Restorer) fetch(ctx context.Context, tp TopicPartition, ld leader, next int64) ([]*kgo.Record, int64, error) {
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = fetchMaxWaitMillis
	req.MinBytes = 1
	req.MaxBytes = r.cfg.fetchMaxBytes
	req.IsolationLevel = 1 // read_committed
	req.SessionID = 0      // no fetch session: each request stands alone
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = tp.Topic
	rt.TopicID = ld.topicID
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition = tp.Partition
	rp.CurrentLeaderEpoch = ld.epoch
	rp.FetchOffset = next
	rp.LogStartOffset = -1
	rp.PartitionMaxBytes = r.cfg.fetchMaxBytes
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)

	kresp, err := r.cl.Broker(int(ld.broker)).RetriableRequest(ctx, req)
	if err != nil {
		return nil, next, err
	}
	resp := kresp.(*kmsg.FetchResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, next, err
	}
	for i := range resp.Topics {
		t := &resp.Topics[i]
		if t.Topic != tp.Topic && (t.TopicID == [16]byte{} || t.TopicID != ld.topicID) {
			continue
		}
		for j := range t.Partitions {
			p := &t.Partitions[j]
			if p.Partition != tp.Partition {
				continue
			}
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return nil, next, err
			}
			fp, after := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{
				Offset:         next,
				IsolationLevel: kgo.ReadCommitted(),
				Topic:          tp.Topic,
				Partition:      tp.Partition,
			}, p, r.decompressor, nil)
			// Records decoded before a bad batch are good; the next fetch
			// starts at the bad batch and reports it if it persists.
			if fp.Err != nil && len(fp.Records) == 0 {
				return nil, next, fmt.Errorf("the data fetched at offset %d is unreadable (if this persists, the partition is damaged on the broker): %w", next, fp.Err)
			}
			return fp.Records, after, nil
		}
	}
	return nil, next, errNoProgress
}

// lookupLeader asks the cluster for tp's current leader.
func (r *Restorer) lookupLeader(ctx context.Context, tp TopicPartition) (leader, error) {
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(tp.Topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, r.cl)
	if err != nil {
		return leader{}, err
	}
	for _, t := range resp.Topics {
		if t.Topic == nil || *t.Topic != tp.Topic {
			continue
		}
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			if errors.Is(err, kerr.UnknownTopicOrPartition) {
				return leader{}, topicMissingError(tp.Topic)
			}
			return leader{}, err
		}
		for _, p := range t.Partitions {
			if p.Partition != tp.Partition {
				continue
			}
			if p.Leader < 0 {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					return leader{}, err
				}
				return leader{}, errNoLeader
			}
			return leader{broker: p.Leader, epoch: p.LeaderEpoch, topicID: t.TopicID}, nil
		}
		return leader{}, partitionMissingError(tp, len(t.Partitions))
	}
	return leader{}, topicMissingError(tp.Topic)
}

// listOffsets returns tp's log start offset and last stable offset,
// retrying transient errors until ctx ends.
func (r *Restorer) listOffsets(ctx context.Context, tp TopicPartition) (logStart, end int64, err error) {
	for failures := 1; ; failures++ {
		logStart, err = listedOffset(tp)(r.adm.ListStartOffsets(ctx, tp.Topic))
		if err == nil {
			end, err = listedOffset(tp)(r.adm.ListCommittedOffsets(ctx, tp.Topic))
		}
		if err == nil || !retriable(ctx, err) {
			return logStart, end, err
		}
		r.cfg.logger.Warn(fmt.Sprintf("listing the offsets of %s failed, retrying: %v", tp, err),
			"partition", tp.String(), "attempt", failures, "error", err)
		if !sleep(ctx, backoff(failures)) {
			return 0, 0, ctx.Err()
		}
	}
}

// listedOffset returns a function that picks tp's offset out of a kadm
// listing. A listing can fail for some partitions and succeed for others,
// so tp's own entry decides.
func listedOffset(tp TopicPartition) func(kadm.ListedOffsets, error) (int64, error) {
	return func(listed kadm.ListedOffsets, listErr error) (int64, error) {
		if o, ok := listed.Lookup(tp.Topic, tp.Partition); ok {
			return o.Offset, o.Err
		}
		if listErr != nil {
			return 0, listErr
		}
		partitions, ok := listed[tp.Topic]
		if !ok {
			return 0, topicMissingError(tp.Topic)
		}
		if o, ok := partitions[-1]; ok {
			if errors.Is(o.Err, kerr.UnknownTopicOrPartition) {
				return 0, topicMissingError(tp.Topic)
			}
			return 0, o.Err
		}
		return 0, partitionMissingError(tp, len(partitions))
	}
}

func topicMissingError(topic string) error {
	return fmt.Errorf("changelog topic %q does not exist: eddy creates changelog topics at startup, so it was deleted since, or the application id or the store name changed", topic)
}

func partitionMissingError(tp TopicPartition, have int) error {
	return fmt.Errorf("changelog topic %q has %d partitions, so no partition %d: a changelog needs one partition per task of its store's sub-topology; recreate it with enough partitions", tp.Topic, have, tp.Partition)
}

// retriable reports whether err may go away if the request is tried again,
// after a backoff and a fresh look at the partition's leader.
func retriable(ctx context.Context, err error) bool {
	if ctx.Err() != nil || errors.Is(err, kgo.ErrClientClosed) || errors.Is(err, context.Canceled) {
		return false
	}
	if ke, ok := errors.AsType[*kerr.Error](err); ok {
		return ke.Retriable
	}
	if _, ok := errors.AsType[*net.OpError](err); ok {
		return true // the broker is down or moving: look for the leader again
	}
	return errors.Is(err, errNoProgress) || errors.Is(err, errNoLeader) ||
		errors.Is(err, context.DeadlineExceeded) || kgo.IsRetryableBrokerErr(err)
}

// backoff returns the pause before retry attempt n (from 1): doubling from
// minBackoff up to maxBackoff.
func backoff(n int) time.Duration {
	d := minBackoff
	for i := 1; i < n && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, maxBackoff)
}

// sleep waits for d or until ctx ends, and reports whether it waited the
// whole time.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
