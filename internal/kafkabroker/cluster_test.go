package kafkabroker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// startCluster starts a cluster of n nodes that the test closes, checking
// that Close removes the cluster's files.
func startCluster(t *testing.T, n int) *Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("starts Kafka broker JVMs; skipped with -short")
	}
	// A cluster ignores KAFKA_BROKERS: a broker that others use must
	// never be killed.
	t.Setenv(EnvBrokers, "127.0.0.1:1")
	begin := time.Now()
	c, err := StartCluster(t.Context(), n, WithLogger(slog.New(slog.NewTextHandler(t.Output(), nil))))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d-node cluster at %v ready in %v", n, c.Addrs(), time.Since(begin).Round(10*time.Millisecond))
	t.Cleanup(func() {
		if t.Failed() {
			for id := int32(1); id <= int32(n); id++ {
				t.Logf("last lines of node %d's log:\n%s", id, c.LogTail(id, 30))
			}
		}
		if err := c.Close(); err != nil {
			t.Error(err)
		}
		if _, err := os.Stat(c.dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the cluster's directory %s is still there after Close (stat: %v)", c.dir, err)
		}
		if c.Running(1) {
			t.Error("node 1 runs after Close")
		}
	})
	return c
}

// TestClusterNodeSurvivesKillNine kills a single-node cluster with SIGKILL
// and restarts it: the same address serves the same logs, committed
// transactions, group offsets and transactional ids, and the clients that
// were connected before the kill carry on. Then the same after a clean
// stop.
func TestClusterNodeSurvivesKillNine(t *testing.T) {
	c := startCluster(t, 1)
	addrs := c.Addrs()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	const topic, group = "cluster-kill", "cluster-kill-group"
	createTopic(t, ctx, addrs, topic)
	txn := newClient(t, addrs, kgo.TransactionalID("cluster-kill-txn"))
	commitValue := func(value string) {
		t.Helper()
		if err := txn.BeginTransaction(); err != nil {
			t.Fatalf("begin transaction for %q: %v", value, err)
		}
		if err := txn.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(value)}).FirstErr(); err != nil {
			t.Fatalf("produce %q: %v", value, err)
		}
		if err := txn.EndTransaction(ctx, kgo.TryCommit); err != nil {
			t.Fatalf("commit %q: %v", value, err)
		}
	}
	commitValue("before")
	adm := kadm.NewClient(newClient(t, addrs))
	offsets := kadm.Offsets{}
	offsets.AddOffset(topic, 0, 1, -1)
	if _, err := adm.CommitOffsets(ctx, group, offsets); err != nil {
		t.Fatalf("commit the group's offset: %v", err)
	}

	for _, fault := range []struct {
		name string
		do   func(int32) error
	}{{"kill", c.Kill}, {"stop", c.Stop}} {
		if err := fault.do(1); err != nil {
			t.Fatalf("%s: %v", fault.name, err)
		}
		if c.Running(1) {
			t.Fatalf("Running(1) after %s = true", fault.name)
		}
		if err := fault.do(1); err == nil || !strings.Contains(err.Error(), "does not run") {
			t.Errorf("a second %s = %v, want an error that the node does not run", fault.name, err)
		}
		begin := time.Now()
		if err := c.Restart(ctx, 1); err != nil {
			t.Fatalf("restart after %s: %v", fault.name, err)
		}
		t.Logf("restarted after %s in %v", fault.name, time.Since(begin).Round(10*time.Millisecond))
		if !slices.Equal(c.Addrs(), addrs) {
			t.Fatalf("Addrs() after a restart = %v, want %v", c.Addrs(), addrs)
		}
		if err := c.Restart(ctx, 1); err == nil || !strings.Contains(err.Error(), "is running") {
			t.Errorf("Restart of a running node = %v, want an error that it runs", err)
		}
		commitValue("after " + fault.name)
	}

	reader := newClient(t, addrs, kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := pollUntil(t, ctx, reader, func(v []string) bool { return len(v) >= 3 })
	if want := []string{"before", "after kill", "after stop"}; !slices.Equal(got, want) {
		t.Errorf("read_committed after the restarts: %q, want %q", got, want)
	}
	fetched, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := fetched.Lookup(topic, 0); !ok || o.At != 1 {
		t.Errorf("the group's committed offset after the restarts = %+v (found %v), want 1", o, ok)
	}
	if tail := c.LogTail(1, 1000); strings.Count(tail, "eddy kafkabroker: restart of node 1") != 2 {
		t.Errorf("the node's log does not mark its two restarts:\n%s", tail)
	}
}

