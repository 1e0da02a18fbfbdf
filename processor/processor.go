package processor

import (
	"time"
)

// Header is a Kafka record header.
type Header struct {
	Key   string
	Value []byte
}

// Record is one key-value pair flowing through a topology, with the
// timestamp that drives stream time and the headers it carries. Forwarding
// a record passes it by value; a processor that changes Headers must copy
// the slice first if it forwards the same record more than once.
//
// A key or value may be null, as in Kafka (see the package doc): test it
// with KeyIsNull and ValueIsNull.
type Record[K, V any] struct {
	Key       K
	Value     V
	Timestamp time.Time
	Headers   []Header
	// NullKey marks a null key (the Kafka record had none), which is not
	// the same as an empty one; Key then holds K's zero value. Sources set
	// it, and a record forwarded as it is keeps it. Set it to forward a
	// null key of a type that has no nil (a string, a number, a struct).
	NullKey bool
	// NullValue marks a null value (a tombstone), which is not the same
	// as an empty one; Value then holds V's zero value. It works as
	// NullKey does.
	NullValue bool
}

// Origin says where the record being processed was read from. Records
// created in punctuators have no origin.
type Origin struct {
	Topic     string
	Partition int32
	Offset    int64
}

// Processor is a node of a topology written against the low-level API.
//
// Lifecycle: Init once when the task starts (after its stores are
// restored), then Process for every record and any scheduled punctuators,
// then Close once when the task is closed (revoked, or the app stops).
// Returning an error from any of them stops the task; the engine reports it
// through its processing-error handling.
type Processor[KIn, VIn, KOut, VOut any] interface {
	Init(ctx Context[KOut, VOut]) error
	Process(rec Record[KIn, VIn]) error
	Close() error
}

// Supplier returns a new Processor. The engine calls it once per task: it
// must return a fresh instance each time, never a shared one.
type Supplier[KIn, VIn, KOut, VOut any] func() Processor[KIn, VIn, KOut, VOut]

// Context is what a processor uses to talk to the rest of its task.
// It is valid from Init until Close returns and is not safe for use by
// other goroutines.
type Context[KOut, VOut any] interface {
	// ApplicationID is the application id the app runs under.
	ApplicationID() string
	// TaskID is the task this processor instance belongs to.
	TaskID() TaskID
	// Forward sends rec to every child of this processor, depth first, and
	// returns the first error a child returns.
	Forward(rec Record[KOut, VOut]) error
	// ForwardTo sends rec to the named child only. Naming a node that is not
	// a child is an error.
	ForwardTo(child string, rec Record[KOut, VOut]) error
	// Store returns the named store, which must have been connected to this
	// processor when the topology was built. Use the typed accessors of the
	// state package (for example state.KeyValue) to get a typed store.
	Store(name string) (any, error)
	// Schedule calls fn every interval, on stream time or on wall-clock
	// time. Stream-time punctuators fire when a record advances the task's
	// stream time past the next due time; wall-clock punctuators fire when
	// the driver's ticks do.
	Schedule(interval time.Duration, typ PunctuationType, fn Punctuator) (Cancellable, error)
	// Origin is the topic, partition and offset of the input record being
	// processed; ok is false inside a punctuator.
	Origin() (o Origin, ok bool)
	// StreamTime is the largest record timestamp the task has processed.
	StreamTime() time.Time
	// WallClock is the system time as the task's driver reads it: the
	// clock in the engine, the test driver's clock in eddytest (Kafka
	// Streams' currentSystemTimeMs). Use it, not time.Now, for decisions
	// a test must be able to drive.
	WallClock() time.Time
}

// PunctuationType says which clock drives a punctuator.
type PunctuationType int

const (
	// StreamTime punctuators are driven by record timestamps. They do not
	// fire while no records arrive.
	StreamTime PunctuationType = iota
	// WallClockTime punctuators are driven by the system clock, as read by
	// the engine's loop (or advanced by hand in eddytest).
	WallClockTime
)

func (t PunctuationType) String() string {
	switch t {
	case StreamTime:
		return "stream-time"
	case WallClockTime:
		return "wall-clock-time"
	}
	return "unknown"
}

// Punctuator is a scheduled callback. now is the stream time or wall-clock
// time at which it fires.
type Punctuator func(now time.Time) error

// Cancellable cancels a scheduled punctuator.
type Cancellable interface {
	Cancel()
}

// Func adapts a function to a Processor with no-op Init and Close; the
// function receives the Context given to Init.
func Func[KIn, VIn, KOut, VOut any](fn func(ctx Context[KOut, VOut], rec Record[KIn, VIn]) error) Supplier[KIn, VIn, KOut, VOut] {
	return func() Processor[KIn, VIn, KOut, VOut] { return &funcProcessor[KIn, VIn, KOut, VOut]{fn: fn} }
}

type funcProcessor[KIn, VIn, KOut, VOut any] struct {
	ctx Context[KOut, VOut]
	fn  func(ctx Context[KOut, VOut], rec Record[KIn, VIn]) error
}

func (p *funcProcessor[KIn, VIn, KOut, VOut]) Init(ctx Context[KOut, VOut]) error {
	p.ctx = ctx
	return nil
}

func (p *funcProcessor[KIn, VIn, KOut, VOut]) Process(rec Record[KIn, VIn]) error {
	return p.fn(p.ctx, rec)
}

func (p *funcProcessor[KIn, VIn, KOut, VOut]) Close() error { return nil }
