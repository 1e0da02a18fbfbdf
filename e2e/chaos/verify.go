package chaos

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// settlePoll is how often Verify lists offsets while it waits for open
// transactions to end.
const settlePoll = 250 * time.Millisecond

// Verify reads the passthrough and stats topics an application made of ds
// and judges them against it. Run it once the application has consumed its
// input and stopped: it reads each topic up to the end it lists when it
// starts.
//
// It reads with read_committed isolation, so records of aborted
// transactions do not count, and it first waits until no partition of
// either topic has an open transaction (see readToEnd); ctx bounds that
// wait and the reading. When inputs are missing it also reads the input
// topic, to say where they were (Report.MissingRanges).
//
// An error means Verify could not reach a verdict; a verdict of loss is a
// Report whose NothingLost is false, with a nil error.
func Verify(ctx context.Context, brokers []string, ds DataSet, passthroughTopic, statsTopic string, opts ...Option) (Report, error) {
	var cfg verifyConfig
	for _, o := range opts {
		o(&cfg)
	}
	if ds.broken != nil {
		return Report{}, ds.broken
	}
	if ds.Expected == nil {
		return Report{}, errors.New("chaos: Verify needs a data set that Produce created")
	}
	if passthroughTopic == "" || statsTopic == "" || passthroughTopic == statsTopic {
		return Report{}, fmt.Errorf("chaos: Verify needs two distinct output topics, got %q and %q", passthroughTopic, statsTopic)
	}
	c := newChecker(ds)
	topics := []string{passthroughTopic, statsTopic}
	var wc *windowChecker
	if cfg.windowed != nil {
		wc = newWindowChecker(*cfg.windowed, &c.ds, &c.r)
		topics = append(topics, cfg.windowed.Topic)
	}
	err := readToEnd(ctx, brokers, topics, func(rec *kgo.Record) {
		switch {
		case rec.Topic == passthroughTopic:
			c.passthrough(rec)
		case rec.Topic == statsTopic:
			c.stats(rec)
		default:
			wc.record(rec, c.unexpected)
		}
	})
	if err != nil {
		return Report{}, fmt.Errorf("chaos: verify %s: %w", strings.Join(topics, ", "), err)
	}
	c.finish()
	if wc != nil {
		wc.finish(c.unexpected)
	}
	if c.r.Missing > 0 {
		if err := readToEnd(ctx, brokers, []string{ds.Topic}, c.input); err != nil {
			return Report{}, fmt.Errorf("chaos: locate the missing inputs in %s: %w", ds.Topic, err)
		}
	}
	return c.r, nil
}

// partitionEnd is the range of a partition that readToEnd reads.
type partitionEnd struct {
	start, end int64
}

// readToEnd calls fn for every committed data record of topics, from the
// start of each partition to the end listed when it begins.
//
// Knowing when a partition has been read to its end takes care, because a
// read_committed consumer never returns some offsets: transaction markers
// (the last offset of every transaction), records of aborted transactions,
// and anything at or above the last stable offset (LSO, what
// kadm.ListCommittedOffsets lists), which is the first offset of the
// earliest open transaction. Waiting for a record at offset LSO-1 of a plain
// consumer can therefore hang.
//
// readToEnd solves this in two steps. First it waits until no transaction is
// open: until each partition's LSO, listed first, equals its high watermark,
// listed next (see listEnds). Records of an open transaction may still
// commit, and counting them as missing would be wrong. With no transaction
// open, every transaction below the end has its marker below the end too,
// so the last offset is a data record or a marker, never a record of an
// aborted transaction whose marker lies beyond the end. Second, it reads
// with kgo.KeepControlRecords, so that markers come back as records (fn
// never sees them): a partition is done when the consumer returns the
// record at offset end-1, whatever it is.
func readToEnd(ctx context.Context, brokers []string, topics []string, fn func(*kgo.Record)) error {
	ends, err := settledEnds(ctx, brokers, topics)
	if err != nil {
		return err
	}
	offsets := map[string]map[int32]kgo.Offset{}
	remaining := 0
	for tp, pe := range ends {
		if pe.start >= pe.end {
			continue
		}
		if offsets[tp.topic] == nil {
			offsets[tp.topic] = map[int32]kgo.Offset{}
		}
		offsets[tp.topic][tp.partition] = kgo.NewOffset().At(pe.start)
		remaining++
	}
	if remaining == 0 {
		return nil
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.ConsumePartitions(offsets),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
	)
	if err != nil {
		return fmt.Errorf("create consumer: %w", err)
	}
	defer cl.Close()
	// next is the offset after the last record read, per partition; a
	// partition is done when it reaches the end.
	next := map[topicPartition]int64{}
	done := 0
	for done < remaining {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%w; not read to the end: %s", err, describeUnread(ends, next))
		}
		var fetchErr error
		fs.EachError(func(topic string, p int32, err error) {
			fetchErr = errors.Join(fetchErr, fmt.Errorf("fetch %s-%d: %w", topic, p, err))
		})
		if fetchErr != nil {
			return fetchErr
		}
		fs.EachRecord(func(rec *kgo.Record) {
			tp := topicPartition{rec.Topic, rec.Partition}
			end := ends[tp].end
			if rec.Offset >= end || next[tp] >= end {
				return // written after the end was listed
			}
			if !rec.Attrs.IsControl() {
				fn(rec)
			}
			next[tp] = rec.Offset + 1
			if rec.Offset == end-1 {
				done++
			}
		})
	}
	return nil
}

