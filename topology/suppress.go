package topology

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/eddystream/eddy/processor"
	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/state"
	"github.com/eddystream/eddy/window"
)

// BufferConfig bounds the buffer of a suppression, as Kafka Streams'
// Suppressed.BufferConfig. Zero values mean unbounded.
type BufferConfig struct {
	// MaxRecords bounds the number of keys buffered.
	MaxRecords int
	// MaxBytes bounds the bytes buffered: each key's serialized key and
	// values.
	MaxBytes int64
	// EmitEarlyWhenFull makes a full buffer emit its oldest records early,
	// before their time, to make room (Kafka Streams' emitEarlyWhenFull).
	// Without it a full buffer fails the task with an error that says so
	// (Kafka Streams' shutDownWhenFull). SuppressUntilWindowCloses refuses
	// it: a result emitted early is not final.
	EmitEarlyWhenFull bool
}

// ErrSuppressBufferFull is wrapped by the error of a task whose
// suppression buffer is full and configured to fail when full.
var ErrSuppressBufferFull = errors.New("topology: the suppression buffer is full")

// SuppressUntilWindowCloses holds back the updates of a windowed table and
// forwards only each window's final result, once the window has closed:
// when the stream time (the largest record timestamp the suppression has
// seen) reaches the window's end plus the grace period of the windowed
// aggregation that made the table, as Kafka Streams'
// suppress(Suppressed.untilWindowCloses(...)). The buffer keeps the latest
// update per window and is changelogged like any store, so a crash loses
// nothing and exactly-once holds; a full buffer fails the task (buf may
// bound it; EmitEarlyWhenFull is refused). Options: Named, StoreName (the
// buffer's store; default "<name>-store") and the store options.
func SuppressUntilWindowCloses[K, V any](t Table[window.Windowed[K], V], buf BufferConfig, opts ...Option) Table[window.Windowed[K], V] {
	var grace time.Duration
	if t.grace != nil {
		grace = *t.grace
	}
	n, out := suppress(t, "suppress-until-window-closes", buf, collect(opts), grace, func(k window.Windowed[K], _ int64) int64 { return k.Window.EndMs() })
	switch {
	case t.grace == nil:
		t.b.errorf(n.name, "SuppressUntilWindowCloses needs a table made by a windowed aggregation (WindowedBy, SlidingWindowedBy, SessionWindowedBy), whose grace period says when a window closes")
	case buf.EmitEarlyWhenFull:
		t.b.errorf(n.name, "SuppressUntilWindowCloses cannot emit early when its buffer is full: an early result is not final; bound the buffer without EmitEarlyWhenFull, or use SuppressUntilTimeLimit")
	}
	return out
}

// SuppressUntilTimeLimit holds back the updates of a table and forwards a
// key's latest value once limit has passed in stream time since the key's
// first update held back, as Kafka Streams'
// suppress(Suppressed.untilTimeLimit(...)): a later update replaces the
// held value without restarting the wait. Buffer, options and guarantees
// as for SuppressUntilWindowCloses; EmitEarlyWhenFull is allowed.
func SuppressUntilTimeLimit[K, V any](t Table[K, V], limit time.Duration, buf BufferConfig, opts ...Option) Table[K, V] {
	n, out := suppress(t, "suppress-until-time-limit", buf, collect(opts), limit, func(_ K, ts int64) int64 { return ts })
	if limit < 0 || limit%time.Millisecond != 0 {
		t.b.errorf(n.name, "SuppressUntilTimeLimit(%v): the limit must be a whole number of milliseconds, zero or more", limit)
	}
	return out
}

// suppress adds the buffer store and the processor of a suppression. A
// held update is due once the stream time is after past its buffer time,
// which bufferTime gives: a window's end, or the record's timestamp.
func suppress[K, V any](t Table[K, V], prefix string, buf BufferConfig, o options, after time.Duration, bufferTime func(K, int64) int64) (*node, Table[K, V]) {
	b := t.b
	name := o.name
	if name == "" {
		name = b.generatedName(prefix)
		o.name = name
	}
	store := o.store
	if store == "" {
		store = name + "-store"
	}
	n := addProcessor(b, prefix, o, []*node{t.n}, []string{store}, func() processor.Processor[K, change[V], K, change[V]] {
		return &suppressProcessor[K, V]{store: store, buf: buf, after: after.Milliseconds(), bufferTime: bufferTime, observed: noStreamTime}
	})
	if buf.MaxRecords < 0 || buf.MaxBytes < 0 {
		b.errorf(n.name, "the buffer bounds must not be negative")
	}
	if t.keys == nil || t.values == nil {
		b.errorf(n.name, "a suppression's buffer needs the table's key and value serdes")
	} else {
		keys, values := t.keys, t.values
		b.declareStore(store, o, func(raw state.RawStore, topic string) any {
			return &suppressBuffer[K, V]{raw: raw, topic: topic, keys: keys, values: values}
		})
	}
	n.detail = fmt.Sprintf("buffer: %+v", buf)
	// The suppression forwards old values: the first held update's.
	return n, Table[K, V]{b: b, n: n, keys: t.keys, values: t.values, get: t.getter(), grace: t.grace}
}

