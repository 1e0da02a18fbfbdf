package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddystream/eddy/changelog"
)

// TestLongRestoreKeepsMembership starts an instance on an empty state
// directory whose tasks must restore a changelog that takes longer than
// the session timeout to replay. Restoring happens off the worker's loop,
// so the member must stay in the group throughout: the same member id, the
// group Stable, no new generation. Meanwhile /healthz answers 200 and
// /readyz 503, until the restore ends and /readyz turns 200.
//
// The restore is slowed down by a broker quota on fetches: on a 2-core
// machine eddy restores some 1.2 million records a second, so a restore
// that outlasts a session timeout unthrottled would need a changelog of
// hundreds of megabytes. Under the quota, 200,000 records (some 7 MB as
// the broker stores them) take about 15 s.
func TestLongRestoreKeepsMembership(t *testing.T) {
	const sessionTimeout = 6 * time.Second
	const records = 200_000
	name := uniqueName(t)
	app, in, pass, stats := "agg-"+name, name+"-numbers", name+"-pass", name+"-stats"
	createTopics(t, 6, in, pass, stats)
	storeTopic := changelog.TopicName(app, "stats")
	adm := kadm.NewClient(client(t))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if resp, err := adm.CreateTopic(ctx, 6, 1, changelog.TopicConfigs(), storeTopic); err != nil || resp.Err != nil {
		t.Fatalf("create %s: %v %v", storeTopic, err, resp.Err)
	}
	began := time.Now()
	writeChangelog(t, ctx, storeTopic, records)
	t.Logf("wrote %d changelog records in %v", records, time.Since(began).Round(time.Millisecond))
	throttleFetches(t, adm, "kgo", 256<<10)

	addr := freeAddr(t)
	p := start(t, "instance", "aggregates", "-app", app, "-input", in, "-passthrough", pass, "-stats", stats,
		"-state-dir", t.TempDir(), "-session-timeout", sessionTimeout.String(), "-admin-addr", addr)
	p.admin = addr
	started := time.Now()
	p.waitFor(`msg="tasks assigned"`, 1, 60*time.Second)
	// DescribeGroups does not tell the generation: the member's gauge does.
	var (
		memberID   string
		generation float64
	)
	waitUntil(t, 30*time.Second, "the member is in a stable group", func() bool {
		g := describeGroup(t, adm, app)
		if len(g.Members) != 1 || g.State != "Stable" {
			return false
		}
		memberID = g.Members[0].MemberID
		var ok bool
		generation, ok = p.mustScrape().sum("eddy_group_generation")
		return ok && generation > 0
	}, func() string { return fmt.Sprint(describeGroup(t, adm, app)) })
	t.Logf("member %s joined generation %.0f", memberID, generation)
	checks := 0
	var maxLeft float64
	for {
		code := p.status("/readyz")
		if code == 200 {
			break
		}
		if code != 503 {
			t.Fatalf("/readyz answered %d during the restore, want 503", code)
		}
		if time.Since(started) > 3*time.Minute {
			t.Fatalf("the restore has not ended after %v", time.Since(started).Round(time.Second))
		}
		if code := p.status("/healthz"); code != 200 {
			t.Fatalf("/healthz answered %d during the restore, want 200", code)
		}
		g := describeGroup(t, adm, app)
		if g.State != "Stable" || len(g.Members) != 1 || g.Members[0].MemberID != memberID {
			t.Fatalf("%v into the restore the group changed: state %s, members %v (was %s)",
				time.Since(started).Round(time.Millisecond), g.State, memberIDs(g), memberID)
		}
		ms := p.mustScrape()
		if gen, _ := ms.sum("eddy_group_generation"); gen != generation {
			t.Fatalf("%v into the restore eddy_group_generation is %.0f, want %.0f", time.Since(started).Round(time.Millisecond), gen, generation)
		}
		if left, _ := ms.sum("eddy_restore_remaining_records"); left > maxLeft {
			maxLeft = left
		}
		checks++
		time.Sleep(250 * time.Millisecond)
	}
	restoring := time.Since(started)
	t.Logf("restore took %v (%d checks, at most %.0f records left when scraped); instance restored %d records",
		restoring.Round(time.Millisecond), checks, maxLeft, p.restored())
	if maxLeft == 0 {
		t.Error("eddy_restore_remaining_records never showed records left during the restore")
	}
	if restoring < sessionTimeout*3/2 {
		t.Errorf("the restore lasted only %v, not well past the %v session timeout: the test proves nothing; write more changelog records", restoring.Round(time.Millisecond), sessionTimeout)
	}
	if got := p.restored(); got != int64(records) {
		t.Errorf("restored %d records, want %d", got, records)
	}
	p.waitFor(running, 6, 30*time.Second)
	if g := describeGroup(t, adm, app); len(g.Members) != 1 || g.Members[0].MemberID != memberID {
		t.Errorf("after the restore the group has members %v, want only %s", memberIDs(g), memberID)
	}
	if gen, _ := p.mustScrape().sum("eddy_group_generation"); gen != generation {
		t.Errorf("after the restore eddy_group_generation is %.0f, want %.0f", gen, generation)
	}
	p.stop()
}

