package task

import (
	"fmt"
	"sync"

	"github.com/eddystream/eddy/state"
)

// GlobalSpec describes one global store: a full copy of every partition
// of Topic, kept by every instance, outside every task (Kafka Streams'
// global state store behind a GlobalKTable). The store holds the topic's
// records as they are: key bytes to value bytes, a record with a nil
// value deleting its key. It has no changelog: the topic is its log.
type GlobalSpec struct {
	Name string
	// Topic is the topic the store copies (its full name).
	Topic string
	// Supplier makes the store's backend; nil means the driver's default.
	Supplier state.BackendSupplier
	// Typed returns the typed view processors read, over raw (a
	// GlobalStore).
	Typed func(raw state.RawStore) any
}

// GlobalsOf returns the global stores of a *topology.Topology for an
// application id, in declaration order. Package topology sets it in its
// init, as SpecsOf.
var GlobalsOf func(top any, appID string) []GlobalSpec

// GlobalStore is a global store's backend as every task reads it: one
// goroutine (the driver's updater) applies the topic's records with
// Apply, while the processors of every task read through the
// state.RawStore methods, concurrently. A mutex serializes the backend's
// calls (a Backend need not be safe for concurrent use): a Get sees every
// batch applied before it, whatever the reading task has committed, as in
// Kafka Streams, where a global store is read as it is. Range takes a
// ReadView under the mutex and iterates it without it, so a scan sees the
// store as it was when it began. Writes through the state.RawStore
// methods panic: a global store is read-only to processors, and the
// task turns the panic into the processing error of the record.
type GlobalStore struct {
	name string
	mu   struct {
		sync.Mutex
		b state.Backend
	}
}

// NewGlobalStore returns the global store name over b. The caller keeps
// b and closes it after the last reader is gone.
func NewGlobalStore(name string, b state.Backend) *GlobalStore {
	g := &GlobalStore{name: name}
	g.mu.b = b
	return g
}

// Apply writes a batch of the topic's records to the backend.
func (g *GlobalStore) Apply(batch []state.Write) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.mu.b.Apply(batch)
}

// Get returns a copy of the value stored under key.
func (g *GlobalStore) Get(key []byte) ([]byte, bool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	v, ok, err := g.mu.b.Get(key)
	if err != nil || !ok {
		return nil, ok, err
	}
	// The backend's slice is valid only until its next write, which the
	// updater may make as soon as the mutex is released.
	return append(make([]byte, 0, len(v)), v...), true, nil
}

// Range iterates [start, end) of a read view taken now; closing the
// iterator closes the view.
func (g *GlobalStore) Range(start, end []byte) (state.Iterator, error) {
	g.mu.Lock()
	view, err := g.mu.b.ReadView()
	g.mu.Unlock()
	if err != nil {
		return nil, err
	}
	it, err := view.Range(start, end)
	if err != nil {
		return nil, fmt.Errorf("global store %q: %w", g.name, closeAfter(err, view))
	}
	return &viewIterator{Iterator: it, view: view}, nil
}

func closeAfter(err error, view state.ReadView) error {
	if cerr := view.Close(); cerr != nil {
		return fmt.Errorf("%w (closing the view: %v)", err, cerr)
	}
	return err
}

// Put panics: see GlobalStore.
func (g *GlobalStore) Put(key, value []byte) { g.readOnly() }

// Delete panics: see GlobalStore.
func (g *GlobalStore) Delete(key []byte) { g.readOnly() }

// DeleteRange panics: see GlobalStore.
func (g *GlobalStore) DeleteRange(start, end []byte) { g.readOnly() }

func (g *GlobalStore) readOnly() {
	panic(fmt.Sprintf("global store %q is read-only: only the records of its topic change it", g.name))
}

// viewIterator is an iterator over a read view that closes the view with
// it.
type viewIterator struct {
	state.Iterator
	view state.ReadView
}

func (i *viewIterator) Close() error {
	err := i.Iterator.Close()
	if cerr := i.view.Close(); err == nil {
		err = cerr
	}
	return err
}
