package chaos

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Stats is the aggregate an application keeps per key: the sum, count,
// minimum and maximum of the key's values. Its JSON form is that of
// examples/aggregates.
type Stats struct {
	Sum   int64 `json:"sum"`
	Count int64 `json:"count"`
	Min   int64 `json:"min"`
	Max   int64 `json:"max"`
}

// add returns s updated with one more value v, as examples/aggregates does.
func (s Stats) add(v int64) Stats {
	if s.Count == 0 || v < s.Min {
		s.Min = v
	}
	if s.Count == 0 || v > s.Max {
		s.Max = v
	}
	s.Sum += v
	s.Count++
	return s
}

// String formats s compactly for reports.
func (s Stats) String() string {
	return fmt.Sprintf("{sum %d count %d min %d max %d}", s.Sum, s.Count, s.Min, s.Max)
}

// produceChunk bounds how many records one ProduceSync call holds in
// memory, so that a long run can produce many millions of records.
const produceChunk = 10_000

// ErrDataSetBroken is returned by [Verify] for a data set whose production
// failed: a record reported as failed may still have been written, so the
// data set no longer says exactly what the input topic holds.
var ErrDataSetBroken = errors.New("chaos: a produce of this data set failed, so the input topic's content is uncertain; produce a new data set to a new topic")

// DataSet is what [Produce] and [DataSet.ProduceMore] wrote to an input
// topic and what an application must make of it.
//
// Its values are the sequence numbers 0 to Records()-1, each written once,
// so the set of values is that range. The key of each value is a
// deterministic function of the seed and the value ([DataSet.Key]), one of
// KeyCount keys; the client's partitioner spreads the keys over the
// topic's partitions (kgo's default hashes keys with murmur2, as Kafka's
// Java clients do).
//
// A DataSet holds a map: copies share it. Produce more only through one
// copy, and hand copies to [Verify] only once production is over.
type DataSet struct {
	// Topic is the input topic the values were written to.
	Topic string
	// KeyCount is the number of distinct keys values are drawn over.
	KeyCount int
	// Seed decides which key each value gets.
	Seed uint64
	// Expected is the exact aggregate of every key written so far.
	Expected map[string]Stats

	next   int64 // the next value to write; values 0..next-1 are written
	broken error // the first produce error, after which the data set is uncertain
}

// Produce writes records int64 values over keys keys to topic with cl, and
// returns the data set that describes them. The values are 0 to records-1,
// each under the key [DataSet.Key] picks for it; records without an explicit
// partition go where cl's partitioner puts them. Produce returns once the
// broker has acknowledged every record.
//
// If Produce returns an error, the data set must not be verified (see
// [ErrDataSetBroken]).
func Produce(ctx context.Context, cl *kgo.Client, topic string, records, keys int, seed uint64) (DataSet, error) {
	if topic == "" {
		return DataSet{}, errors.New("chaos: Produce needs an input topic")
	}
	if keys <= 0 {
		return DataSet{}, fmt.Errorf("chaos: Produce needs at least one key, got %d", keys)
	}
	ds := DataSet{Topic: topic, KeyCount: keys, Seed: seed, Expected: make(map[string]Stats, keys)}
	err := ds.ProduceMore(ctx, cl, records)
	return ds, err
}

// ProduceMore writes records more values to the data set's topic, continuing
// the sequence where the last call ended, and adds them to the expected
// aggregates once the broker has acknowledged them. It is not safe for
// concurrent use; the goroutine that produces owns the data set until it is
// done.
//
// After an error the data set is broken: it must not be verified, and
// further calls return the same error.
func (ds *DataSet) ProduceMore(ctx context.Context, cl *kgo.Client, records int) error {
	if ds.broken != nil {
		return ds.broken
	}
	if ds.Expected == nil || ds.KeyCount <= 0 {
		return errors.New("chaos: ProduceMore on a data set that Produce did not create")
	}
	if records < 0 {
		return fmt.Errorf("chaos: cannot produce %d records", records)
	}
	for done := 0; done < records; {
		n := min(produceChunk, records-done)
		first := ds.next
		batch := make([]*kgo.Record, n)
		for i := range batch {
			v := first + int64(i)
			batch[i] = &kgo.Record{Topic: ds.Topic, Key: []byte(ds.Key(v)), Value: EncodeValue(v)}
		}
		if err := cl.ProduceSync(ctx, batch...).FirstErr(); err != nil {
			ds.broken = fmt.Errorf("%w: values %d to %d: %w", ErrDataSetBroken, first, first+int64(n)-1, err)
			return fmt.Errorf("chaos: produce values %d to %d to %s: %w", first, first+int64(n)-1, ds.Topic, err)
		}
		for i := range batch {
			v := first + int64(i)
			k := ds.Key(v)
			ds.Expected[k] = ds.Expected[k].add(v)
		}
		ds.next += int64(n)
		done += n
	}
	return nil
}

// Records returns how many values the data set holds: its values are 0 to
// Records()-1.
func (ds *DataSet) Records() int64 { return ds.next }

// Contains reports whether v is a value of the data set.
func (ds *DataSet) Contains(v int64) bool { return v >= 0 && v < ds.next }

// Key returns the key of value v: one of KeyCount keys named "k0000",
// "k0001", ... (as many digits as the largest key number needs), chosen by
// hashing the seed and v.
func (ds *DataSet) Key(v int64) string {
	return keyName(int(mix(ds.Seed, uint64(v))%uint64(ds.KeyCount)), ds.KeyCount)
}

// keyName names key number i of n.
func keyName(i, n int) string {
	return fmt.Sprintf("k%0*d", len(fmt.Sprint(n-1)), i)
}

// mix is the SplitMix64 finaliser over seed and x: a cheap hash whose
// outputs spread evenly whatever the inputs' patterns.
func mix(seed, x uint64) uint64 {
	z := seed + x*0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// EncodeValue encodes v as the input topic holds it: 8 bytes big-endian, as
// Kafka's LongSerializer and eddy's serde.Int64 do.
func EncodeValue(v int64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), uint64(v))
}

// DecodeValue decodes a value that [EncodeValue] encoded.
func DecodeValue(b []byte) (int64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("chaos: a value is 8 bytes, got %d", len(b))
	}
	return int64(binary.BigEndian.Uint64(b)), nil
}
