package chaos

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// windowedRecords is what a correct application writes for values in
// order: each value's window's running count, keyed as Kafka Streams'
// TimeWindowedSerializer keys.
func windowedRecords(ds *DataSet, w Windowed, running map[windowKey]int64, values ...int64) []*kgo.Record {
	var out []*kgo.Record
	for _, v := range values {
		k := w.windowOf(ds, v)
		running[k]++
		key := binary.BigEndian.AppendUint64([]byte(k.key), uint64(k.start))
		out = append(out, &kgo.Record{Topic: w.Topic, Key: key, Value: binary.BigEndian.AppendUint64(nil, uint64(running[k]))})
	}
	return out
}

func TestWindowedVerdicts(t *testing.T) {
	w := Windowed{Topic: "windowed", Base: time.UnixMilli(1_000_000_500), Size: time.Second}
	ds := fakeDataSet(5000, 7, 42)
	judge := func(recs []*kgo.Record) Report {
		c := newChecker(ds)
		wc := newWindowChecker(w, &c.ds, &c.r)
		for _, r := range recs {
			wc.record(r, c.unexpected)
		}
		wc.finish(c.unexpected)
		return c.r
	}
	exact := windowedRecords(&ds, w, map[windowKey]int64{}, seq(0, 5000)...)
	r := judge(exact)
	// 5000 ms from a base of ...500 ms: six windows per key.
	if r.WrongWindows != 0 || r.ShortWindows != 0 || r.Unexpected != 0 || r.Windows != 6*7 {
		t.Fatalf("an exact windowed count judged: %d windows, %d wrong, %d short, %d unexpected", r.Windows, r.WrongWindows, r.ShortWindows, r.Unexpected)
	}
	// The last value counted twice: its window's last count is one too
	// many, wrong but not short.
	running := map[windowKey]int64{}
	dup := windowedRecords(&ds, w, running, append(seq(0, 5000), 4999)...)
	if r := judge(dup); r.WrongWindows != 1 || r.ShortWindows != 0 {
		t.Fatalf("a window counted once too often: %d wrong, %d short; want 1 and 0", r.WrongWindows, r.ShortWindows)
	}
	// The last values missing: short.
	if r := judge(exact[:4990]); r.ShortWindows == 0 || r.NothingLost() {
		t.Fatalf("windows missing inputs judged: %d short, nothing lost %v", r.ShortWindows, r.NothingLost())
	}
}
