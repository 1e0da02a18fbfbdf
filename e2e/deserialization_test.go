package e2e

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// numbers writes good int64 records over keys k0..k9 into partition 0 of
// a one-partition topic, with one 3-byte value at offset bad, and returns
// the expected sum per key.
func numbers(t *testing.T, topic string, n, bad int) map[string]int64 {
	sums := map[string]int64{}
	recs := make([]*kgo.Record, n)
	for i := range recs {
		key := fmt.Sprintf("k%d", i%10)
		v := binary.BigEndian.AppendUint64(nil, uint64(i))
		if i == bad {
			v = []byte{1, 2, 3}
		} else {
			sums[key] += int64(i)
		}
		recs[i] = &kgo.Record{Topic: topic, Partition: 0, Key: []byte(key), Value: v}
	}
	produce(t, recs)
	return sums
}

func aggTopics(t *testing.T) (app, in, pass, stats string) {
	name := uniqueName(t)
	app, in, pass, stats = "agg-"+name, name+"-numbers", name+"-pass", name+"-stats"
	createTopics(t, 1, in, pass, stats)
	return
}

func TestUndeserializableRecordFailsByDefault(t *testing.T) {
	app, in, pass, stats := aggTopics(t)
	numbers(t, in, 100, 42)
	p := start(t, "agg", "aggregates", "-app", app, "-input", in, "-passthrough", pass, "-stats", stats, "-state-dir", t.TempDir(), "-commit-interval", "100ms")
	err := p.wait(60 * time.Second)
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("want a failed exit, got %v", err)
	}
	want := fmt.Sprintf("record %s-0@42 does not deserialize", in)
	if !strings.Contains(p.out.String(), want) {
		t.Errorf("the error does not name the record (%q):\n%s", want, tail(p.out.String(), 5))
	}
	// Nothing after the bad record was committed: a restart with the skip
	// handler resumes at it.
	committed := readCommitted(t, app, in)
	if committed > 42 {
		t.Errorf("committed offset %d is past the bad record at 42", committed)
	}
}

func TestUndeserializableRecordIsSkippedWhenAsked(t *testing.T) {
	app, in, pass, stats := aggTopics(t)
	sums := numbers(t, in, 100, 42)
	p := start(t, "agg", "aggregates", "-app", app, "-input", in, "-passthrough", pass, "-stats", stats, "-state-dir", t.TempDir(), "-commit-interval", "100ms", "-skip-bad-records")
	waitConsumed(t, app, 60*time.Second, in)
	p.stop()
	if !strings.Contains(p.out.String(), "skipped_records=1") {
		t.Errorf("the skipped record was not counted:\n%s", tail(p.out.String(), 5))
	}
	if !strings.Contains(p.out.String(), fmt.Sprintf("%s-0@42", in)) {
		t.Error("the skip was not logged with the record's position")
	}
	if n := len(readAll(t, pass)); n != 99 {
		t.Errorf("passthrough has %d records, want the 99 good ones", n)
	}
	last := map[string]struct{ Sum, Count int64 }{}
	for _, r := range readAll(t, stats) {
		var s struct{ Sum, Count int64 }
		if err := json.Unmarshal(r.Value, &s); err != nil {
			t.Fatal(err)
		}
		last[string(r.Key)] = s
	}
	for k, want := range sums {
		if last[k].Sum != want {
			t.Errorf("sum[%s] = %d, want %d", k, last[k].Sum, want)
		}
	}
}

// readCommitted returns the group's committed offset of partition 0 of
// topic, or -1.
func readCommitted(t *testing.T, group, topic string) int64 {
	t.Helper()
	cl := client(t)
	adm := kadm.NewClient(cl)
	ctx, cancel := ctx30()
	defer cancel()
	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := offs.Lookup(topic, 0); ok {
		return o.At
	}
	return -1
}