// writeChangelog writes n store records of examples/aggregates straight
// into its changelog topic, partitioned by key as the engine writes them.
func writeChangelog(t *testing.T, ctx context.Context, topic string, n int) {
	t.Helper()
	cl := client(t, kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(200_000))
	var (
		mu    sync.Mutex
		first error
	)
	for i := range n {
		v := []byte(fmt.Sprintf(`{"sum":%d,"count":1,"min":%d,"max":%d}`, i, i, i))
		cl.Produce(ctx, &kgo.Record{Topic: topic, Key: []byte(fmt.Sprintf("k%08d", i)), Value: v}, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				first = err
				mu.Unlock()
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if first != nil {
		t.Fatalf("write %s: %v", topic, first)
	}
}

// describeGroup describes group, failing the test if it cannot.
func describeGroup(t *testing.T, adm *kadm.Client, group string) kadm.DescribedGroup {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	gs, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		t.Fatalf("describe group %s: %v", group, err)
	}
	g, ok := gs[group]
	if !ok || g.Err != nil {
		t.Fatalf("describe group %s: %v", group, g.Err)
	}
	return g
}

func memberIDs(g kadm.DescribedGroup) []string {
	var ids []string
	for _, m := range g.Members {
		ids = append(ids, m.MemberID)
	}
	return ids
}

// throttleFetches sets a broker quota of bytesPerSecond on the fetches of
// the clients called clientID (eddy's clients keep kgo's default id,
// "kgo") until the test ends. Only fetches are throttled: the group's
// heartbeats are not. The test's own clients share the id; reading outputs
// under the quota is slow.
func throttleFetches(t *testing.T, adm *kadm.Client, clientID string, bytesPerSecond float64) {
	t.Helper()
	alter := func(op kadm.AlterClientQuotaOp) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{
			Entity: kadm.ClientQuotaEntity{{Type: "client-id", Name: &clientID}},
			Ops:    []kadm.AlterClientQuotaOp{op},
		}})
		for _, r := range resp {
			if err == nil && r.Err != nil {
				err = fmt.Errorf("%w: %s", r.Err, r.ErrMessage)
			}
		}
		return err
	}
	if err := alter(kadm.AlterClientQuotaOp{Key: "consumer_byte_rate", Value: bytesPerSecond}); err != nil {
		t.Fatalf("set a fetch quota on client id %s: %v", clientID, err)
	}
	t.Cleanup(func() {
		if err := alter(kadm.AlterClientQuotaOp{Key: "consumer_byte_rate", Remove: true}); err != nil {
			t.Errorf("remove the fetch quota on client id %s: %v", clientID, err)
		}
	})
}
