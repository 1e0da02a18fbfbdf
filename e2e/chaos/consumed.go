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

// WaitConsumed waits until consumer group group has committed, on every
// partition of topic, an offset at the partition's end (its high
// watermark), and returns nil; or it returns an error that describes the
// lag when ctx ends. The topic must be written without transactions: a
// consumer commits the offset after its last record, which stays below a
// trailing transaction marker.
func WaitConsumed(ctx context.Context, cl *kgo.Client, group, topic string) error {
	adm := kadm.NewClient(cl)
	var lag string
	for {
		// Committed offsets first, end offsets second: every end listed
		// is then at least as new as the commits compared with it.
		committed, errC := adm.FetchOffsets(ctx, group)
		ends, errE := adm.ListEndOffsets(ctx, topic)
		if err := errors.Join(errC, errE); err != nil {
			lag = err.Error()
		} else if behind := lagging(committed, ends, topic); len(behind) > 0 {
			lag = strings.Join(behind, ", ")
		} else {
			return nil
		}
		t := time.NewTimer(settlePoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("chaos: group %s has not consumed %s: %s: %w", group, topic, lag, ctx.Err())
		case <-t.C:
		}
	}
}

// lagging describes each partition of topic whose committed offset is
// below its end.
func lagging(committed kadm.OffsetResponses, ends kadm.ListedOffsets, topic string) []string {
	var behind []string
	if len(ends[topic]) == 0 {
		return []string{topic + " has no partitions listed"}
	}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			behind = append(behind, fmt.Sprintf("%s-%d: %v", o.Topic, o.Partition, o.Err))
			return
		}
		c, ok := committed.Lookup(o.Topic, o.Partition)
		if o.Offset > 0 && (!ok || c.Err != nil || c.At < o.Offset) {
			at := int64(-1)
			if ok {
				at = c.At
			}
			behind = append(behind, fmt.Sprintf("%s-%d at %d of %d", o.Topic, o.Partition, at, o.Offset))
		}
	})
	slices.Sort(behind)
	return behind
}