// TestClusterKeepsWritingWithANodeDown runs three nodes and checks what a
// fault test of a replicated application relies on: topics get three
// replicas and need two in sync; with the leader of a partition killed, an
// acks=all producer still writes to every partition once the controller
// has moved the leadership; the restarted node catches up into every ISR.
func TestClusterKeepsWritingWithANodeDown(t *testing.T) {
	c := startCluster(t, 3)
	addrs := c.Addrs()
	if len(addrs) != 3 || c.Size() != 3 {
		t.Fatalf("Addrs() = %v, Size() = %d; want 3 nodes", addrs, c.Size())
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	adm := kadm.NewClient(newClient(t, addrs))
	const topic = "cluster-replicated"
	// No replication factor: the cluster's default applies.
	resp, err := adm.CreateTopic(ctx, 3, -1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic: %v", err)
	}
	// The node that answers may not know the new topic yet: ask until
	// one describes it.
	var described kadm.ResourceConfig
	for ctx.Err() == nil {
		configs, err := adm.DescribeTopicConfigs(ctx, topic)
		if err == nil {
			described, err = configs.On(topic, nil)
		}
		if err == nil {
			err = described.Err
		}
		if err == nil {
			break
		}
		t.Logf("describe the configuration of %s: %v; retrying", topic, err)
		time.Sleep(200 * time.Millisecond)
	}
	if !slices.ContainsFunc(described.Configs, func(c kadm.Config) bool {
		return c.Key == "min.insync.replicas" && c.Value != nil && *c.Value == "2"
	}) {
		t.Errorf("topic %s: min.insync.replicas is not 2: %+v", topic, described.Configs)
	}

	// leaders waits until every partition has three replicas, want of
	// them in sync, and a leader, and returns the leaders.
	leaders := func(want int) map[int32]int32 {
		t.Helper()
		var last []string
		for ctx.Err() == nil {
			details, err := adm.ListTopics(ctx, topic)
			if err == nil {
				err = details.Error()
			}
			if err != nil {
				last = []string{err.Error()}
				time.Sleep(200 * time.Millisecond)
				continue
			}
			out := map[int32]int32{}
			last = nil
			for _, p := range details[topic].Partitions.Sorted() {
				if len(p.Replicas) != 3 || len(p.ISR) != want || p.Leader < 0 {
					last = append(last, fmt.Sprintf("partition %d: replicas %v, ISR %v, leader %d", p.Partition, p.Replicas, p.ISR, p.Leader))
				}
				out[p.Partition] = p.Leader
			}
			if len(last) == 0 && len(out) == 3 {
				return out
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Fatalf("the partitions of %s did not reach 3 replicas with %d in sync: %s", topic, want, strings.Join(last, "; "))
		return nil
	}
	victim := leaders(3)[0]

	producer := newClient(t, addrs, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	produceAll := func(value string) {
		t.Helper()
		for p := int32(0); p < 3; p++ {
			if err := producer.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: p, Value: []byte(value)}).FirstErr(); err != nil {
				t.Fatalf("produce %q to partition %d: %v", value, p, err)
			}
		}
	}
	produceAll("three nodes")
	if err := c.Kill(victim); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	produceAll("two nodes")
	t.Logf("with node %d (the leader of partition 0) killed, writes to every partition went on after %v", victim, time.Since(killed).Round(10*time.Millisecond))
	if l := leaders(2)[0]; l == victim {
		t.Errorf("partition 0 is still led by the killed node %d", victim)
	}
	if err := c.Restart(ctx, victim); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	leaders(3)
	t.Logf("node %d back in every ISR %v after its restart", victim, time.Since(restarted).Round(10*time.Millisecond))
	produceAll("three nodes again")
}
