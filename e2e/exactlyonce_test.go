package e2e

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddystream/eddy/serde"
)

// committedCounts reads topic from the start with read_committed, keeping
// the last count per word, until it equals want or d passes. A count
// applied twice would stay above want for good, so equality proves the
// counts exact.
func committedCounts(t *testing.T, topic string, want map[string]int64, d time.Duration) map[string]int64 {
	t.Helper()
	cl := client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	got := map[string]int64{}
	for !maps.Equal(got, want) && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			n, err := serde.Int64().Deserialize(topic, r.Value)
			if err != nil {
				t.Fatalf("%s-%d@%d: %v", r.Topic, r.Partition, r.Offset, err)
			}
			got[string(r.Key)] = n
		})
	}
	return got
}

func TestExactlyOnceSurvivesKillNine(t *testing.T) {
	r := newWordCount(t, 6)
	r.produceLines(2000)
	ps := r.startInstances(3, t.TempDir(), "-guarantee", "exactly-once", "-commit-interval", "100ms")
	r.produceLines(2000)
	time.Sleep(time.Second)
	ps[1].kill()
	r.produceLines(1000)
	// The killed instance's open transaction holds back read_committed
	// readers of its partitions until the coordinator aborts it (the
	// 10 s transaction timeout), so allow for that.
	if got := committedCounts(t, r.output, r.want, 90*time.Second); !maps.Equal(got, r.want) {
		adm := kadm.NewClient(client(t))
		ctx, cancel := ctx30()
		defer cancel()
		ends, _ := adm.ListEndOffsets(ctx, r.output, r.app+"-words-repartition", r.input)
		stable, _ := adm.ListCommittedOffsets(ctx, r.output, r.app+"-words-repartition", r.input)
		group, _ := adm.FetchOffsets(ctx, r.app)
		for _, topic := range []string{r.input, r.app + "-words-repartition", r.output} {
			for p := int32(0); p < 6; p++ {
				e, _ := ends.Lookup(topic, p)
				st, _ := stable.Lookup(topic, p)
				c, _ := group.Lookup(topic, p)
				t.Logf("%s-%d: end %d, last stable %d, group committed %d", topic, p, e.Offset, st.Offset, c.At)
			}
		}
		for w, n := range r.want {
			if got[w] != n {
				t.Logf("word %s: got %d, want %d", w, got[w], n)
			}
		}
		t.Fatalf("read_committed counts never matched the input: got %d words, want %d", len(got), len(r.want))
	}
	ps[0].stop()
	ps[2].stop()
	if got := committedCounts(t, r.output, r.want, 20*time.Second); !maps.Equal(got, r.want) {
		t.Fatal("after the survivors stopped, the counts differ from the input: a record was counted twice or lost")
	}
}
