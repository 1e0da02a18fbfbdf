package chaos

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
)

// maxExamples bounds each list of examples in a [Report].
const maxExamples = 10

// Report is the verdict of [Verify]: what the passthrough and stats topics
// hold compared with the data set that was produced.
type Report struct {
	// Inputs is the number of values the data set wrote.
	Inputs int64
	// PassthroughRecords and StatsRecords count the data records read
	// from each output topic (transaction markers and records of aborted
	// transactions are not data).
	PassthroughRecords, StatsRecords int64
	// Verified is the number of inputs found in the passthrough at least
	// once.
	Verified int64
	// Missing is the number of inputs never found in the passthrough.
	Missing int64
	// Duplicated is the number of inputs found more than once, and
	// ExtraCopies the number of copies beyond the first, over all of them.
	Duplicated, ExtraCopies int64
	// Unexpected counts records that are no input: in the passthrough, a
	// value the data set never wrote, a value under another key than the
	// one it was written with, or a value that is not 8 bytes; in the stats
	// topic, a key the data set never wrote, a value that is not Stats
	// JSON, or a key whose aggregates appear in two partitions (which makes
	// "the last aggregate" meaningless).
	Unexpected int64
	// Keys is the number of keys the data set wrote.
	Keys int
	// WrongAggregates is the number of keys whose last aggregate in the
	// stats topic is not the exact one, or that have none.
	WrongAggregates int
	// ShortAggregates counts those of WrongAggregates that miss inputs: no
	// aggregate at all, a count or a sum below the exact one, a minimum
	// above it or a maximum below it. Processing an input twice cannot
	// explain these (the values are not negative), so they are losses even
	// under at-least-once.
	ShortAggregates int
	// Windows is the number of windows of the data set's windowed count,
	// and WindowedRecords the data records read from its topic, when
	// Verify checks one (WithWindowed). WrongWindows counts windows whose
	// last count is not the exact one, or that have none; ShortWindows
	// those of them whose count is lower (inputs missing from it, a loss
	// under at-least-once too).
	Windows                    int
	WindowedRecords            int64
	WrongWindows, ShortWindows int

	// MissingRanges says, per input partition, where the missing inputs
	// were in the input topic. Verify fills it only when inputs are missing.
	MissingRanges []MissingRange
	// MissingExamples, DuplicateExamples, UnexpectedExamples and
	// AggregateExamples hold up to ten examples each.
	MissingExamples    []MissingInput
	DuplicateExamples  []DuplicateInput
	UnexpectedExamples []string
	AggregateExamples  []AggregateMismatch
	WindowExamples     []WindowMismatch
}

// MissingInput is an input that never appeared in the passthrough.
type MissingInput struct {
	Value int64
	Key   string
	// Partition and Offset locate the input in the input topic; Partition
	// is -1 if it was not found there (it should always be).
	Partition int32
	Offset    int64
}

// MissingRange describes the missing inputs of one input partition.
type MissingRange struct {
	Partition int32
	// Count is the number of missing inputs in the partition, the first
	// of which is at offset First and the last at offset Last.
	Count       int64
	First, Last int64
}

// DuplicateInput is an input that appeared Copies times in the passthrough.
type DuplicateInput struct {
	Value  int64
	Key    string
	Copies int
}

// AggregateMismatch is a key whose last aggregate is not the exact one.
type AggregateMismatch struct {
	Key string
	// Got is the last aggregate in the stats topic, if Found.
	Got   Stats
	Found bool
	Want  Stats
	// Short says that Got misses inputs (see Report.ShortAggregates).
	Short bool
}

// String describes m, for example "k0042: got {sum ...} want {sum ...}
// (misses inputs)".
func (m AggregateMismatch) String() string {
	got := "no aggregate"
	if m.Found {
		got = m.Got.String()
	}
	s := fmt.Sprintf("%s: got %s, want %s", m.Key, got, m.Want)
	if m.Short {
		s += " (misses inputs)"
	}
	return s
}

// NothingLost reports whether every input reached the passthrough and
// every key's last aggregate reflects all of the key's inputs: the
// guarantee of at-least-once processing. Duplicates are allowed.
func (r Report) NothingLost() bool {
	return r.Missing == 0 && r.ShortAggregates == 0 && r.ShortWindows == 0
}

// ExactlyOnce reports whether every input appears exactly once in the
// passthrough, nothing else does, and every key's last aggregate is exact:
// the guarantee of exactly-once processing.
func (r Report) ExactlyOnce() bool {
	return r.NothingLost() && r.Verified == r.Inputs && r.Duplicated == 0 && r.Unexpected == 0 && r.WrongAggregates == 0 && r.WrongWindows == 0
}

