package e2e

import (
	"encoding/binary"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Records with a null key or value flow into examples/aggregates (string
// keys, int64 values): the passthrough keeps the nulls, the aggregation
// drops them and counts them in eddy_dropped_records_total, and an empty
// key is aggregated like any other. Before, a null value failed the
// instance (the int64 serde cannot decode it) and null keys were
// aggregated under "".
func TestNullKeysAndValuesInAnAggregation(t *testing.T) {
	app, in, pass, stats := aggTopics(t)
	num := func(i int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(i)) }
	recs := []*kgo.Record{
		{Key: []byte("k"), Value: num(1)},
		{Key: nil, Value: num(100)}, // null key
		{Key: []byte(""), Value: num(2)},
		{Key: []byte("k"), Value: nil}, // null value
		{Key: nil, Value: nil},         // both: one null-key drop
		{Key: []byte("k"), Value: num(3)},
		{Key: nil, Value: num(200)}, // null key
		{Key: []byte(""), Value: num(4)},
	}
	for _, r := range recs {
		r.Topic, r.Partition = in, 0
	}
	produce(t, recs)

	addr := freeAddr(t)
	p := start(t, "agg", "aggregates", "-app", app, "-input", in, "-passthrough", pass, "-stats", stats,
		"-state-dir", t.TempDir(), "-commit-interval", "100ms", "-admin-addr", addr, "-v")
	p.admin = addr
	waitConsumed(t, app, 60*time.Second, in)

	ms := p.mustScrape()
	for reason, want := range map[string]float64{"null_key": 3, "null_value": 1} {
		if got, _ := ms.sum("eddy_dropped_records_total", "reason", reason); got != want {
			t.Errorf("eddy_dropped_records_total{reason=%q} = %v, want %v", reason, got, want)
		}
	}
	p.stop()
	if n := strings.Count(p.out.String(), `msg="dropping a record"`); n != 4 {
		t.Errorf("%d drops logged at debug, want 4", n)
	}

	var nullKeys, nullValues int
	passed := readAll(t, pass)
	for _, r := range passed {
		if r.Key == nil {
			nullKeys++
		}
		if r.Value == nil {
			nullValues++
		}
	}
	if len(passed) != len(recs) || nullKeys != 3 || nullValues != 2 {
		t.Errorf("passthrough: %d records, %d null keys, %d null values; want %d, 3, 2", len(passed), nullKeys, nullValues, len(recs))
	}

	last := map[string]struct{ Sum, Count int64 }{}
	for _, r := range readAll(t, stats) {
		if r.Key == nil {
			t.Errorf("an aggregate with a null key: %s", r.Value)
			continue
		}
		var s struct{ Sum, Count int64 }
		if err := json.Unmarshal(r.Value, &s); err != nil {
			t.Fatal(err)
		}
		last[string(r.Key)] = s
	}
	want := map[string]struct{ Sum, Count int64 }{"k": {4, 2}, "": {6, 2}}
	if len(last) != len(want) || last["k"] != want["k"] || last[""] != want[""] {
		t.Errorf("aggregates = %+v, want %+v", last, want)
	}
}
