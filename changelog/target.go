package changelog

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddystream/eddy/state"
)

// StoreTarget is a RestoreTarget that restores into a state.Backend: each
// batch of changelog records becomes one batch of writes, a record with a
// nil value a delete. If the backend is a state.BulkApplier, the batches
// are applied without an fsync each; call Sync when the restore is done,
// before writing a checkpoint that claims the data.
//
// A StoreTarget is used by one restore at a time (the Restorer calls a
// target from one goroutine); it reuses its write buffer between batches.
type StoreTarget struct {
	b     state.Backend
	bulk  state.BulkApplier
	batch []state.Write
}

var _ RestoreTarget = (*StoreTarget)(nil)

// NewStoreTarget returns a target that restores into b.
func NewStoreTarget(b state.Backend) *StoreTarget {
	t := &StoreTarget{b: b}
	t.bulk, _ = b.(state.BulkApplier)
	return t
}

// Wipe deletes every key, in batches. A restore wipes only when the
// store's checkpoint turned out to be older than the changelog's log start.
func (t *StoreTarget) Wipe() error {
	for {
		it, err := t.b.Range(nil, nil)
		if err != nil {
			return err
		}
		batch := t.batch[:0]
		for len(batch) < 10_000 && it.Next() {
			batch = append(batch, state.Write{Key: append([]byte(nil), it.Key()...), Delete: true})
		}
		err = errors.Join(it.Err(), it.Close())
		if err != nil || len(batch) == 0 {
			return err
		}
		if err := t.apply(batch); err != nil {
			return err
		}
	}
}

// ApplyBatch writes changelog records as one batch.
func (t *StoreTarget) ApplyBatch(recs []*kgo.Record) error {
	batch := t.batch[:0]
	for _, r := range recs {
		batch = append(batch, state.Write{Key: r.Key, Value: r.Value, Delete: r.Value == nil})
	}
	err := t.apply(batch)
	clear(batch) // drop the references to the records
	t.batch = batch[:0]
	return err
}

func (t *StoreTarget) apply(batch []state.Write) error {
	if t.bulk != nil {
		return t.bulk.ApplyNoSync(batch)
	}
	return t.b.Apply(batch)
}

// Sync makes what the target applied durable. It is a no-op for a backend
// that is not a state.BulkApplier (its Apply is durable already).
func (t *StoreTarget) Sync() error {
	if t.bulk == nil {
		return nil
	}
	return t.bulk.Sync()
}
