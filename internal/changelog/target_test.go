package changelog

import (
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddystream/eddy/state"
	"github.com/eddystream/eddy/state/pebblestore"
)

// contents lists a backend's keys and values as "key=value".
func contents(t *testing.T, b state.Backend) []string {
	t.Helper()
	it, err := b.Range(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var out []string
	for it.Next() {
		out = append(out, string(it.Key())+"="+string(it.Value()))
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestStoreTargetRunsMatchRecordByRecord restores random changelogs, with
// overwrites, tombstones, empty values and wipes, into Pebble stores
// through StoreTargets whose small runs force many ingests and batches,
// and checks that each store ends as applying the records one by one
// would leave it: from empty, and on top of data already there, as a
// restore from a checkpoint finds it.
func TestStoreTargetRunsMatchRecordByRecord(t *testing.T) {
	quiet := pebblestore.WithLogger(slog.New(slog.DiscardHandler))
	for seed := range uint64(8) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 2))
			b, err := pebblestore.Open(t.TempDir(), quiet, pebblestore.WithMemTableSize(64<<10))
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			model := map[string]string{}
			keyspace := 50 + rng.IntN(2000)
			record := func() *kgo.Record {
				k := fmt.Sprintf("key-%d", rng.IntN(keyspace))
				switch rng.IntN(8) {
				case 0, 1:
					return del(k)
				case 2:
					return &kgo.Record{Key: []byte(k), Value: []byte{}}
				default:
					return put(k, fmt.Sprintf("value-%d", rng.IntN(1_000_000)))
				}
			}
			if seed%2 == 1 { // a store restored before, checkpointed
				var existing []state.Write
				for i := range keyspace / 2 {
					k := fmt.Sprintf("key-%d", 2*i)
					existing = append(existing, state.Write{Key: []byte(k), Value: []byte("old")})
					model[k] = "old"
				}
				if err := b.Apply(existing); err != nil {
					t.Fatal(err)
				}
			}

			runBytes := 1<<10 + rng.IntN(16<<10)
			target := NewStoreTarget(b, WithRunBytes(runBytes))
			for range 1 + rng.IntN(3) { // restarts, as after a restore's error
				if rng.IntN(3) == 0 {
					if err := target.Wipe(); err != nil {
						t.Fatal(err)
					}
					clear(model)
				}
				for range rng.IntN(40) {
					recs := make([]*kgo.Record, rng.IntN(500))
					for i := range recs {
						r := record()
						recs[i] = r
						if r.Value == nil {
							delete(model, string(r.Key))
						} else {
							model[string(r.Key)] = string(r.Value)
						}
					}
					if err := target.ApplyBatch(recs); err != nil {
						t.Fatal(err)
					}
					if got := target.runSize(); got > runBytes {
						t.Fatalf("the run takes %d bytes, over its bound of %d", got, runBytes)
					}
				}
				if err := target.Sync(); err != nil {
					t.Fatal(err)
				}
				want := make([]string, 0, len(model))
				for _, k := range slices.Sorted(maps.Keys(model)) {
					want = append(want, k+"="+model[k])
				}
				if got := contents(t, b); !slices.Equal(got, want) {
					t.Fatalf("the store holds %d keys, one by one gives %d; they differ:\n got %q\nwant %q", len(got), len(want), got, want)
				}
			}
			if target.arena != nil || target.entries != nil {
				t.Error("Sync kept the run's buffers")
			}
		})
	}
}

// TestStoreTargetIngestsLargeRuns checks that a run over 1 MiB reaches the
// store as tables of its own rather than through the memtable.
func TestStoreTargetIngestsLargeRuns(t *testing.T) {
	b, err := pebblestore.Open(t.TempDir(), pebblestore.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ing := &countingIngester{RunIngester: b.(state.RunIngester)}
	target := NewStoreTarget(struct {
		state.Backend
		state.RunIngester
	}{b, ing})
	recs := make([]*kgo.Record, 100_000)
	for i := range recs {
		recs[i] = put(fmt.Sprintf("key-%08d", (i*7919)%len(recs)), "0123456789")
	}
	if err := target.ApplyBatch(recs); err != nil {
		t.Fatal(err)
	}
	if err := target.ApplyBatch([]*kgo.Record{del("key-00000000")}); err != nil {
		t.Fatal(err)
	}
	if err := target.Sync(); err != nil {
		t.Fatal(err)
	}
	if ing.runs != 1 {
		t.Errorf("IngestRun called %d times, want 1", ing.runs)
	}
	got := contents(t, b)
	if len(got) != len(recs)-1 || got[0] != "key-00000001=0123456789" {
		t.Errorf("the store holds %d keys starting %q, want %d starting with key-00000001", len(got), got[:1], len(recs)-1)
	}
}

type countingIngester struct {
	state.RunIngester
	runs int
}

func (c *countingIngester) IngestRun(n int, write func(int) state.Write) error {
	c.runs++
	return c.RunIngester.IngestRun(n, write)
}
