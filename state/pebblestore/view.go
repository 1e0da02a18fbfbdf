package pebblestore

import (
	"bytes"
	"errors"
	"sync"

	"github.com/cockroachdb/pebble/v2"

	"github.com/eddystream/eddy/state"
)

// ReadView returns a view on a Pebble snapshot, which sees the writes
// committed before it and pins the memtables and sstables that hold them
// until the view is closed. Pebble's snapshots are safe to read from any
// goroutine while the DB is written.
//
// The store closes its open views in Close, possibly while another
// goroutine is using one, so each view has a mutex that its calls, and
// those of its iterators, hold while they touch Pebble; and the view's Get
// and iterators copy what they return, which must outlive the snapshot.
func (s *store) ReadView() (_ state.ReadView, err error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	defer s.recoverFatal("read view", &err)
	v := &view{store: s, snap: s.db.NewSnapshot(), iters: map[*viewIter]struct{}{}}
	s.views.Lock()
	s.views.set[v] = struct{}{}
	s.views.Unlock()
	return v, nil
}

// closeViews closes every open view of the store, as Close must before it
// closes the DB: Pebble reports snapshots still open then as leaked.
func (s *store) closeViews() error {
	s.views.Lock()
	views := make([]*view, 0, len(s.views.set))
	for v := range s.views.set {
		views = append(views, v)
	}
	clear(s.views.set)
	s.views.Unlock()
	var errs []error
	for _, v := range views {
		errs = append(errs, v.stop(state.ErrClosed))
	}
	return errors.Join(errs...)
}

// view is the ReadView of a store.
type view struct {
	store *store
	mu    sync.Mutex
	snap  *pebble.Snapshot // nil once stopped
	kbuf  []byte           // the DB key of Get's key
	iters map[*viewIter]struct{}
}

// usableLocked returns the error a call on the view fails with, if any.
func (v *view) usableLocked() error {
	if v.snap == nil {
		return state.ErrClosed
	}
	if err := v.store.broken.Load(); err != nil {
		return *err
	}
	return nil
}

func (v *view) Get(key []byte) ([]byte, bool, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.usableLocked(); err != nil {
		return nil, false, err
	}
	v.kbuf = appendUserKey(v.kbuf[:0], key)
	val, closer, err := v.snap.Get(v.kbuf)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, v.store.readError("get from a read view", err)
	}
	out := bytes.Clone(val)
	if out == nil {
		out = []byte{}
	}
	if err := closer.Close(); err != nil {
		return nil, false, v.store.readError("get from a read view", err)
	}
	return out, true, nil
}

func (v *view) Range(start, end []byte) (state.Iterator, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.usableLocked(); err != nil {
		return nil, err
	}
	i := &viewIter{view: v}
	if end != nil && bytes.Compare(start, end) >= 0 {
		return i, nil // empty: i.it is nil
	}
	lower, upper := userBounds(start, end)
	it, err := v.snap.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, v.store.readError("range over a read view", err)
	}
	i.it = it
	v.iters[i] = struct{}{}
	return i, nil
}

// Close closes the view's iterators and releases its snapshot.
func (v *view) Close() error {
	err := v.stop(nil)
	v.store.views.Lock()
	delete(v.store.views.set, v)
	v.store.views.Unlock()
	return err
}

// stop closes the view's iterators and snapshot, if still open; cause
// becomes the error of the iterators it stops.
func (v *view) stop(cause error) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.snap == nil {
		return nil
	}
	var errs []error
	for i := range v.iters {
		errs = append(errs, i.stopLocked(cause))
	}
	errs = append(errs, v.snap.Close())
	v.snap = nil
	if err := errors.Join(errs...); err != nil {
		return v.store.readError("close a read view", err)
	}
	return nil
}

// viewIter is the Iterator of a view. It copies each key and value out of
// Pebble, because the view may be closed, and its Pebble iterator with it,
// by another goroutine between Next and Key.
type viewIter struct {
	view       *view
	it         *pebble.Iterator // nil once ended
	started    bool
	key, value []byte
	err        error
}

func (i *viewIter) Next() bool {
	i.view.mu.Lock()
	defer i.view.mu.Unlock()
	if i.it == nil {
		return false
	}
	var ok bool
	if i.started {
		ok = i.it.Next()
	} else {
		ok, i.started = i.it.First(), true
	}
	if ok {
		v, err := i.it.ValueAndErr()
		if err == nil {
			i.key, i.value = append(i.key[:0], i.it.Key()[1:]...), append(i.value[:0], v...) // the key without its userTag
			return true
		}
		i.err = i.view.store.readError("iterate a read view", err)
	} else if err := i.it.Error(); err != nil {
		i.err = i.view.store.readError("iterate a read view", err)
	}
	if err := i.stopLocked(nil); err != nil && i.err == nil {
		i.err = err
	}
	return false
}

// Key and Value return the copies Next made. Only Next, on the reader's
// goroutine, writes them: stopLocked, which the store's Close calls from
// the owner's, leaves them alone.
func (i *viewIter) Key() []byte   { return i.key }
func (i *viewIter) Value() []byte { return i.value }

func (i *viewIter) Err() error {
	i.view.mu.Lock()
	defer i.view.mu.Unlock()
	return i.err
}

func (i *viewIter) Close() error {
	i.view.mu.Lock()
	defer i.view.mu.Unlock()
	return i.stopLocked(nil)
}

// stopLocked closes the Pebble iterator, if still open, and records cause
// as the iterator's error unless it has one.
func (i *viewIter) stopLocked(cause error) error {
	if i.it == nil {
		return nil
	}
	err := i.it.Close()
	i.it = nil
	delete(i.view.iters, i)
	if i.err == nil {
		i.err = cause
	}
	if err != nil {
		return i.view.store.readError("close a read view's iterator", err)
	}
	return nil
}