// suppressProcessor is Kafka Streams' KTableSuppressProcessor: updates go
// into the buffer, keyed by key, keeping the time of the first; after each
// record, every held update whose time is at or before the stream time
// minus the wait is forwarded, oldest first.
type suppressProcessor[K, V any] struct {
	store      string
	buf        BufferConfig
	after      int64 // the wait, in ms
	bufferTime func(K, int64) int64
	ctx        processor.Context[K, change[V]]
	b          *suppressBuffer[K, V]
	observed   int64
}

func (p *suppressProcessor[K, V]) Init(ctx processor.Context[K, change[V]]) error {
	s, err := ctx.Store(p.store)
	if err != nil {
		return err
	}
	b, ok := s.(*suppressBuffer[K, V])
	if !ok {
		return fmt.Errorf("store %q is a %T, not a suppression buffer", p.store, s)
	}
	if err := b.load(); err != nil {
		return err
	}
	p.ctx, p.b = ctx, b
	return nil
}

func (p *suppressProcessor[K, V]) Process(r processor.Record[K, change[V]]) error {
	ts := r.Timestamp.UnixMilli()
	p.observed = max(p.observed, ts)
	if err := p.b.put(r.Key, r.Value, p.bufferTime(r.Key, ts), ts); err != nil {
		return err
	}
	// Evict what is due, then, if the buffer is over its bounds, the
	// oldest early or fail.
	if err := p.b.evict(p.observed-p.after, p.emit); err != nil {
		return err
	}
	for p.over() {
		if !p.buf.EmitEarlyWhenFull {
			return fmt.Errorf("%w: %d records, %d bytes, bounds %d records and %d bytes (raise them, or suppress with EmitEarlyWhenFull)",
				ErrSuppressBufferFull, p.b.count, p.b.bytes, p.buf.MaxRecords, p.buf.MaxBytes)
		}
		if err := p.b.evictOldest(p.emit); err != nil {
			return err
		}
	}
	return nil
}

func (p *suppressProcessor[K, V]) over() bool {
	return p.buf.MaxRecords > 0 && p.b.count > p.buf.MaxRecords || p.buf.MaxBytes > 0 && p.b.bytes > p.buf.MaxBytes
}

func (p *suppressProcessor[K, V]) emit(k K, c change[V], ts int64) error {
	return p.ctx.Forward(processor.Record[K, change[V]]{Key: k, Value: c, Timestamp: time.UnixMilli(ts)})
}

func (p *suppressProcessor[K, V]) Close() error { return nil }

// suppressBuffer is the store of a suppression: per key, the held update
// ("k" + key -> buffer time, record time, flags, old value, new value), and
// a time index ("t" + buffer time + key -> nothing) to evict in time order.
// Both live in one key-value layout over the store's backend, so the
// changelog restores them together.
type suppressBuffer[K, V any] struct {
	raw    state.RawStore
	topic  string
	keys   serde.Serde[K]
	values serde.Serde[V]
	count  int
	bytes  int64
	loaded bool
}

const (
	heldPrefix  = 'k'
	indexPrefix = 't'
	flagDeleted = 1 << 0
	flagHasOld  = 1 << 1
)

// load counts what the buffer holds (after a restore).
func (s *suppressBuffer[K, V]) load() error {
	if s.loaded {
		return nil
	}
	it, err := s.raw.Range([]byte{heldPrefix}, []byte{heldPrefix + 1})
	if err != nil {
		return err
	}
	defer it.Close()
	for it.Next() {
		s.count++
		s.bytes += int64(len(it.Key()) + len(it.Value()))
	}
	s.loaded = true
	return it.Err()
}

