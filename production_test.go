package eddy_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddystream/eddy"
	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/topology"
)

// failFirstProduceTo makes the cluster answer the first produce request
// that writes to topic (named, or identified by id as Produce v13 does)
// with NOT_LEADER_FOR_PARTITION, a transient error. injected is set once
// it has.
func failFirstProduceTo(c *kfake.Cluster, topic string, id [16]byte, injected *atomic.Bool) {
	answerProducesTo(c, topic, id, func() (int16, bool) {
		if injected.Swap(true) {
			return 0, false
		}
		return kerr.NotLeaderForPartition.Code, true
	})
}

// answerProducesTo hands every produce request that writes to topic
// (named, or identified by id as Produce v13 does) to answer: if it says
// so, the cluster answers the request with the error code for every
// partition (code 0: does not answer at all, as a hung broker), else it
// handles the request as usual.
func answerProducesTo(c *kfake.Cluster, topic string, id [16]byte, answer func() (code int16, handle bool)) {
	c.ControlKey(int16(kmsg.Produce), func(r kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := r.(*kmsg.ProduceRequest)
		hit := false
		for _, t := range req.Topics {
			if t.Topic == topic || t.TopicID == id {
				hit = true
			}
		}
		if !hit {
			return nil, nil, false
		}
		code, handle := answer()
		if !handle {
			return nil, nil, false
		}
		if code == 0 {
			return nil, nil, true
		}
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		for _, t := range req.Topics {
			rt := kmsg.NewProduceResponseTopic()
			rt.Topic, rt.TopicID = t.Topic, t.TopicID
			for _, p := range t.Partitions {
				rp := kmsg.NewProduceResponseTopicPartition()
				rp.Partition = p.Partition
				rp.ErrorCode = code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil, true
	})
}

// runWithFlakyOutput copies 50 records from in to out while the first
// produce to out fails transiently. It returns Run's error and how many
// records reached out.
func runWithFlakyOutput(t *testing.T, opts ...eddy.Option) (int64, error) {
	var injected atomic.Bool
	defer func() {
		if !injected.Load() {
			t.Error("no produce to the output topic was failed: the test did not exercise the handler")
		}
	}()
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "in", "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	addrs := c.ListenAddrs()
	b := topology.NewBuilder()
	topology.Source(b, "in", serde.String(), serde.String()).To("out")
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for range 50 {
		recs = append(recs, &kgo.Record{Topic: "in", Value: []byte("v")})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	details, err := kadm.NewClient(cl).ListTopics(context.Background(), "out")
	if err != nil {
		t.Fatal(err)
	}
	failFirstProduceTo(c, "out", details["out"].ID, &injected)
	app := newApp(t, top, addrs, "flaky", opts...)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- app.Run(ctx) }()
	adm := kadm.NewClient(cl)
	out := func() int64 {
		ends, err := adm.ListEndOffsets(context.Background(), "out")
		if err != nil {
			return 0
		}
		var n int64
		ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
		return n
	}
	for {
		select {
		case err := <-errc:
			return out(), err
		case <-time.After(50 * time.Millisecond):
		}
		if out() >= 50 {
			app.Close()
			return out(), <-errc
		}
	}
}

func TestTransientProductionErrorsAreRetried(t *testing.T) {
	if n, err := runWithFlakyOutput(t); err != nil || n != 50 {
		t.Fatalf("Run = %v with %d of 50 records out; the transient error should have been retried", err, n)
	}
}

func TestFailOnProductionError(t *testing.T) {
	_, err := runWithFlakyOutput(t, eddy.OnProductionError(eddy.FailOnProductionError))
	if err == nil || !errors.Is(err, kerr.NotLeaderForPartition) || !strings.Contains(err.Error(), "produce to out") {
		t.Fatalf("Run = %v, want a failure naming the output topic and the broker's error", err)
	}
}
