package state

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/window"
)

// The byte layout of window and session stores over a Backend.
//
// A window store keeps one record per key and window. Its backend key is
//
//	segment (8 bytes) | escaped key | window start (8 bytes)
//
// and a session store's is
//
//	segment (8 bytes) | escaped key | session end (8 bytes) | session start (8 bytes)
//
// The segment is the window start (a session's end) divided by the
// store's segment interval, so that every record of a span of time lies in
// one contiguous range of the backend, and a span that has expired is
// dropped with one range deletion, however many keys it holds (Kafka
// Streams drops a whole RocksDB segment for the same reason). Times are
// milliseconds since the epoch, big-endian with the sign bit flipped, so
// that they order as numbers.
//
// The key is escaped so that no key's bytes are a prefix of another's in
// the layout: every 0x00 byte becomes 0x00 0xFF, and the key ends with
// 0x00 0x01. The escaping keeps the order of keys, so that within a
// segment the records of one key are contiguous and ordered by time, and
// keys are in byte order.
//
// The changelog of such a store carries the same keys (the changelog is a
// copy of the backend). The segment interval is derived from the store's
// retention; a store whose retention changes must be reset, as one whose
// serdes change (documented on WindowStoreConfig).

const (
	escapeByte = 0x00
	escapedNul = 0xFF
	keyEnd     = 0x01
)

// appendTime appends ms in its order-preserving encoding.
func appendTime(b []byte, ms int64) []byte {
	return binary.BigEndian.AppendUint64(b, uint64(ms)^(1<<63))
}

// readTime decodes 8 bytes written by appendTime.
func readTime(b []byte) int64 { return int64(binary.BigEndian.Uint64(b) ^ (1 << 63)) }

// appendEscaped appends key, escaped and terminated.
func appendEscaped(b, key []byte) []byte {
	for _, c := range key {
		if c == escapeByte {
			b = append(b, escapeByte, escapedNul)
			continue
		}
		b = append(b, c)
	}
	return append(b, escapeByte, keyEnd)
}

// errBadStoreKey is a backend key that is not in a window or session
// store's layout.
var errBadStoreKey = errors.New("key is not in the store's layout")

// splitEscaped decodes the escaped key at the start of b and returns it
// with the rest of b.
func splitEscaped(b []byte) (key, rest []byte, err error) {
	key = make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] != escapeByte {
			key = append(key, b[i])
			continue
		}
		if i+1 >= len(b) {
			return nil, nil, errBadStoreKey
		}
		switch b[i+1] {
		case escapedNul:
			key = append(key, escapeByte)
			i++
		case keyEnd:
			return key, b[i+2:], nil
		default:
			return nil, nil, errBadStoreKey
		}
	}
	return nil, nil, errBadStoreKey
}

// segments computes the segments of a window or session store: which
// segment a time falls in, and which have expired.
type segments struct {
	interval  int64 // milliseconds
	retention int64 // milliseconds
}

// segmentInterval is Kafka Streams' default for a segmented store: half
// the retention, and at least a minute.
func segmentInterval(retention time.Duration) int64 {
	return max(retention.Milliseconds()/2, 60_000)
}

// of returns the segment of time ms.
func (s segments) of(ms int64) int64 {
	if ms < 0 {
		return (ms+1)/s.interval - 1 // floor for negative times
	}
	return ms / s.interval
}

// prefix returns the first bytes of every key in segment seg.
func (s segments) prefix(seg int64) []byte { return appendTime(make([]byte, 0, 8), seg) }

// liveFrom returns the earliest time a store that has seen stream time
// observed still keeps: Kafka Streams' observedStreamTime - retention + 1.
func (s segments) liveFrom(observed int64) int64 {
	if observed == noTime {
		return noTime
	}
	return observed - s.retention + 1
}

// noTime is "no stream time observed yet".
const noTime = int64(-1 << 63)

// segmentKey returns the backend key of key (unescaped) at time ms in
// segment seg.
func segmentKey(seg int64, key []byte, ms int64) []byte {
	b := make([]byte, 0, 8+len(key)+2+8)
	b = appendTime(b, seg)
	b = appendEscaped(b, key)
	return appendTime(b, ms)
}

// segmentKeyEnd returns the end (exclusive) of every backend key of key
// in segment seg.
func segmentKeyEnd(seg int64, key []byte) []byte {
	b := make([]byte, 0, 8+len(key)+2)
	b = appendTime(b, seg)
	return prefixEnd(appendEscaped(b, key))
}

// nextSegment returns the first segment at or after from, and at or
// before last, that holds a key.
func nextSegment(raw RawStore, s segments, from, last int64) (int64, bool, error) {
	if from > last {
		return 0, false, nil
	}
	it, err := raw.Range(s.prefix(from), prefixEnd(s.prefix(last)))
	if err != nil {
		return 0, false, err
	}
	defer it.Close()
	if !it.Next() {
		return 0, false, it.Err()
	}
	if len(it.Key()) < 8 {
		return 0, false, errBadStoreKey
	}
	return readTime(it.Key()), true, nil
}