// topicPartition names one partition.
type topicPartition struct {
	topic     string
	partition int32
}

// settledEnds lists the start and end offsets of every partition of topics
// once no partition has an open transaction, retrying until ctx ends.
func settledEnds(ctx context.Context, brokers []string, topics []string) (map[topicPartition]partitionEnd, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return nil, fmt.Errorf("create admin client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for {
		ends, open, err := listEnds(ctx, adm, topics)
		if err == nil && len(open) == 0 {
			return ends, nil
		}
		t := time.NewTimer(settlePoll)
		select {
		case <-ctx.Done():
			t.Stop()
			if err != nil {
				return nil, fmt.Errorf("list offsets: %w", err)
			}
			return nil, fmt.Errorf("partitions did not settle (%s): a transaction is open (a killed producer's transaction stays open until it times out or its transactional id is used again) or something still writes: %w",
				strings.Join(open, ", "), ctx.Err())
		case <-t.C:
		}
	}
}

// listEnds lists the log start and the end of every partition of topics.
// The end is the last stable offset; a partition whose high watermark,
// listed after it, differs is returned as open, with both offsets. Equal
// offsets prove that no transaction was open when the last stable offset
// was listed: the high watermark only grows, and it was never below the
// last stable offset.
func listEnds(ctx context.Context, adm *kadm.Client, topics []string) (ends map[topicPartition]partitionEnd, open []string, err error) {
	list := func(f func(context.Context, ...string) (kadm.ListedOffsets, error)) (kadm.ListedOffsets, error) {
		l, err := f(ctx, topics...)
		if err == nil {
			err = l.Error()
		}
		return l, err
	}
	lsos, err := list(adm.ListCommittedOffsets)
	if err != nil {
		return nil, nil, err
	}
	hwms, err := list(adm.ListEndOffsets)
	if err != nil {
		return nil, nil, err
	}
	starts, err := list(adm.ListStartOffsets)
	if err != nil {
		return nil, nil, err
	}
	for _, topic := range topics {
		if len(lsos[topic]) == 0 {
			return nil, nil, fmt.Errorf("topic %s has no partitions listed: does it exist?", topic)
		}
	}
	ends = map[topicPartition]partitionEnd{}
	lsos.Each(func(l kadm.ListedOffset) {
		h, okH := hwms.Lookup(l.Topic, l.Partition)
		s, okS := starts.Lookup(l.Topic, l.Partition)
		if !okH || !okS {
			err = errors.Join(err, fmt.Errorf("partition %s-%d is missing from a listing", l.Topic, l.Partition))
			return
		}
		if l.Offset != h.Offset {
			open = append(open, fmt.Sprintf("%s-%d last stable offset %d, high watermark %d", l.Topic, l.Partition, l.Offset, h.Offset))
		}
		ends[topicPartition{l.Topic, l.Partition}] = partitionEnd{start: s.Offset, end: l.Offset}
	})
	slices.Sort(open)
	return ends, open, err
}

// describeUnread lists the partitions that have not been read to their
// end, with how far they were read.
func describeUnread(ends map[topicPartition]partitionEnd, next map[topicPartition]int64) string {
	var out []string
	for tp, pe := range ends {
		at := max(next[tp], pe.start)
		if at < pe.end {
			out = append(out, fmt.Sprintf("%s-%d at offset %d of %d", tp.topic, tp.partition, at, pe.end))
		}
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}
