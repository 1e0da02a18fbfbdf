package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddystream/eddy"
	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/topology"
)

// A global table on the real broker: an instance bootstraps it from its
// three partitions before it joins the first click (the clicks are
// written before it starts), and a new instance
// (a fresh state directory) bootstraps it again, with the records
// written while no instance ran. Exactly-once, so that the table's topic
// is read past the input's and outputs' transaction markers too.
func TestNewInstanceBootstrapsTheGlobalTable(t *testing.T) {
	name := uniqueName(t)
	cities, clicks, out := name+"-cities", name+"-clicks", name+"-out"
	createTopics(t, 3, cities)
	createTopics(t, 2, clicks, out)
	const n = 3000
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, &kgo.Record{Topic: cities, Key: []byte("k" + strconv.Itoa(i)), Value: []byte("city" + strconv.Itoa(i))})
	}
	for i := 0; i < n; i += 10 {
		recs = append(recs, &kgo.Record{Topic: cities, Key: []byte("k" + strconv.Itoa(i))}) // tombstones
	}
	produce(t, recs)

	run := func(dir string) (stop func()) {
		b := topology.NewBuilder()
		table := topology.GlobalTableFrom(b, cities, serde.String(), serde.String(), topology.StoreName("cities"))
		stream := topology.Source(b, clicks, serde.String(), serde.String())
		topology.LeftJoinGlobal(stream, table, func(_, city string) string { return city },
			func(_, city, name string) string { return city + "=" + name }).To(out)
		top, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		app, err := eddy.New(top, eddy.ApplicationID(name), eddy.Brokers(brokers...), eddy.StateDir(dir),
			eddy.ProcessingGuarantee(eddy.ExactlyOnce), eddy.CommitInterval(100*time.Millisecond),
			eddy.Logger(slog.New(slog.DiscardHandler)))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- app.Run(ctx) }()
		return func() {
			cancel()
			select {
			case err := <-errc:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(60 * time.Second):
				t.Fatal("Run did not return within 60 s of its context's end")
			}
		}
	}
	// want is what a click on city i joins.
	want := func(i int) string {
		if i%10 == 0 {
			return fmt.Sprintf("k%d=", i)
		}
		return fmt.Sprintf("k%d=city%d", i, i)
	}
	cl := client(t, kgo.ConsumeTopics(out), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	joined := map[string]string{}
	readOut := func(total int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		for len(joined) < total && ctx.Err() == nil {
			cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { joined[string(r.Key)] = string(r.Value) })
		}
		if len(joined) < total {
			t.Fatalf("read %d joined clicks, want %d", len(joined), total)
		}
	}
	clicksOn := func(prefix string, from, to int) {
		var recs []*kgo.Record
		for i := from; i < to; i++ {
			recs = append(recs, &kgo.Record{Topic: clicks, Key: []byte(prefix + strconv.Itoa(i)), Value: []byte("k" + strconv.Itoa(i))})
		}
		produce(t, recs)
	}

	// The clicks are there before each start: the first one a task joins
	// must find the table whole.
	clicksOn("a", 0, 200)
	begin := time.Now()
	stop := run(t.TempDir())
	readOut(200)
	t.Logf("first instance: 200 clicks joined %.1fs after its start", time.Since(begin).Seconds())
	stop()

	// Written while no instance runs: an update and a tombstone.
	produce(t, []*kgo.Record{
		{Topic: cities, Key: []byte("k1"), Value: []byte("Bern")},
		{Topic: cities, Key: []byte("k2")},
	})
	clicksOn("b", 0, 200)
	begin = time.Now()
	stop = run(t.TempDir())
	defer stop()
	readOut(400)
	t.Logf("new instance: 200 clicks joined %.1fs after its start", time.Since(begin).Seconds())
	for i := range 200 {
		if got := joined["a"+strconv.Itoa(i)]; got != want(i) {
			t.Errorf("first instance: click a%d joined %q, want %q", i, got, want(i))
		}
		w := want(i)
		switch i {
		case 1:
			w = "k1=Bern"
		case 2:
			w = "k2="
		}
		if got := joined["b"+strconv.Itoa(i)]; got != w {
			t.Errorf("new instance: click b%d joined %q, want %q", i, got, w)
		}
	}
}