// metaSegment holds a store's metadata (WindowStoreMetadata): the last
// segment there is, which no time reaches (segment intervals are a minute
// at least), so that it is never iterated, expired or taken for the
// stream time.
const metaSegment = int64(1<<63 - 1)

// lastSegment returns the latest segment that holds data.
func lastSegment(raw RawStore) (int64, bool, error) {
	const lowest, highest = noTime, metaSegment - 1
	s := segments{interval: 1}
	seg, ok, err := nextSegment(raw, s, lowest, highest)
	for ok && err == nil && seg < highest {
		var next int64
		var more bool
		next, more, err = nextSegment(raw, s, seg+1, highest)
		if !more {
			break
		}
		seg = next
	}
	return seg, ok, err
}

// dropExpired drops, with one range deletion, the segments that expire
// once the stream time is now: those before the segment of now -
// retention, as Kafka Streams' segments do. dropped is the first segment
// not dropped yet (noTime: unknown, so everything before is dropped).
func dropExpired(raw RawStore, s segments, now int64, dropped *int64) error {
	if now == noTime {
		return nil
	}
	minLive := s.of(now - s.retention)
	if *dropped != noTime && minLive <= *dropped {
		return nil
	}
	var from []byte
	if *dropped != noTime {
		from = s.prefix(*dropped)
	}
	raw.DeleteRange(from, s.prefix(minLive))
	*dropped = minLive
	return nil
}

// segmentIter walks the windows of a window or session store segment by
// segment, skipping segments that hold nothing with one seek each.
type segmentIter[K, V any] struct {
	raw RawStore
	seg segments
	// next is the first segment not visited yet; last the last to visit.
	next, last int64
	// within returns the range of one segment to walk (nil: all of it).
	within func(seg int64) (start, end []byte)
	// decode turns a backend record into a window and value; ok is false
	// for a record outside the iteration's range.
	decode func(key, value []byte) (window.Windowed[K], V, bool, error)

	cur  Iterator
	k    window.Windowed[K]
	v    V
	err  error
	done bool
}

func (it *segmentIter[K, V]) Next() bool {
	for !it.done && it.err == nil {
		if it.cur != nil {
			for it.cur.Next() {
				k, v, ok, err := it.decode(it.cur.Key(), it.cur.Value())
				if err != nil {
					it.err = err
					return false
				}
				if ok {
					it.k, it.v = k, v
					return true
				}
			}
			if it.err = it.cur.Err(); it.err != nil {
				return false
			}
			it.cur.Close()
			it.cur = nil
		}
		seg, ok, err := nextSegment(it.raw, it.seg, it.next, it.last)
		if err != nil || !ok {
			it.err, it.done = err, true
			return false
		}
		it.next = seg + 1
		start, end := it.seg.prefix(seg), it.seg.prefix(seg+1)
		if it.within != nil {
			start, end = it.within(seg)
		}
		if it.cur, it.err = it.raw.Range(start, end); it.err != nil {
			return false
		}
	}
	return false
}

func (it *segmentIter[K, V]) Key() window.Windowed[K] { return it.k }
func (it *segmentIter[K, V]) Value() V                { return it.v }
func (it *segmentIter[K, V]) Err() error              { return it.err }

func (it *segmentIter[K, V]) Close() error {
	it.done = true
	if it.cur != nil {
		err := it.cur.Close()
		it.cur = nil
		return err
	}
	return nil
}

// segmented is what window and session stores share: their backend, their
// segments and their stream time.
type segmented struct {
	store string
	raw   RawStore
	seg   segments
	// time is the largest segment time the store has seen (a window's
	// start, a session's end): its stream time, noTime until known (see
	// streamTime).
	time int64
	// dropped is the first segment not yet dropped (noTime: none dropped
	// by this instance).
	dropped int64
	// scanned is set once time has been read from the backend.
	scanned bool
}

func newSegmented(store string, raw RawStore, retention time.Duration) segmented {
	return segmented{
		store: store, raw: raw, time: noTime, dropped: noTime,
		seg: segments{interval: segmentInterval(retention), retention: retention.Milliseconds()},
	}
}

// streamTime returns the store's stream time. A store that has not been
// written since it was opened reads the latest segment it holds (its
// restored state) and takes that segment's first instant: a lower bound,
// so that expiry after a restart is never early, only up to a segment
// late.
func (s *segmented) streamTime() (int64, error) {
	if s.scanned {
		return s.time, nil
	}
	last, ok, err := lastSegment(s.raw)
	if err != nil {
		return noTime, fmt.Errorf("state: store %q: %w", s.store, err)
	}
	s.scanned = true
	if ok {
		s.time = max(s.time, last*s.seg.interval)
	}
	return s.time, nil
}

