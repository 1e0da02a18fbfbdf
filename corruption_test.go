package eddy_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddystream/eddy"
	"github.com/eddystream/eddy/serde"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A store whose files are damaged is detected at open, wiped and restored
// in full from its changelog: the counts stay exact.
func TestCorruptStoreIsWipedAndRestored(t *testing.T) {
	addrs := cluster(t, kfake.SeedTopics(2, "lines", "counts"))
	stateDir := t.TempDir()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	want := map[string]int64{}
	produce := func(n int) {
		t.Helper()
		var recs []*kgo.Record
		for i := range n {
			line := fmt.Sprintf("w%d w%d", i%5, i%3)
			for _, w := range strings.Fields(line) {
				want[w]++
			}
			recs = append(recs, &kgo.Record{Topic: "lines", Key: []byte(fmt.Sprint(i)), Value: []byte(line)})
		}
		if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	consumer, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics("counts"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	got := map[string]int64{}
	runUntilCounted := func(logs *lockedBuffer) {
		t.Helper()
		app, err := eddy.New(wordCount(t, "lines", "counts"), eddy.ApplicationID("corrupt"), eddy.Brokers(addrs...),
			eddy.StateDir(stateDir), eddy.CommitInterval(50*time.Millisecond),
			eddy.Logger(slog.New(slog.NewTextHandler(logs, nil))), eddy.KafkaOptions(kgo.RebalanceTimeout(2*time.Second)))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		errc := make(chan error, 1)
		go func() { errc <- app.Run(ctx) }()
		for !equalCounts(got, want) {
			fs := consumer.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("counts = %v, want %v\nlogs:\n%s", got, want, logs)
			}
			fs.EachRecord(func(r *kgo.Record) {
				n, _ := serde.Int64().Deserialize("counts", r.Value)
				got[string(r.Key)] = n
			})
		}
		app.Close()
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}

	produce(200)
	runUntilCounted(&lockedBuffer{})
	manifests, _ := filepath.Glob(filepath.Join(stateDir, "corrupt", "1_*", "counts", "MANIFEST-*"))
	if len(manifests) != 2 {
		t.Fatalf("want a MANIFEST in each of the 2 counting tasks' stores, found %v", manifests)
	}
	for _, m := range manifests {
		if err := os.WriteFile(m, []byte("this is not a manifest"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	produce(100)
	logs := &lockedBuffer{}
	runUntilCounted(logs)
	if n := strings.Count(logs.String(), "store is corrupt; wiping it"); n != 2 {
		t.Errorf("logged %d corrupt stores, want 2:\n%s", n, logs)
	}
	if !strings.Contains(logs.String(), "in full") {
		t.Errorf("the wiped stores were not restored in full:\n%s", logs)
	}
}
