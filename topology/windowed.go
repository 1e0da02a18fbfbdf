package topology

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/eddystream/eddy/internal/task"
	"github.com/eddystream/eddy/processor"
	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/state"
	"github.com/eddystream/eddy/window"
)

// TimeWindowedStream is a grouped stream cut into time windows, tumbling
// or hopping (window.TimeWindows), ready for a windowed aggregation.
// Create it with WindowedBy.
type TimeWindowedStream[K, V any] struct {
	g         GroupedStream[K, V]
	windows   window.TimeWindows
	emitFinal bool
}

// WindowedBy cuts the grouped stream into the time windows w, as Kafka
// Streams' KGroupedStream.windowedBy(TimeWindows). (A function, not a
// method of GroupedStream: the windowed table's key is window.Windowed[K],
// and Go forbids a method whose result type nests its receiver's type
// parameters without end.)
func WindowedBy[K, V any](g GroupedStream[K, V], w window.TimeWindows) TimeWindowedStream[K, V] {
	return TimeWindowedStream[K, V]{g: g, windows: w}
}

// EmitOnWindowClose makes the aggregation forward each window's result
// once, when the window closes (its end plus the grace period has passed
// in stream time), instead of every update: Kafka Streams'
// emitStrategy(EmitStrategy.onWindowClose()). As there, closed windows are
// looked for at most once a second of wall-clock time, each emitted result
// carries its aggregate's timestamp, and the last window close time
// emitted is kept with the store, so that a restarted task does not emit a
// window twice.
func (ws TimeWindowedStream[K, V]) EmitOnWindowClose() TimeWindowedStream[K, V] {
	ws.emitFinal = true
	return ws
}

// Count counts the records per key and window. Records with a null key
// are dropped and counted as dropped (Kafka Streams' windowed aggregations
// drop null keys only). A record that falls only in windows that have
// closed (end plus grace at or before the stream time) is dropped as
// late: counted in eddy_dropped_records_total with the reason "late" and
// logged at debug. Options: StoreName, Named, WithRetention and the store
// options InMemory, WithBackend, WithoutLogging, WithChangelogConfig.
func (ws TimeWindowedStream[K, V]) Count(opts ...Option) Table[window.Windowed[K], int64] {
	return windowedAggregate(ws, "windowed-count", func(_ K, _ V, n int64, _ bool) int64 { return n + 1 }, serde.Int64(), opts)
}

// Reduce combines the values per key and window with fn(aggregate,
// value); the first value of a window is its initial aggregate. Drops as
// for Count; options as for Count.
func (ws TimeWindowedStream[K, V]) Reduce(fn func(agg, v V) V, opts ...Option) Table[window.Windowed[K], V] {
	return windowedAggregate(ws, "windowed-reduce", reducing[K](fn), ws.g.s.values, opts)
}

// WindowedAggregate folds the values per key and window into an aggregate
// of type VA, starting each window from init(). aggSerde stores the
// aggregate. Drops as for Count; options as for Count.
func WindowedAggregate[K, V, VA any](ws TimeWindowedStream[K, V], init func() VA, agg func(K, V, VA) VA, aggSerde serde.Serde[VA], opts ...Option) Table[window.Windowed[K], VA] {
	return windowedAggregate(ws, "windowed-aggregate", aggregating(init, agg), aggSerde, opts)
}

