package pebblestore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/eddystream/eddy/state"
)

// The key layout of a store. Every key in the Pebble DB starts with a tag
// byte: the Backend's keys follow userTag, so that the store's own
// metadata, under metaTag, can never collide with them, and sorts before
// them. Keys keep bytes.Compare order within the user space.
const (
	metaTag byte = 0x00
	userTag byte = 0x01
)

var (
	// formatKey holds formatVersion, written when the store is created.
	// A store without it was written before the key layout had tags (its
	// keys are the user's, bare), and must not be read: Open reports it as
	// corrupt, so that the engine wipes and restores it.
	formatKey = []byte{metaTag, 'f', 'o', 'r', 'm', 'a', 't'}
	// offsetKey holds the changelog offset recorded by ApplyAt, as 8 bytes
	// big-endian.
	offsetKey = []byte{metaTag, 'o', 'f', 'f', 's', 'e', 't'}
)

// formatVersion is the value of formatKey: version 2 of eddy's layout, the
// first with tagged keys and a recorded offset.
const formatVersion = "eddy-pebblestore-2"

var (
	userLower = []byte{userTag}     // the least key of the user space
	userUpper = []byte{userTag + 1} // above every key of the user space
)

// appendUserKey appends the DB key of the user's key to dst.
func appendUserKey(dst, key []byte) []byte {
	return append(append(dst, userTag), key...)
}

// userBounds returns the DB bounds of the user range [start, end); nil
// bounds are the ends of the user space. The results are new slices.
func userBounds(start, end []byte) (lower, upper []byte) {
	lower, upper = userLower, userUpper
	if start != nil {
		lower = appendUserKey(nil, start)
	}
	if end != nil {
		upper = appendUserKey(nil, end)
	}
	return lower, upper
}

// metaEntries estimates how many metadata keys an sstable with the key
// span [smallest, largest] holds: the format key if the table starts with
// it (no key sorts below it), and the offset key if one was ever recorded
// and the span covers it. Each version of the offset key counts as an
// entry until compactions drop the older ones, so the figure is an
// estimate, as ApproximateCount is.
func metaEntries(smallest, largest []byte, recorded bool) int64 {
	var n int64
	if bytes.Equal(smallest, formatKey) {
		n++
	}
	if recorded && bytes.Compare(smallest, offsetKey) <= 0 && bytes.Compare(offsetKey, largest) <= 0 {
		n++
	}
	return n
}

// checkFormat is called by open: a new store gets the format marker,
// durably, before anything else is written to it; an existing one must
// have it. It reports whether the store has a recorded offset.
func checkFormat(db *pebble.DB, dir string, existing bool) (recorded bool, _ error) {
	if !existing {
		if err := db.Set(formatKey, []byte(formatVersion), pebble.Sync); err != nil {
			return false, fmt.Errorf("pebblestore: open %s: write the format marker: %w", dir, err)
		}
		return false, nil
	}
	v, closer, err := db.Get(formatKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, fmt.Errorf("pebblestore: open %s: %w: the store has no format marker (it was written by an eddy before the layout of %s, or its first write was lost)", dir, state.ErrCorruptStore, formatVersion)
	}
	if err != nil {
		return false, openError(dir, err)
	}
	defer closer.Close()
	if string(v) != formatVersion {
		return false, fmt.Errorf("pebblestore: open %s: %w: the store's format is %q, not %q", dir, state.ErrCorruptStore, v, formatVersion)
	}
	_, closer2, err := db.Get(offsetKey)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		return false, nil
	case err != nil:
		return false, openError(dir, err)
	}
	return true, closer2.Close()
}

// ApplyAt implements state.OffsetRecorder: it commits the batch and the
// offset in one Pebble batch, synced if sync is set. Without sync the
// batch is durable after the next Sync, Apply or synced ApplyAt.
func (s *store) ApplyAt(batch []state.Write, next int64, sync bool) error {
	if next < 0 {
		return fmt.Errorf("pebblestore: apply in %s: the offset %d is negative", s.dir, next)
	}
	opts := pebble.NoSync
	if sync {
		opts = pebble.Sync
	}
	if err := s.apply(batch, opts, &next); err != nil {
		return err
	}
	s.recorded = true
	if !sync {
		s.unsynced = true
	}
	return nil
}

// RecordedOffset implements state.OffsetRecorder.
func (s *store) RecordedOffset() (_ int64, _ bool, err error) {
	if err := s.usable(); err != nil {
		return 0, false, err
	}
	defer s.recoverFatal("read the recorded offset", &err)
	v, closer, err := s.db.Get(offsetKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, s.readError("read the recorded offset", err)
	}
	s.recorded = true
	defer closer.Close()
	if len(v) != 8 || int64(binary.BigEndian.Uint64(v)) < 0 {
		return 0, false, fmt.Errorf("pebblestore: read the recorded offset in %s: %w: the value is %x", s.dir, state.ErrCorruptStore, v)
	}
	return int64(binary.BigEndian.Uint64(v)), true, nil
}
