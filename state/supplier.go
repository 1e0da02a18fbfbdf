package state

import (
	"fmt"
	"log/slog"
)

// StoreKind is the shape of a store: what its keys mean and which changelog
// settings it needs. Key-value stores are the only kind today; window and
// session stores come next, and a versioned key-value kind (Kafka Streams'
// KIP-889) after them. A kind is a property of a store's declaration, not
// of its backend: every kind is laid out over the ordered byte map of a
// Backend.
type StoreKind int

const (
	// KindKeyValue is an ordered map from keys to their latest values, the
	// store behind state.KeyValueStore and the DSL's tables and
	// aggregations. Its changelog is compacted.
	KindKeyValue StoreKind = iota + 1
	// KindWindow keeps values per key and time window (WindowStore), the
	// store behind windowed aggregations. Its records expire with stream
	// time (its retention), and its changelog is compacted and deleted
	// after the store's retention plus a margin.
	KindWindow
	// KindSession keeps values per key and session (SessionStore), the
	// store behind session-windowed aggregations; it expires as a window
	// store does.
	KindSession
)

// String returns the kind's name, as logs and errors show it.
func (k StoreKind) String() string {
	switch k {
	case KindKeyValue:
		return "key-value"
	case KindWindow:
		return "window"
	case KindSession:
		return "session"
	}
	return fmt.Sprintf("StoreKind(%d)", int(k))
}

// BackendSupplier makes the Backends of one kind of storage, one per store
// of each task, as Kafka Streams' KeyValueBytesStoreSupplier does. The
// engine calls it for every store: it opens a backend when a task (active
// or standby) starts, and destroys the store's directory when the data in
// it cannot be trusted (it is corrupt, or no checkpoint vouches for it),
// before restoring the store from its changelog.
//
// A supplier is shared by every task of a process, and the engine calls it
// from several goroutines at once, so it must be safe for concurrent use.
// Each Backend it returns is used by one goroutine at a time, as Backend
// documents.
//
// Use InMemory for stores kept in memory, pebblestore.NewSupplier for
// stores on disk, or implement the interface for storage of your own; the
// conformance suite in package statetest checks a Backend against the
// contract the engine relies on.
type BackendSupplier interface {
	// Name names the kind of backend ("memory", "pebble", ...) in logs and
	// metrics.
	Name() string
	// Persistent reports whether the data of a backend survives its Close,
	// in the directory given to Open, so that the engine may keep it and
	// restore only the changelog's tail from a checkpoint. A supplier that
	// is not persistent has its stores restored in full whenever a task
	// opens them.
	Persistent() bool
	// Open opens the backend of one store in dir, a directory that belongs
	// to the store alone (Open creates it if it is missing; a supplier that
	// is not persistent may ignore it). log receives the backend's own
	// messages. Open fails with an error wrapping ErrCorruptStore when what
	// it finds in dir cannot be trusted; the engine then calls Destroy and
	// Open again.
	Open(dir string, log *slog.Logger) (Backend, error)
	// Destroy removes what Open would find in dir, so that the next Open
	// starts empty. A dir that does not exist is not an error. The engine
	// never destroys a store it has open.
	Destroy(dir string) error
}

// InMemory returns the supplier of in-memory backends (see
// NewMemoryBackend). Nothing survives Close: a task restores its in-memory
// stores in full from their changelogs whenever it starts, as Kafka Streams
// does for Stores.inMemoryKeyValueStore.
func InMemory() BackendSupplier { return memorySupplier{} }

type memorySupplier struct{}

func (memorySupplier) Name() string                               { return "memory" }
func (memorySupplier) Persistent() bool                           { return false }
func (memorySupplier) Open(string, *slog.Logger) (Backend, error) { return NewMemoryBackend(), nil }
func (memorySupplier) Destroy(string) error                       { return nil }