// String returns the verdict on its first line, then the counts and the
// examples.
func (r Report) String() string {
	var b strings.Builder
	switch {
	case !r.NothingLost():
		fmt.Fprintf(&b, "LOSS: %d of %d inputs missing from the passthrough; %d of %d keys' aggregates miss inputs; %d of %d windows' counts miss inputs\n",
			r.Missing, r.Inputs, r.ShortAggregates, r.Keys, r.ShortWindows, r.Windows)
	case r.ExactlyOnce():
		fmt.Fprintf(&b, "EXACTLY ONCE: each of %d inputs once in the passthrough; all %d aggregates exact; all %d windowed counts exact\n", r.Inputs, r.Keys, r.Windows)
	default:
		fmt.Fprintf(&b, "AT LEAST ONCE: nothing lost; %d inputs duplicated (%d extra copies), %d unexpected records, %d of %d aggregates not exact, %d of %d windowed counts not exact\n",
			r.Duplicated, r.ExtraCopies, r.Unexpected, r.WrongAggregates, r.Keys, r.WrongWindows, r.Windows)
	}
	fmt.Fprintf(&b, "inputs %d; passthrough records %d; stats records %d\n", r.Inputs, r.PassthroughRecords, r.StatsRecords)
	fmt.Fprintf(&b, "verified %d; missing %d; duplicated %d (%d extra copies); unexpected %d\n", r.Verified, r.Missing, r.Duplicated, r.ExtraCopies, r.Unexpected)
	fmt.Fprintf(&b, "keys %d; aggregates not exact %d, of which miss inputs %d\n", r.Keys, r.WrongAggregates, r.ShortAggregates)
	for _, m := range r.MissingRanges {
		fmt.Fprintf(&b, "  missing in input partition %d: %d inputs between offsets %d and %d\n", m.Partition, m.Count, m.First, m.Last)
	}
	for _, m := range r.MissingExamples {
		fmt.Fprintf(&b, "  missing: value %d key %s at input partition %d offset %d\n", m.Value, m.Key, m.Partition, m.Offset)
	}
	for _, d := range r.DuplicateExamples {
		fmt.Fprintf(&b, "  duplicated: value %d key %s, %d copies\n", d.Value, d.Key, d.Copies)
	}
	for _, u := range r.UnexpectedExamples {
		fmt.Fprintf(&b, "  unexpected: %s\n", u)
	}
	for _, a := range r.AggregateExamples {
		fmt.Fprintf(&b, "  aggregate %s\n", a)
	}
	if r.Windows > 0 {
		fmt.Fprintf(&b, "windows %d; windowed records %d; counts not exact %d, of which miss inputs %d\n", r.Windows, r.WindowedRecords, r.WrongWindows, r.ShortWindows)
	}
	for _, w := range r.WindowExamples {
		fmt.Fprintf(&b, "  window %s\n", w)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// lastStats is the last aggregate read for a key, and the partition it
// came from.
type lastStats struct {
	stats     Stats
	partition int32
}

// checker judges what Verify reads against a data set. It does no I/O, so
// it is tested without a broker.
type checker struct {
	ds     DataSet
	copies []uint8 // copies[v]: how often value v was seen, saturating at 255
	last   map[string]lastStats
	r      Report
}

func newChecker(ds DataSet) *checker {
	return &checker{
		ds:     ds,
		copies: make([]uint8, ds.Records()),
		last:   make(map[string]lastStats, len(ds.Expected)),
		r:      Report{Inputs: ds.Records(), Keys: len(ds.Expected)},
	}
}

// unexpected counts one unexpected record and keeps its description as an
// example while there is room.
func (c *checker) unexpected(format string, args ...any) {
	c.r.Unexpected++
	if len(c.r.UnexpectedExamples) < maxExamples {
		c.r.UnexpectedExamples = append(c.r.UnexpectedExamples, fmt.Sprintf(format, args...))
	}
}

// passthrough checks one data record of the passthrough topic.
func (c *checker) passthrough(rec *kgo.Record) {
	c.r.PassthroughRecords++
	v, err := DecodeValue(rec.Value)
	switch {
	case err != nil:
		c.unexpected("%s-%d@%d: %v", rec.Topic, rec.Partition, rec.Offset, err)
	case !c.ds.Contains(v):
		c.unexpected("%s-%d@%d: value %d was never produced", rec.Topic, rec.Partition, rec.Offset, v)
	case string(rec.Key) != c.ds.Key(v):
		c.unexpected("%s-%d@%d: value %d under key %q, produced under %q", rec.Topic, rec.Partition, rec.Offset, v, rec.Key, c.ds.Key(v))
	default:
		if c.copies[v] < 255 {
			c.copies[v]++
		}
	}
}

// stats checks one data record of the stats topic and keeps it as its
// key's last aggregate. Records of one partition arrive in offset order,
// so the last one read is the last one the application emitted.
func (c *checker) stats(rec *kgo.Record) {
	c.r.StatsRecords++
	key := string(rec.Key)
	if _, ok := c.ds.Expected[key]; !ok {
		c.unexpected("%s-%d@%d: aggregate for key %q, which was never produced", rec.Topic, rec.Partition, rec.Offset, key)
		return
	}
	var s Stats
	if err := json.Unmarshal(rec.Value, &s); err != nil {
		c.unexpected("%s-%d@%d: aggregate for key %q is not Stats JSON: %v", rec.Topic, rec.Partition, rec.Offset, key, err)
		return
	}
	if prev, ok := c.last[key]; ok && prev.partition != rec.Partition {
		c.unexpected("%s-%d@%d: aggregate for key %q, whose earlier aggregates are in partition %d", rec.Topic, rec.Partition, rec.Offset, key, prev.partition)
	}
	c.last[key] = lastStats{stats: s, partition: rec.Partition}
}

// input notes where an input record is, for the report of missing inputs.
// It is fed the input topic only when inputs are missing.
func (c *checker) input(rec *kgo.Record) {
	v, err := DecodeValue(rec.Value)
	if err != nil || !c.ds.Contains(v) || c.copies[v] != 0 {
		return
	}
	i, found := slices.BinarySearchFunc(c.r.MissingRanges, rec.Partition, func(m MissingRange, p int32) int { return int(m.Partition - p) })
	if !found {
		c.r.MissingRanges = slices.Insert(c.r.MissingRanges, i, MissingRange{Partition: rec.Partition, First: rec.Offset, Last: rec.Offset})
	}
	m := &c.r.MissingRanges[i]
	m.Count++
	m.First, m.Last = min(m.First, rec.Offset), max(m.Last, rec.Offset)
	for j := range c.r.MissingExamples {
		if e := &c.r.MissingExamples[j]; e.Value == v {
			e.Partition, e.Offset = rec.Partition, rec.Offset
		}
	}
}

// finish counts missing and duplicated inputs and compares the aggregates.
// It is called once everything has been read; input may follow it.
func (c *checker) finish() {
	for v, n := range c.copies {
		switch {
		case n == 0:
			c.r.Missing++
			if len(c.r.MissingExamples) < maxExamples {
				c.r.MissingExamples = append(c.r.MissingExamples, MissingInput{Value: int64(v), Key: c.ds.Key(int64(v)), Partition: -1, Offset: -1})
			}
		case n > 1:
			c.r.Duplicated++
			c.r.ExtraCopies += int64(n) - 1
			if len(c.r.DuplicateExamples) < maxExamples {
				c.r.DuplicateExamples = append(c.r.DuplicateExamples, DuplicateInput{Value: int64(v), Key: c.ds.Key(int64(v)), Copies: int(n)})
			}
		}
	}
	c.r.Verified = c.r.Inputs - c.r.Missing
	keys := make([]string, 0, len(c.ds.Expected))
	for k := range c.ds.Expected {
		keys = append(keys, k)
	}
	slices.Sort(keys) // examples in a stable order
	var wrong []AggregateMismatch
	for _, k := range keys {
		want := c.ds.Expected[k]
		got, found := c.last[k]
		if found && got.stats == want {
			continue
		}
		m := AggregateMismatch{Key: k, Got: got.stats, Found: found, Want: want, Short: missesInputs(got.stats, found, want)}
		c.r.WrongAggregates++
		if m.Short {
			c.r.ShortAggregates++
		}
		wrong = append(wrong, m)
	}
	// Examples of aggregates that miss inputs come first: they are losses.
	slices.SortStableFunc(wrong, func(a, b AggregateMismatch) int {
		switch {
		case a.Short == b.Short:
			return 0
		case a.Short:
			return -1
		default:
			return 1
		}
	})
	c.r.AggregateExamples = wrong[:min(len(wrong), maxExamples)]
}

// missesInputs reports whether aggregate got lacks some of the inputs want
// was computed from. Inputs processed more than once only raise the count
// and the sum (values are not negative) and leave the minimum and maximum
// alone, so anything else means inputs are missing.
func missesInputs(got Stats, found bool, want Stats) bool {
	return !found || got.Count < want.Count || got.Sum < want.Sum || got.Min > want.Min || got.Max < want.Max
}
