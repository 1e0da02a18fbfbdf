package topology_test

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eddystream/eddy/eddytest"
	"github.com/eddystream/eddy/internal/task"
	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/topology"
)

// valueTime reads a timestamp (Unix ms) from a value "<ms>:<text>", and
// returns an invalid time for a value that has none.
func valueTime(rec topology.SourceRecord, _ time.Time) time.Time {
	ms, _, ok := strings.Cut(string(rec.Value), ":")
	n, err := strconv.ParseInt(ms, 10, 64)
	if !ok || err != nil {
		return time.Time{}
	}
	return time.UnixMilli(n)
}

// passThrough builds "in" -> "out" with the given source options.
func passThrough(t *testing.T, opts ...topology.Option) *eddytest.Driver {
	t.Helper()
	b := topology.NewBuilder()
	topology.Source(b, "in", serde.String(), serde.String(), opts...).To("out")
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := eddytest.New(top)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// stamps returns the values and timestamps (Unix ms) written to "out".
func stamps(t *testing.T, d *eddytest.Driver) (values []string, ts []int64) {
	t.Helper()
	recs, err := eddytest.NewOutputTopic(d, "out", serde.String(), serde.String()).ReadRecords()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		values = append(values, r.Value)
		ts = append(ts, r.Timestamp.UnixMilli())
	}
	return values, ts
}