// windowedAggregate adds the window store and the processor of a
// time-windowed aggregation.
func windowedAggregate[K, V, VA any](ws TimeWindowedStream[K, V], prefix string, fn func(K, V, VA, bool) VA, aggSerde serde.Serde[VA], opts []Option) Table[window.Windowed[K], VA] {
	b := ws.g.s.b
	o := collect(opts)
	store := o.store
	if store == "" {
		store = b.generatedName(prefix + "-store")
	}
	in := ws.g.input(store)
	keys := in.keys
	size := ws.windows.Size()
	retention, storeRetention := windowRetention(ws.windows.Retention(), o, ws.emitFinal)
	n := addProcessor(b, prefix, o, []*node{in.n}, []string{store}, func() processor.Processor[K, V, window.Windowed[K], change[VA]] {
		return &windowAggregateProcessor[K, V, VA]{store: store, windows: ws.windows, fn: fn, emitFinal: ws.emitFinal, retention: storeRetention.Milliseconds()}
	})
	n.detail = windowDetail(ws.windows.String(), ws.emitFinal)
	var tableKeys serde.Serde[window.Windowed[K]]
	switch {
	case ws.windows.Size() <= 0:
		b.errorf(n.name, "WindowedBy needs time windows made with window.TimeWindowsOfSizeAndGrace or TimeWindowsOfSizeWithNoGrace")
		return Table[window.Windowed[K], VA]{b: b, n: n, store: store}
	case retention < size+ws.windows.Grace():
		b.errorf(n.name, "the store's retention %v is shorter than the window size plus the grace period (%v): a window would be dropped before it closes", retention, size+ws.windows.Grace())
	case keys == nil || aggSerde == nil:
		b.errorf(n.name, "a windowed aggregation's store needs a key serde and an aggregate serde: set the key serde with WithSerdes before grouping")
	default:
		tableKeys = declareWindowedStore(b, n, store, o, keys, aggSerde, state.WindowStoreConfig{WindowSize: size, Retention: storeRetention})
	}
	// Windowed aggregations drop null keys only (KStreamWindowAggregate).
	dropNullKeys[K, V](n)
	// Suppression waits this long after a window's end (Kafka Streams'
	// GraphGraceSearchUtil).
	grace := ws.windows.Grace()
	return Table[window.Windowed[K], VA]{b: b, n: n, keys: tableKeys, values: aggSerde, store: store, get: windowGetter[K, VA](store), grace: &grace}
}

// windowRetention returns a windowed aggregation's retention (the
// windows' own, or WithRetention's) and its store's: one millisecond more
// with emit-on-window-close, because Kafka Streams' emit-final store
// reads windows back at their retention's edge (its getActualFrom drops
// the "+ 1"), and the last window to close is exactly that old.
func windowRetention(windows time.Duration, o options, emitFinal bool) (retention, store time.Duration) {
	retention = windows
	if o.retention > 0 {
		retention = o.retention
	}
	store = retention
	if emitFinal {
		store += time.Millisecond
	}
	return retention, store
}

// windowDetail is what Describe says of a windowed aggregation.
func windowDetail(windows string, emitFinal bool) string {
	if emitFinal {
		return "windows: " + windows + ", emit on window close"
	}
	return "windows: " + windows
}

// declareWindowedStore declares the timestamped window store of a
// windowed aggregation (time or sliding windows) at node n, and returns
// the key serde of its table: Kafka Streams' time-windowed layout.
func declareWindowedStore[K, VA any](b *Builder, n *node, store string, o options, keys serde.Serde[K], aggSerde serde.Serde[VA], cfg state.WindowStoreConfig) serde.Serde[window.Windowed[K]] {
	stamped := serde.Serde[stamped[VA]](stampedSerde[VA]{aggSerde})
	if _, err := state.NewWindowStore(store, store, nil, keys, stamped, cfg); err != nil {
		b.errorf(n.name, "%v", err)
		return nil
	}
	if decl := b.declareStoreOf(store, o, state.KindWindow, cfg.Retention, func(raw state.RawStore, topic string) any {
		s, err := state.NewWindowStore(store, topic, raw, keys, stamped, cfg)
		if err != nil {
			panic(err) // checked above
		}
		return &timestampedWindowStore[K, VA]{inner: s}
	}); decl != nil {
		decl.timestamped = true
	}
	tableKeys, _ := window.TimeWindowedSerde(keys, cfg.WindowSize)
	return tableKeys
}

// dropNullKeys puts the instances of node n behind a guard that drops
// every record with a null key (task.DropNullKeys).
func dropNullKeys[K, V any](n *node) {
	inner := n.instantiate
	n.instantiate = func(t *task.Task, topicName func(string, bool) string, kids []any) any {
		return task.DropNullKeys(t, inner(t, topicName, kids).(task.Downstream[K, V]))
	}
}

// noStreamTime is Kafka Streams' ConsumerRecord.NO_TIMESTAMP, the stream
// time of a processor that has seen no record.
const noStreamTime int64 = -1

// emitInterval is how often, at most, an emit-on-window-close aggregation
// looks for closed windows: Kafka Streams' internal
// emit.interval.ms.kstreams.windowed.aggregation default.
const emitInterval = time.Second

// lastEmitKey is the metadata key under which an emit-on-window-close
// aggregation keeps the last window close time it emitted.
const lastEmitKey = "last-emit-window-close-time"