func indexKey(at int64, key []byte) []byte {
	b := binary.BigEndian.AppendUint64([]byte{indexPrefix}, uint64(at)^(1<<63))
	return append(b, key...)
}

// put holds update c of key k, keeping the buffer time and the old value
// of the update already held for k, if any.
func (s *suppressBuffer[K, V]) put(k K, c change[V], at, ts int64) error {
	kb, err := s.keys.Serialize(s.topic, k)
	if err != nil {
		return fmt.Errorf("suppression buffer: serialize key: %w", err)
	}
	held := append([]byte{heldPrefix}, kb...)
	prev, had, err := s.raw.Get(held)
	if err != nil {
		return err
	}
	flags := byte(0)
	var old []byte
	if had {
		at = int64(binary.BigEndian.Uint64(prev))
		flags = prev[16] & flagHasOld
		n := binary.BigEndian.Uint32(prev[17:])
		old = append([]byte(nil), prev[21:21+n]...)
		s.count--
		s.bytes -= int64(len(held) + len(prev))
	} else if c.hasOld {
		flags |= flagHasOld
		if old, err = s.values.Serialize(s.topic, c.old); err != nil {
			return fmt.Errorf("suppression buffer: serialize value: %w", err)
		}
	}
	var nb []byte
	if c.deleted {
		flags |= flagDeleted
	} else if nb, err = s.values.Serialize(s.topic, c.value); err != nil {
		return fmt.Errorf("suppression buffer: serialize value: %w", err)
	}
	v := binary.BigEndian.AppendUint64(nil, uint64(at))
	v = binary.BigEndian.AppendUint64(v, uint64(ts))
	v = append(v, flags)
	v = binary.BigEndian.AppendUint32(v, uint32(len(old)))
	v = append(append(v, old...), nb...)
	s.raw.Put(held, v)
	if !had {
		s.raw.Put(indexKey(at, kb), []byte{})
	}
	s.count++
	s.bytes += int64(len(held) + len(v))
	return nil
}

// evict forwards and removes, oldest first, every held update whose buffer
// time is at or before until.
func (s *suppressBuffer[K, V]) evict(until int64, emit func(K, change[V], int64) error) error {
	for {
		done, err := s.evictFirst(func(at int64) bool { return at <= until }, emit)
		if err != nil || done {
			return err
		}
	}
}

// evictOldest forwards and removes the oldest held update.
func (s *suppressBuffer[K, V]) evictOldest(emit func(K, change[V], int64) error) error {
	_, err := s.evictFirst(func(int64) bool { return true }, emit)
	return err
}

// evictFirst evicts the oldest held update if due says so; done reports
// that it did not.
func (s *suppressBuffer[K, V]) evictFirst(due func(at int64) bool, emit func(K, change[V], int64) error) (done bool, err error) {
	it, err := s.raw.Range([]byte{indexPrefix}, []byte{indexPrefix + 1})
	if err != nil {
		return true, err
	}
	if !it.Next() {
		it.Close()
		return true, it.Err()
	}
	ik := append([]byte(nil), it.Key()...)
	it.Close()
	at := int64(binary.BigEndian.Uint64(ik[1:9]) ^ (1 << 63))
	if !due(at) {
		return true, nil
	}
	kb := ik[9:]
	held := append([]byte{heldPrefix}, kb...)
	v, ok, err := s.raw.Get(held)
	if err != nil {
		return true, err
	}
	s.raw.Delete(ik)
	if !ok {
		return false, nil // an index entry without its update: drop it
	}
	v = append([]byte(nil), v...)
	s.raw.Delete(held)
	s.count--
	s.bytes -= int64(len(held) + len(v))
	k, err := s.keys.Deserialize(s.topic, kb)
	if err != nil {
		return true, fmt.Errorf("suppression buffer: deserialize key: %w", err)
	}
	ts := int64(binary.BigEndian.Uint64(v[8:]))
	flags := v[16]
	n := binary.BigEndian.Uint32(v[17:])
	var c change[V]
	if flags&flagHasOld != 0 {
		c.hasOld = true
		if c.old, err = s.values.Deserialize(s.topic, v[21:21+n]); err != nil {
			return true, fmt.Errorf("suppression buffer: deserialize value: %w", err)
		}
	}
	if flags&flagDeleted != 0 {
		c.deleted = true
	} else if c.value, err = s.values.Deserialize(s.topic, v[21+n:]); err != nil {
		return true, fmt.Errorf("suppression buffer: deserialize value: %w", err)
	}
	return false, emit(k, c, ts)
}