// observe advances the stream time to ms and drops the segments that
// expire with it.
func (s *segmented) observe(ms int64) error {
	t, err := s.streamTime()
	if err != nil {
		return err
	}
	if ms <= t {
		return nil
	}
	s.time = ms
	return dropExpired(s.raw, s.seg, s.time, &s.dropped)
}

// live reports whether time ms is still kept.
func (s *segmented) live(ms int64) (bool, error) {
	t, err := s.streamTime()
	if err != nil {
		return false, err
	}
	return ms >= s.seg.liveFrom(t), nil
}

// clamp raises from to the earliest time still kept.
func (s *segmented) clamp(from int64) (int64, error) {
	t, err := s.streamTime()
	if err != nil {
		return 0, err
	}
	return max(from, s.seg.liveFrom(t)), nil
}

// metaKey is the backend key of the metadata value named key.
func metaKey(key string) []byte {
	return append(appendTime(make([]byte, 0, 8+len(key)), metaSegment), key...)
}

func (s *segmented) metadata(key string) ([]byte, bool, error) {
	v, ok, err := s.raw.Get(metaKey(key))
	if err != nil {
		return nil, false, fmt.Errorf("state: store %q: metadata %q: %w", s.store, key, err)
	}
	return v, ok, nil
}

func (s *segmented) putMetadata(key string, value []byte) {
	if value == nil {
		value = []byte{}
	}
	s.raw.Put(metaKey(key), value)
}

// backendRaw reads a Backend as a RawStore for the probes of ExpireSegments
// (which writes through Apply, not through it).
type backendRaw struct{ Backend }

func (backendRaw) Put([]byte, []byte)         { panic("state: backendRaw is read-only") }
func (backendRaw) Delete([]byte)              { panic("state: backendRaw is read-only") }
func (backendRaw) DeleteRange([]byte, []byte) { panic("state: backendRaw is read-only") }

// ExpireSegments drops, from the backend of a window or session store
// that keeps its records for retention, the segments that have expired
// by the stream time its data shows (the first instant of its latest
// segment, a lower bound), with one range delete, and reports whether it
// dropped any. The engine calls it where data reaches a store without the
// typed store, which expires segments as it is written: after a restore
// and as a standby replica replays, so that a replica does not keep
// expired windows for as long as it stays a replica. The range delete is
// applied without an fsync where the backend allows it
// (BulkApplier.ApplyNoSync): losing it in a crash loses nothing but the
// drop.
func ExpireSegments(b Backend, retention time.Duration) (bool, error) {
	raw := backendRaw{b}
	last, ok, err := lastSegment(raw)
	if err != nil || !ok {
		return false, err
	}
	s := segments{interval: segmentInterval(retention), retention: retention.Milliseconds()}
	minLive := s.of(last*s.interval - s.retention)
	if _, any, err := nextSegment(raw, s, noTime, minLive-1); err != nil || !any {
		return false, err
	}
	batch := []Write{{Key: nil, End: s.prefix(minLive), DeleteRange: true}}
	if bulk, ok := b.(BulkApplier); ok {
		return true, bulk.ApplyNoSync(batch)
	}
	return true, b.Apply(batch)
}

// codec serializes the keys and values of a window or session store, with
// errors that name the store.
type codec[K, V any] struct {
	name   string
	topic  string
	keys   serde.Serde[K]
	values serde.Serde[V]
}

func (c codec[K, V]) key(k K) ([]byte, error) {
	b, err := c.keys.Serialize(c.topic, k)
	if err != nil {
		return nil, fmt.Errorf("state: store %q: serialize key: %w", c.name, err)
	}
	return b, nil
}

// value serializes v, never as nil: a nil value would be a tombstone in the
// changelog.
func (c codec[K, V]) value(v V) ([]byte, error) {
	b, err := c.values.Serialize(c.topic, v)
	if err != nil {
		return nil, fmt.Errorf("state: store %q: serialize value: %w", c.name, err)
	}
	if b == nil {
		b = []byte{}
	}
	return b, nil
}

// decode deserializes a stored key and value.
func (c codec[K, V]) decode(key, value []byte) (K, V, error) {
	var v V
	k, err := c.keys.Deserialize(c.topic, key)
	if err != nil {
		return k, v, fmt.Errorf("state: store %q: deserialize key: %w", c.name, err)
	}
	if v, err = c.values.Deserialize(c.topic, value); err != nil {
		return k, v, fmt.Errorf("state: store %q: deserialize value: %w", c.name, err)
	}
	return k, v, nil
}

// decodeValue deserializes a stored value alone.
func (c codec[K, V]) decodeValue(value []byte) (V, error) {
	v, err := c.values.Deserialize(c.topic, value)
	if err != nil {
		return v, fmt.Errorf("state: store %q: deserialize value: %w", c.name, err)
	}
	return v, nil
}