// windowAggregateProcessor is Kafka Streams' KStreamWindowAggregate: each
// record updates the windows it falls in that have not closed, and
// forwards each update (or, with emitFinal, the windows that closed).
type windowAggregateProcessor[K, V, VA any] struct {
	store     string
	windows   window.TimeWindows
	fn        func(K, V, VA, bool) VA
	emitFinal bool
	retention int64 // the store's, in ms

	ctx processor.Context[window.Windowed[K], change[VA]]
	ws  state.WindowStore[K, stamped[VA]] // the store's values with their timestamps
	// observed is the largest timestamp seen (KS's observedStreamTime,
	// which restarts with the processor, as there).
	observed int64
	// lastEmit is the last window close time emitted (emitFinal).
	lastEmit int64
	nextEmit time.Time
}

func (p *windowAggregateProcessor[K, V, VA]) Init(ctx processor.Context[window.Windowed[K], change[VA]]) error {
	s, err := ctx.Store(p.store)
	if err != nil {
		return err
	}
	tws, ok := s.(*timestampedWindowStore[K, VA])
	if !ok {
		return fmt.Errorf("store %q is a %T, not a windowed aggregation's store", p.store, s)
	}
	ws := tws.inner
	p.ctx, p.ws, p.observed, p.lastEmit = ctx, ws, noStreamTime, noStreamTime
	if p.emitFinal {
		if v, ok, err := ws.(state.WindowStoreMetadata).Metadata(lastEmitKey); err != nil {
			return err
		} else if ok && len(v) == 8 {
			p.lastEmit = readMillis(v)
		}
	}
	return nil
}

func (p *windowAggregateProcessor[K, V, VA]) Process(r processor.Record[K, V]) error {
	ts := r.Timestamp.UnixMilli()
	p.observed = max(p.observed, ts)
	closeTime := p.observed - p.windows.Grace().Milliseconds()
	windows := p.windows.WindowsFor(r.Timestamp)
	if p.emitFinal {
		// Before the record's windows are written: a write that moves the
		// store's time on expires the oldest windows, and those that have
		// closed must have been emitted first.
		if err := p.emitClosed(r, closeTime, windows); err != nil {
			return err
		}
	}
	for _, w := range windows {
		if w.EndMs() <= closeTime {
			dropLate(p.ctx)
			continue
		}
		old, had, err := p.ws.Fetch(r.Key, w.Start())
		if err != nil {
			return err
		}
		newTs := ts
		if had {
			newTs = max(ts, old.ts)
		}
		agg := p.fn(r.Key, r.Value, old.value, had)
		if _, err := p.ws.Put(r.Key, stamped[VA]{value: agg, ts: newTs}, w.Start()); err != nil {
			return err
		}
		if !p.emitFinal {
			if err := p.ctx.Forward(processor.Record[window.Windowed[K], change[VA]]{
				Key: window.Windowed[K]{Key: r.Key, Window: w}, Value: change[VA]{value: agg, old: old.value, hasOld: had},
				Timestamp: time.UnixMilli(newTs), Headers: r.Headers,
			}); err != nil {
				return err
			}
		}
	}
	return nil
}

// emitClosed forwards the windows that closed since the last emission, as
// KStreamWindowAggregate's maybeForwardFinalResult: at most once per
// emitInterval of wall-clock time, and only when the close time moved.
//
// Unlike Kafka Streams, it emits despite the interval when the record's
// windows would otherwise expire closed windows not yet emitted (its
// window store keeps a window for the size plus the grace period, so a
// stream time that jumps ahead within the interval drops them unseen):
// eddy never loses a final result to the throttle.
func (p *windowAggregateProcessor[K, V, VA]) emitClosed(r processor.Record[K, V], closeTime int64, windows []window.Window) error {
	size := p.windows.Size().Milliseconds()
	lower := int64(0)
	if p.lastEmit != noStreamTime {
		lower = max(0, p.lastEmit-size) + 1
	}
	upper := closeTime - size // the latest start of a closed window
	now := p.ctx.WallClock()
	if now.Before(p.nextEmit) && !p.wouldExpire(lower, upper, windows) {
		return nil
	}
	p.nextEmit = now.Add(emitInterval)
	if p.lastEmit != noStreamTime && p.lastEmit >= closeTime {
		return nil
	}
	if upper < 0 {
		return nil
	}
	if lower <= upper {
		closed, err := windowsStarting(p.ws, lower, upper)
		if err != nil {
			return err
		}
		for _, c := range closed {
			if err := p.ctx.Forward(processor.Record[window.Windowed[K], change[VA]]{
				Key: c.key, Value: change[VA]{value: c.agg.value}, Timestamp: time.UnixMilli(c.agg.ts), Headers: r.Headers,
			}); err != nil {
				return err
			}
		}
	}
	p.lastEmit = closeTime
	return p.ws.(state.WindowStoreMetadata).PutMetadata(lastEmitKey, appendMillis(nil, closeTime))
}

