package chaos

import (
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Windowed describes the windowed count an application keeps of a data set
// (examples/aggregates with -windowed): every input record gets the event
// time Base plus its value in milliseconds, so that the windows, and the
// exact count of each, follow from the data set alone, and the records are
// counted per key in tumbling windows of Size. The application forwards
// every update to Topic, keyed as Kafka Streams' TimeWindowedSerializer
// keys (the key, then the window start, 8 bytes big-endian), with the
// count as an int64 value.
type Windowed struct {
	Topic string
	Base  time.Time
	Size  time.Duration
}

// Option adds a check to [Verify].
type Option func(*verifyConfig)

type verifyConfig struct {
	windowed *Windowed
}

// WithWindowed makes Verify check the windowed count w as well: the last
// count of every window must be the exact one (Report.WrongWindows), and
// no count may be short of it (Report.ShortWindows), which would be a loss.
func WithWindowed(w Windowed) Option { return func(c *verifyConfig) { c.windowed = &w } }

// windowKey is one key's window, by start in milliseconds.
type windowKey struct {
	key   string
	start int64
}

// windowOf returns the window of value v.
func (w Windowed) windowOf(ds *DataSet, v int64) windowKey {
	ts := w.Base.UnixMilli() + v
	size := w.Size.Milliseconds()
	return windowKey{key: ds.Key(v), start: ts - ts%size}
}

// WindowMismatch is a window whose last count is not the exact one.
type WindowMismatch struct {
	Key   string
	Start time.Time
	Got   int64 // the last count read, if Found
	Found bool
	Want  int64
}

// String describes m.
func (m WindowMismatch) String() string {
	got := "none"
	if m.Found {
		got = fmt.Sprint(m.Got)
	}
	return fmt.Sprintf("%s@%s: got %s want %d", m.Key, m.Start.UTC().Format(time.RFC3339Nano), got, m.Want)
}

// windowChecker judges a windowed count's output.
type windowChecker struct {
	w      Windowed
	ds     *DataSet
	last   map[windowKey]int64
	report *Report
}

func newWindowChecker(w Windowed, ds *DataSet, r *Report) *windowChecker {
	return &windowChecker{w: w, ds: ds, last: map[windowKey]int64{}, report: r}
}

// record keeps one output record as its window's last count.
func (c *windowChecker) record(rec *kgo.Record, unexpected func(string, ...any)) {
	c.report.WindowedRecords++
	if len(rec.Key) < 8 || len(rec.Value) != 8 {
		unexpected("%s-%d@%d: a windowed count needs a key of at least 8 bytes and an 8-byte value, got %d and %d", rec.Topic, rec.Partition, rec.Offset, len(rec.Key), len(rec.Value))
		return
	}
	n := len(rec.Key) - 8
	k := windowKey{key: string(rec.Key[:n]), start: int64(binary.BigEndian.Uint64(rec.Key[n:]))}
	c.last[k] = int64(binary.BigEndian.Uint64(rec.Value))
}

// finish compares every window's last count with the exact one.
func (c *windowChecker) finish(unexpected func(string, ...any)) {
	want := map[windowKey]int64{}
	for v := int64(0); v < c.ds.Records(); v++ {
		want[c.w.windowOf(c.ds, v)]++
	}
	c.report.Windows = len(want)
	var wrong []WindowMismatch
	for k, n := range want {
		got, found := c.last[k]
		if found && got == n {
			continue
		}
		c.report.WrongWindows++
		if !found || got < n {
			c.report.ShortWindows++
		}
		wrong = append(wrong, WindowMismatch{Key: k.key, Start: time.UnixMilli(k.start), Got: got, Found: found, Want: n})
	}
	for k := range c.last {
		if _, ok := want[k]; !ok {
			unexpected("window %s@%d was never written to", k.key, k.start)
		}
	}
	slices.SortFunc(wrong, func(a, b WindowMismatch) int {
		if a.Key != b.Key {
			if a.Key < b.Key {
				return -1
			}
			return 1
		}
		return a.Start.Compare(b.Start)
	})
	c.report.WindowExamples = wrong[:min(len(wrong), maxExamples)]
}
