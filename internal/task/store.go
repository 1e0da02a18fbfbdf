package task

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddystream/eddy/internal/overlay"
	"github.com/eddystream/eddy/state"
)

// storeRuntime is one store of a task: its backend, the overlay holding
// the writes of the open commit interval, and the typed view processors use.
// The overlay is the typed view's state.RawStore: Put, Delete and
// DeleteRange go to it, and reach the backend at CommitStores.
type storeRuntime struct {
	spec    StoreSpec
	backend state.Backend
	overlay *overlay.Overlay
	typed   any
}

func newStoreRuntime(spec StoreSpec, b state.Backend) *storeRuntime {
	s := &storeRuntime{spec: spec, backend: b, overlay: overlay.New(b)}
	s.typed = spec.Typed(s.overlay)
	return s
}

// FlushChangelog emits one changelog record per key written since the last
// commit (the latest value, or a tombstone for a delete) for every logged
// store, stamped with ts (a value of a Timestamped store: with its own
// timestamp, unless it has none), and returns how many it emitted. The
// records go to Output with Partition set to the task's partition. Range
// deletes (state.RawStore.DeleteRange) emit nothing: the overlay's
// Pending leaves them out, and the writes they covered with them.
func (t *Task) FlushChangelog(ts time.Time) int {
	n := 0
	for _, name := range t.order {
		s := t.stores[name]
		if s.spec.ChangelogTopic == "" {
			continue
		}
		for _, w := range s.overlay.Pending() {
			rec := &kgo.Record{
				Topic:     s.spec.ChangelogTopic,
				Partition: t.cfg.ID.Partition,
				Key:       w.Key,
				Timestamp: ts,
			}
			if !w.Delete {
				rec.Value = w.Value
				if s.spec.Timestamped && len(w.Value) >= 8 {
					if vts := int64(binary.BigEndian.Uint64(w.Value)); vts >= 0 {
						rec.Timestamp = time.UnixMilli(vts)
					}
				}
			}
			t.cfg.ChangelogOutput(rec)
			n++
		}
	}
	return n
}

// CommitStores applies every overlay to its backend. The driver calls it
// once the writes are durable in Kafka (the changelog records and input
// offsets committed). next gives, for a logged store, the changelog offset
// after its committed writes, if known: a backend that records offsets
// (state.OffsetRecorder) gets the writes and the offset in one synced
// batch. Other backends get an Apply.
//
// The batch is synced although a crash that lost it would cost only a
// tail restore: with unsynced writes, Pebble meets a full disk when it
// rotates its write-ahead log, where it panics with its own mutex
// released and the process dies ("unlock of unlocked mutex"), instead of
// at the commit's sync, where the store turns the failure into an error
// (e2e TestFullStateDiskFailsAndRecovers).
func (t *Task) CommitStores(next func(store string) (int64, bool)) error {
	for _, name := range t.order {
		s := t.stores[name]
		var err error
		if off, ok := next(name); ok && s.spec.ChangelogTopic != "" {
			err = s.overlay.CommitAt(off, true)
		} else {
			err = s.overlay.Commit()
		}
		if err != nil {
			return fmt.Errorf("task %s: store %q: apply committed writes: %w", t.cfg.ID, name, err)
		}
	}
	return nil
}

// AbortStores discards the writes of the open commit interval. The driver
// calls it when the commit failed and input will be re-read.
func (t *Task) AbortStores() {
	for _, name := range t.order {
		t.stores[name].overlay.Discard()
	}
}

// StoreNames lists the task's stores in Spec order.
func (t *Task) StoreNames() []string { return append([]string(nil), t.order...) }

// TypedStore returns the typed view of a store (for tests and queries).
func (t *Task) TypedStore(name string) (any, bool) {
	s, ok := t.stores[name]
	if !ok {
		return nil, false
	}
	return s.typed, true
}