// wouldExpire reports whether writing windows would expire a closed window
// not yet emitted, one that starts in [lower, upper]: the store then keeps
// windows from the last one's start minus its retention, plus one.
func (p *windowAggregateProcessor[K, V, VA]) wouldExpire(lower, upper int64, windows []window.Window) bool {
	if len(windows) == 0 {
		return false
	}
	hi := min(upper, windows[len(windows)-1].StartMs()-p.retention)
	adv := p.windows.Advance().Milliseconds()
	first := (lower + adv - 1) / adv * adv // the first window start at or after lower
	return lower <= hi && first <= hi
}

func (p *windowAggregateProcessor[K, V, VA]) Close() error { return nil }

// dropLate reports that the processor of ctx dropped its record as late
// (task.DropLate); the engine counts it and logs it at debug.
func dropLate[K, V any](ctx processor.Context[K, V]) {
	if d, ok := ctx.(task.Dropper); ok {
		d.Drop(task.DropLate)
	}
}

// appendMillis appends ms as 8 bytes, big-endian.
func appendMillis(b []byte, ms int64) []byte { return binary.BigEndian.AppendUint64(b, uint64(ms)) }

// readMillis reads 8 bytes written by appendMillis.
func readMillis(b []byte) int64 { return int64(binary.BigEndian.Uint64(b)) }

// timestampedWindowStore is the typed form of a windowed aggregation's
// store: its values are kept with their timestamps (stamped, as
// timestampedStore does for key-value stores), which the aggregation
// reads and writes through inner. As a state.WindowStore[K, V], which is
// what processors of the Processor API, eddytest and queries get, it reads
// values without their timestamps and writes values with none.
type timestampedWindowStore[K, V any] struct {
	inner state.WindowStore[K, stamped[V]]
}

// Name is the store's name.
func (s *timestampedWindowStore[K, V]) Name() string { return s.inner.Name() }

// Put stores value for key's window at start, without a timestamp.
func (s *timestampedWindowStore[K, V]) Put(key K, value V, start time.Time) (bool, error) {
	return s.inner.Put(key, stamped[V]{value: value, ts: noTimestamp}, start)
}

// Delete removes key's window at start.
func (s *timestampedWindowStore[K, V]) Delete(key K, start time.Time) error {
	return s.inner.Delete(key, start)
}

// Fetch returns the value of key's window at start.
func (s *timestampedWindowStore[K, V]) Fetch(key K, start time.Time) (V, bool, error) {
	v, ok, err := s.inner.Fetch(key, start)
	return v.value, ok, err
}

// FetchRange iterates key's windows that start from from to to.
func (s *timestampedWindowStore[K, V]) FetchRange(key K, from, to time.Time) (state.WindowIterator[K, V], error) {
	return windowValues(s.inner.FetchRange(key, from, to))
}

// FetchAll iterates every key's windows that start from from to to.
func (s *timestampedWindowStore[K, V]) FetchAll(from, to time.Time) (state.WindowIterator[K, V], error) {
	return windowValues(s.inner.FetchAll(from, to))
}

// All iterates every window.
func (s *timestampedWindowStore[K, V]) All() (state.WindowIterator[K, V], error) {
	return windowValues(s.inner.All())
}

// Metadata and PutMetadata pass to the store (state.WindowStoreMetadata).
func (s *timestampedWindowStore[K, V]) Metadata(key string) ([]byte, bool, error) {
	return s.inner.(state.WindowStoreMetadata).Metadata(key)
}

// PutMetadata stores a metadata value.
func (s *timestampedWindowStore[K, V]) PutMetadata(key string, value []byte) error {
	return s.inner.(state.WindowStoreMetadata).PutMetadata(key, value)
}

func windowValues[K, V any](it state.WindowIterator[K, stamped[V]], err error) (state.WindowIterator[K, V], error) {
	if err != nil {
		return nil, err
	}
	return windowValueIter[K, V]{it}, nil
}

// windowValueIter iterates a timestamped window store's values without
// their timestamps.
type windowValueIter[K, V any] struct {
	state.WindowIterator[K, stamped[V]]
}

func (i windowValueIter[K, V]) Value() V { return i.WindowIterator.Value().value }