func TestTimestampExtractors(t *testing.T) {
	t.Run("from the value", func(t *testing.T) {
		d := passThrough(t, topology.WithTimestampExtractor(valueTime))
		in := eddytest.NewInputTopic(d, "in", serde.String(), serde.String())
		for _, v := range []string{"1000:a", "500:b"} {
			if err := in.PipeAt("k", v, time.UnixMilli(7)); err != nil {
				t.Fatal(err)
			}
		}
		if _, ts := stamps(t, d); !slices.Equal(ts, []int64{1000, 500}) {
			t.Errorf("output timestamps = %v, want the extracted [1000 500]", ts)
		}
	})
	t.Run("wall clock", func(t *testing.T) {
		d := passThrough(t, topology.WithTimestampExtractor(topology.WallClockTimestamp))
		in := eddytest.NewInputTopic(d, "in", serde.String(), serde.String())
		if err := in.PipeAt("k", "a", time.UnixMilli(7)); err != nil {
			t.Fatal(err)
		}
		first := d.Now()
		if err := d.AdvanceWallClock(time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := in.PipeAt("k", "b", time.UnixMilli(7)); err != nil {
			t.Fatal(err)
		}
		want := []int64{first.UnixMilli(), first.Add(time.Minute).UnixMilli()}
		if _, ts := stamps(t, d); !slices.Equal(ts, want) {
			t.Errorf("output timestamps = %v, want the driver's clock %v", ts, want)
		}
	})
	t.Run("record timestamp is the default", func(t *testing.T) {
		d := passThrough(t)
		in := eddytest.NewInputTopic(d, "in", serde.String(), serde.String())
		if err := in.PipeAt("k", "1000:a", time.UnixMilli(7)); err != nil {
			t.Fatal(err)
		}
		if _, ts := stamps(t, d); !slices.Equal(ts, []int64{7}) {
			t.Errorf("output timestamps = %v, want the record's [7]", ts)
		}
	})
	t.Run("nil extractor is a build error", func(t *testing.T) {
		b := topology.NewBuilder()
		topology.Source(b, "in", serde.String(), serde.String(), topology.Named("src"), topology.WithTimestampExtractor(nil)).To("out")
		_, err := b.Build()
		var ne *topology.NodeError
		if !errors.As(err, &ne) || ne.Node != "src" {
			t.Errorf("Build = %v, want a NodeError naming the source", err)
		}
	})
}

// Each handler of invalid timestamps, on the record's own timestamp and on
// an extractor's, with Kafka Streams' outcome.
func TestInvalidTimestamps(t *testing.T) {
	type input struct {
		value string
		ts    int64 // the record's own timestamp, Unix ms
	}
	for _, tc := range []struct {
		name      string
		opts      []topology.Option
		in        []input
		failAt    int // index of the input that fails the pipe, -1 for none
		noPTime   bool
		values    []string
		ts        []int64
		dropCount int64
	}{
		{
			name:   "fail by default",
			in:     []input{{"a", 5}, {"b", -1}},
			failAt: 1, values: []string{"a"}, ts: []int64{5},
		},
		{
			name:   "fail explicitly, from the extractor",
			opts:   []topology.Option{topology.WithTimestampExtractor(valueTime), topology.OnInvalidTimestamp(topology.FailOnInvalidTimestamp)},
			in:     []input{{"5:a", 1}, {"b", 1}},
			failAt: 1, values: []string{"5:a"}, ts: []int64{5},
		},
		{
			name:   "skip",
			opts:   []topology.Option{topology.OnInvalidTimestamp(topology.SkipOnInvalidTimestamp)},
			in:     []input{{"a", 5}, {"b", -1}, {"c", 3}},
			failAt: -1, values: []string{"a", "c"}, ts: []int64{5, 3}, dropCount: 1,
		},
		{
			name:   "skip, from the extractor",
			opts:   []topology.Option{topology.WithTimestampExtractor(valueTime), topology.OnInvalidTimestamp(topology.SkipOnInvalidTimestamp)},
			in:     []input{{"b", 9}, {"4:a", 9}},
			failAt: -1, values: []string{"4:a"}, ts: []int64{4}, dropCount: 1,
		},
		{
			name:   "use partition time: the largest so far",
			opts:   []topology.Option{topology.OnInvalidTimestamp(topology.UsePartitionTimeOnInvalidTimestamp)},
			in:     []input{{"a", 5}, {"b", 3}, {"c", -1}, {"d", 4}},
			failAt: -1, values: []string{"a", "b", "c", "d"}, ts: []int64{5, 3, 5, 4},
		},
		{
			name:   "use partition time: none yet fails",
			opts:   []topology.Option{topology.OnInvalidTimestamp(topology.UsePartitionTimeOnInvalidTimestamp)},
			in:     []input{{"a", -1}},
			failAt: 0, noPTime: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := passThrough(t, tc.opts...)
			in := eddytest.NewInputTopic(d, "in", serde.String(), serde.String())
			for i, r := range tc.in {
				err := in.PipeAt("k", r.value, time.UnixMilli(r.ts))
				if i != tc.failAt {
					if err != nil {
						t.Fatalf("input %d: %v", i, err)
					}
					continue
				}
				var ie *task.InvalidTimestampError
				if !errors.As(err, &ie) {
					t.Fatalf("input %d: err = %v, want an InvalidTimestampError", i, err)
				}
				if ie.Topic != "in" || ie.Offset != int64(i) || ie.Timestamp >= 0 || ie.NoPartitionTime != tc.noPTime {
					t.Errorf("error = %+v", ie)
				}
				if !strings.Contains(err.Error(), "in-0@"+strconv.Itoa(i)) {
					t.Errorf("error %q does not name the record", err)
				}
				break
			}
			values, ts := stamps(t, d)
			if !slices.Equal(values, tc.values) || !slices.Equal(ts, tc.ts) {
				t.Errorf("output = %v at %v, want %v at %v", values, ts, tc.values, tc.ts)
			}
			if n := d.DroppedRecords("invalid_timestamp"); n != tc.dropCount {
				t.Errorf("dropped invalid_timestamp = %d, want %d", n, tc.dropCount)
			}
		})
	}
}

func TestOnInvalidTimestampRejectsUnknownHandlers(t *testing.T) {
	b := topology.NewBuilder()
	topology.Source(b, "in", serde.String(), serde.String(), topology.Named("src"), topology.OnInvalidTimestamp(7)).To("out")
	if _, err := b.Build(); err == nil || !strings.Contains(err.Error(), "OnInvalidTimestamp") {
		t.Errorf("Build = %v, want an error about the handler", err)
	}
}
