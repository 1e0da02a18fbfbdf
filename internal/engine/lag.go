package engine

import (
	"context"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/eddystream/eddy/internal/changelog"
)

// lagInterval is how often the consumer-lag metric is refreshed.
const lagInterval = 5 * time.Second

// monitorLag refreshes eddy_consumer_lag_records every lagInterval until
// ctx ends: for each input partition of the instance's active tasks, the
// records between the group's committed offset and the partition's end
// (its last stable offset under exactly-once), both listed from the
// brokers. Unlike a position taken from fetches, it keeps growing while a
// worker is stalled, in a commit or anywhere else. Run owns the goroutine.
func (e *Engine) monitorLag(ctx context.Context) {
	shown := map[changelog.TopicPartition]bool{}
	defer func() {
		for tp := range shown {
			e.metrics.m.RemoveConsumerLag(tp.Topic, tp.Partition)
		}
	}()
	t := time.NewTicker(lagInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		lctx, cancel := context.WithTimeout(ctx, lagInterval)
		lags, err := e.listLags(lctx)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				e.log.Debug("list offsets for the consumer-lag metric", "err", err)
			}
			continue
		}
		for tp := range shown {
			if _, ok := lags[tp]; !ok {
				e.metrics.m.RemoveConsumerLag(tp.Topic, tp.Partition)
				delete(shown, tp)
			}
		}
		for tp, lag := range lags {
			e.metrics.m.SetConsumerLag(tp.Topic, tp.Partition, lag)
			shown[tp] = true
		}
	}
}

// listLags lists the lag of every input partition of the instance's
// active tasks.
func (e *Engine) listLags(ctx context.Context) (map[changelog.TopicPartition]int64, error) {
	e.workers.Lock()
	ws := append([]*worker(nil), e.workers.list...)
	e.workers.Unlock()
	mine := map[changelog.TopicPartition]bool{}
	var topics []string
	for _, w := range ws {
		for topic, ps := range w.bal.Layout().Partitions(w.ownedTasks()) {
			if !slices.Contains(topics, topic) {
				topics = append(topics, topic)
			}
			for _, p := range ps {
				mine[changelog.TopicPartition{Topic: topic, Partition: p}] = true
			}
		}
	}
	if len(mine) == 0 {
		return nil, nil
	}
	list := e.adm.ListEndOffsets
	if e.cfg.ExactlyOnce {
		list = e.adm.ListCommittedOffsets // the last stable offsets
	}
	ends, err := list(ctx, topics...)
	if err != nil {
		return nil, err
	}
	starts, err := e.adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return nil, err
	}
	committed, err := e.adm.FetchOffsetsForTopics(ctx, e.cfg.ApplicationID, topics...)
	if err != nil {
		return nil, err
	}
	lags := map[changelog.TopicPartition]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		tp := changelog.TopicPartition{Topic: o.Topic, Partition: o.Partition}
		if !mine[tp] || o.Err != nil {
			return
		}
		from := int64(0)
		if s, ok := starts.Lookup(o.Topic, o.Partition); ok && s.Err == nil {
			from = s.Offset
		}
		if c, ok := committed.Lookup(o.Topic, o.Partition); ok && c.Err == nil && c.At >= 0 {
			from = max(from, c.At)
		}
		lags[tp] = max(0, o.Offset-from)
	})
	return lags, nil
}
