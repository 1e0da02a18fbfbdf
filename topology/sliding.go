package topology

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/eddystream/eddy/processor"
	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/state"
	"github.com/eddystream/eddy/window"
)

// SlidingWindowedStream is a grouped stream cut into sliding windows
// (window.SlidingWindows), ready for a sliding-windowed aggregation.
// Create it with SlidingWindowedBy.
type SlidingWindowedStream[K, V any] struct {
	g         GroupedStream[K, V]
	windows   window.SlidingWindows
	emitFinal bool
}

// SlidingWindowedBy cuts the grouped stream into the sliding windows w,
// as Kafka Streams' KGroupedStream.windowedBy(SlidingWindows). (A
// function, for the reason given on WindowedBy.)
func SlidingWindowedBy[K, V any](g GroupedStream[K, V], w window.SlidingWindows) SlidingWindowedStream[K, V] {
	return SlidingWindowedStream[K, V]{g: g, windows: w}
}

// EmitOnWindowClose makes the aggregation forward each window's result
// once, when the window closes (its end plus the grace period has passed
// in stream time), instead of every update: Kafka Streams'
// emitStrategy(EmitStrategy.onWindowClose()), with the same rules as
// TimeWindowedStream.EmitOnWindowClose. As in Kafka Streams, a record
// earlier than the time difference (whose windows would start before 0)
// does not look for closed windows.
func (sw SlidingWindowedStream[K, V]) EmitOnWindowClose() SlidingWindowedStream[K, V] {
	sw.emitFinal = true
	return sw
}

// Count counts the records per key and sliding window. Records with a
// null key or a null value are dropped and counted as dropped (Kafka
// Streams' KStreamSlidingWindowAggregate drops both). A record whose
// window, [t, t+time difference] from its own timestamp t, has closed (its
// end before stream time minus grace) is dropped as late: counted in
// eddy_dropped_records_total with the reason "late" and logged at debug;
// so is each existing window it would update that has closed. Each window
// update is forwarded with the largest timestamp of the window's records.
// Options: StoreName, Named, WithRetention and the store options
// InMemory, WithBackend, WithoutLogging, WithChangelogConfig.
func (sw SlidingWindowedStream[K, V]) Count(opts ...Option) Table[window.Windowed[K], int64] {
	return slidingAggregate(sw, "sliding-count", func(_ K, _ V, n int64, _ bool) int64 { return n + 1 }, serde.Int64(), opts)
}

// Reduce combines the values per key and sliding window with
// fn(aggregate, value); the first value of a window is its initial
// aggregate. Drops as for Count; options as for Count.
func (sw SlidingWindowedStream[K, V]) Reduce(fn func(agg, v V) V, opts ...Option) Table[window.Windowed[K], V] {
	return slidingAggregate(sw, "sliding-reduce", reducing[K](fn), sw.g.s.values, opts)
}

// SlidingAggregate folds the values per key and sliding window into an
// aggregate of type VA, starting each window from init(). aggSerde
// stores the aggregate. Drops as for Count; options as for Count.
func SlidingAggregate[K, V, VA any](sw SlidingWindowedStream[K, V], init func() VA, agg func(K, V, VA) VA, aggSerde serde.Serde[VA], opts ...Option) Table[window.Windowed[K], VA] {
	return slidingAggregate(sw, "sliding-aggregate", aggregating(init, agg), aggSerde, opts)
}

// slidingAggregate adds the window store and the processor of a
// sliding-windowed aggregation.
func slidingAggregate[K, V, VA any](sw SlidingWindowedStream[K, V], prefix string, fn func(K, V, VA, bool) VA, aggSerde serde.Serde[VA], opts []Option) Table[window.Windowed[K], VA] {
	b := sw.g.s.b
	o := collect(opts)
	store := o.store
	if store == "" {
		store = b.generatedName(prefix + "-store")
	}
	in := sw.g.input(store)
	keys := in.keys
	diff := sw.windows.TimeDifference()
	retention, storeRetention := windowRetention(sw.windows.Retention(), o, sw.emitFinal)
	n := addProcessor(b, prefix, o, []*node{in.n}, []string{store}, func() processor.Processor[K, V, window.Windowed[K], change[VA]] {
		return &slidingAggregateProcessor[K, V, VA]{store: store, windows: sw.windows, fn: fn, emitFinal: sw.emitFinal, retention: storeRetention.Milliseconds()}
	})
	n.detail = windowDetail(sw.windows.String(), sw.emitFinal)
	var tableKeys serde.Serde[window.Windowed[K]]
	switch {
	case diff <= 0:
		// Kafka Streams accepts a time difference of 0, then fails on its
		// first record: a window [t, t] is not a valid TimeWindow.
		b.errorf(n.name, "SlidingWindowedBy needs a time difference of at least a millisecond: windows of a time difference of 0 would end where they start")
		return Table[window.Windowed[K], VA]{b: b, n: n, store: store}
	case retention < sw.windows.Retention():
		b.errorf(n.name, "the store's retention %v is shorter than twice the time difference plus the grace period (%v): a record could not find the windows it needs", retention, sw.windows.Retention())
	case keys == nil || aggSerde == nil:
		b.errorf(n.name, "a sliding-windowed aggregation's store needs a key serde and an aggregate serde: set the key serde with WithSerdes before grouping")
	default:
		tableKeys = declareWindowedStore(b, n, store, o, keys, aggSerde, state.WindowStoreConfig{WindowSize: diff, Retention: storeRetention})
	}
	// KStreamSlidingWindowAggregate drops null keys and null values.
	dropNulls[K, V](n)
	// Suppression waits this long after a window's end (Kafka Streams'
	// GraphGraceSearchUtil).
	grace := sw.windows.Grace()
	return Table[window.Windowed[K], VA]{b: b, n: n, keys: tableKeys, values: aggSerde, store: store, get: windowGetter[K, VA](store), grace: &grace}
}

// windowGetter reads a window table's values for joins, as Kafka Streams'
// KStreamWindowAggregateValueGetter: the aggregate of the key's window
// that starts at the windowed key's start, with its timestamp.
func windowGetter[K, VA any](store string) *valueGetter[window.Windowed[K], VA] {
	return &valueGetter[window.Windowed[K], VA]{stores: []string{store}, open: func(ctx state.StoreGetter) (lookup[window.Windowed[K], VA], error) {
		s, err := ctx.Store(store)
		if err != nil {
			return nil, err
		}
		tws, ok := s.(*timestampedWindowStore[K, VA])
		if !ok {
			return nil, fmt.Errorf("store %q is a %T, not a windowed aggregation's store", store, s)
		}
		return func(k window.Windowed[K]) (VA, int64, bool, error) {
			v, ok, err := tws.inner.Fetch(k.Key, k.Window.Start())
			return v.value, v.ts, ok, err
		}, nil
	}}
}

// slidingAggregateProcessor is Kafka Streams'
// KStreamSlidingWindowAggregate (its reverse-iterator path, which its
// RocksDB and in-memory stores take): each record updates the windows of
// its key that hold it, creates its left window [t-diff, t] and, when
// records follow within the difference, its right window [t+1,
// t+1+diff], and creates the right window of the record before it when
// the record falls in it. A window is created only where a record enters
// or leaves it, so windows start and end at record timestamps.
type slidingAggregateProcessor[K, V, VA any] struct {
	store     string
	windows   window.SlidingWindows
	fn        func(K, V, VA, bool) VA
	emitFinal bool
	retention int64 // the store's, in ms

	ctx processor.Context[window.Windowed[K], change[VA]]
	ws  state.WindowStore[K, stamped[VA]]
	// observed is the largest timestamp seen (KS's observedStreamTime,
	// which restarts with the processor, as there).
	observed int64
	// lastEmit is the last window close time emitted (emitFinal).
	lastEmit int64
	nextEmit time.Time
}

func (p *slidingAggregateProcessor[K, V, VA]) Init(ctx processor.Context[window.Windowed[K], change[VA]]) error {
	s, err := ctx.Store(p.store)
	if err != nil {
		return err
	}
	tws, ok := s.(*timestampedWindowStore[K, VA])
	if !ok {
		return fmt.Errorf("store %q is a %T, not a windowed aggregation's store", p.store, s)
	}
	p.ctx, p.ws, p.observed, p.lastEmit = ctx, tws.inner, noStreamTime, noStreamTime
	if p.emitFinal {
		if v, ok, err := p.ws.(state.WindowStoreMetadata).Metadata(lastEmitKey); err != nil {
			return err
		} else if ok && len(v) == 8 {
			p.lastEmit = readMillis(v)
		}
	}
	return nil
}

// slidingWindow is a stored window: its start and its aggregate with the
// largest timestamp of its records.
type slidingWindow[VA any] struct {
	start int64
	agg   stamped[VA]
}

func (p *slidingAggregateProcessor[K, V, VA]) Process(r processor.Record[K, V]) error {
	ts := r.Timestamp.UnixMilli()
	diff := p.windows.TimeDifference().Milliseconds()
	p.observed = max(p.observed, ts)
	closeTime := p.observed - p.windows.Grace().Milliseconds()
	if ts+diff < closeTime {
		dropLate(p.ctx)
		return nil
	}
	if ts < diff {
		return p.processEarly(r, ts, closeTime)
	}
	if p.emitFinal {
		// Before the record's windows are written, which may expire the
		// oldest (see windowAggregateProcessor.Process). The record
		// writes no window that is closed, so what is emitted is the
		// same as after.
		if err := p.emitClosed(r, closeTime); err != nil {
			return err
		}
	}
	windows, err := p.fetch(r.Key, max(0, ts-2*diff), ts+1)
	if err != nil {
		return err
	}
	starts := make(map[int64]bool, len(windows))
	var (
		leftAgg, rightAgg         *stamped[VA]
		leftCreated, rightCreated bool
		prevTs                    = noStreamTime
		hasPrev                   bool
	)
	// Newest first, as Kafka Streams' backward fetch.
newestFirst:
	for i := len(windows) - 1; i >= 0; i-- {
		w := windows[i]
		starts[w.start] = true
		end := w.start + diff
		switch {
		case w.start == ts+1:
			rightCreated = true
		case end > ts:
			if rightAgg == nil {
				rightAgg = &w.agg
			}
			if err := p.update(r, w.start, w.agg, true, closeTime); err != nil {
				return err
			}
		case end == ts:
			leftCreated = true
			if err := p.update(r, w.start, w.agg, true, closeTime); err != nil {
				return err
			}
			if w.agg.ts >= ts {
				// The record's windows exist already: a record at the
				// same time or later created them.
				return nil
			}
			prevTs, hasPrev = w.agg.ts, true
		default: // end < ts: the newest window before the record's
			leftAgg = &w.agg
			prevTs, hasPrev = w.agg.ts, true
			break newestFirst
		}
	}
	// The right window of the record before this one, if this record
	// falls in it and it does not exist.
	if hasPrev && !starts[prevTs+1] && prevTs+1+diff >= ts {
		if err := p.update(r, prevTs+1, stamped[VA]{}, false, closeTime); err != nil {
			return err
		}
	}
	// The record's left window, holding the records before it within
	// the difference.
	if !leftCreated {
		if hasPrev && ts-diff <= prevTs {
			err = p.update(r, ts-diff, stamped[VA]{value: leftAgg.value, ts: ts}, true, closeTime)
		} else {
			err = p.update(r, ts-diff, stamped[VA]{}, false, closeTime)
		}
		if err != nil {
			return err
		}
	}
	// The record's right window, if records follow it within the
	// difference.
	if !rightCreated && rightAgg != nil && rightAgg.ts > ts {
		return p.createRightWindow(r, ts, *rightAgg)
	}
	return nil
}

// processEarly handles a record earlier than the time difference, whose
// left window would start before 0: as Kafka Streams, it goes into the
// window [0, diff], which holds every such record, and right windows are
// created as for any other record.
func (p *slidingAggregateProcessor[K, V, VA]) processEarly(r processor.Record[K, V], ts, closeTime int64) error {
	windows, err := p.fetch(r.Key, 0, ts+1)
	if err != nil {
		return err
	}
	starts := make(map[int64]bool, len(windows))
	var (
		combined, rightAgg *stamped[VA]
		rightCreated       bool
		prevTs             = noStreamTime
		hasPrev            bool
	)
	for _, w := range windows {
		starts[w.start] = true
		switch {
		case w.start == 0:
			combined = &w.agg
			// A later record in [0, diff] created the previous record's
			// right window already.
			if w.agg.ts < ts {
				prevTs, hasPrev = w.agg.ts, true
			}
		case w.start <= ts:
			rightAgg = &w.agg
			if err := p.update(r, w.start, w.agg, true, closeTime); err != nil {
				return err
			}
		default: // w.start == ts+1
			rightCreated = true
		}
	}
	// With no right window found, the records of [0, diff] after this one
	// are all in the combined window (Kafka Streams' reasoning: records
	// on both sides would have given a right window).
	if rightAgg == nil && combined != nil && combined.ts > ts {
		rightAgg = combined
	}
	if !rightCreated && rightAgg != nil && rightAgg.ts > ts {
		if err := p.createRightWindow(r, ts, *rightAgg); err != nil {
			return err
		}
	}
	if hasPrev && !starts[prevTs+1] {
		if err := p.update(r, prevTs+1, stamped[VA]{}, false, closeTime); err != nil {
			return err
		}
	}
	if combined == nil {
		return p.update(r, 0, stamped[VA]{}, false, closeTime)
	}
	return p.update(r, 0, *combined, true, closeTime)
}

// fetch returns key's windows that start from from to to, in start order,
// read before any is written.
func (p *slidingAggregateProcessor[K, V, VA]) fetch(key K, from, to int64) ([]slidingWindow[VA], error) {
	it, err := p.ws.FetchRange(key, time.UnixMilli(from), time.UnixMilli(to))
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []slidingWindow[VA]
	for it.Next() {
		out = append(out, slidingWindow[VA]{start: it.Key().Window.StartMs(), agg: it.Value()})
	}
	return out, it.Err()
}

// update folds the record into the window at start, whose aggregate is
// old (had false: none yet), unless the window has closed: then the
// record is dropped as late for it (Kafka Streams' updateWindowAndForward).
func (p *slidingAggregateProcessor[K, V, VA]) update(r processor.Record[K, V], start int64, old stamped[VA], had bool, closeTime int64) error {
	diff := p.windows.TimeDifference().Milliseconds()
	if start+diff < closeTime {
		dropLate(p.ctx)
		return nil
	}
	ts := r.Timestamp.UnixMilli()
	newTs := ts
	if had {
		newTs = max(ts, old.ts)
	}
	agg := p.fn(r.Key, r.Value, old.value, had)
	return p.put(r, start, stamped[VA]{value: agg, ts: newTs}, change[VA]{value: agg, old: old.value, hasOld: had})
}

// createRightWindow creates the record's right window [ts+1, ts+1+diff]
// with the aggregate of the records after it, agg, without the record.
func (p *slidingAggregateProcessor[K, V, VA]) createRightWindow(r processor.Record[K, V], ts int64, agg stamped[VA]) error {
	return p.put(r, ts+1, agg, change[VA]{value: agg.value})
}

// put stores the window at start and forwards the update c. The old
// value is the aggregate the window was computed from: for a window new
// to the store, copied from the window before it, as Kafka Streams sends
// it (for one started from the initializer, none, as for time windows).
func (p *slidingAggregateProcessor[K, V, VA]) put(r processor.Record[K, V], start int64, v stamped[VA], c change[VA]) error {
	if _, err := p.ws.Put(r.Key, v, time.UnixMilli(start)); err != nil {
		return err
	}
	if p.emitFinal {
		return nil
	}
	w, err := window.NewTimeWindow(start, start+p.windows.TimeDifference().Milliseconds())
	if err != nil {
		return err
	}
	return p.ctx.Forward(processor.Record[window.Windowed[K], change[VA]]{
		Key: window.Windowed[K]{Key: r.Key, Window: w}, Value: c,
		Timestamp: time.UnixMilli(v.ts), Headers: r.Headers,
	})
}

// emitClosed forwards the windows that closed since the last emission,
// as KStreamSlidingWindowAggregate's maybeForwardFinalResult: those that
// start from the last close time emitted minus the difference to the
// close time minus the difference, less one (a window includes its end),
// at most once per emitInterval of wall-clock time, and only when the
// close time moved. As for time windows, eddy looks despite the interval
// when the record's writes would expire a closed window not yet emitted.
func (p *slidingAggregateProcessor[K, V, VA]) emitClosed(r processor.Record[K, V], closeTime int64) error {
	diff := p.windows.TimeDifference().Milliseconds()
	lower := int64(0)
	if p.lastEmit != noStreamTime {
		lower = max(0, p.lastEmit-diff)
	}
	upper := closeTime - diff - 1
	now := p.ctx.WallClock()
	// The record writes windows that start at most at its time plus one.
	wouldExpire := lower <= min(upper, r.Timestamp.UnixMilli()+1-p.retention)
	if now.Before(p.nextEmit) && !wouldExpire {
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

// closedWindow is a window to emit.
type closedWindow[K, VA any] struct {
	key window.Windowed[K]
	agg stamped[VA]
}

// windowsStarting returns every key's windows of ws that start from lower
// to upper, by start, then key: the order of Kafka Streams' time-ordered
// window store, which its emit-final aggregations read.
func windowsStarting[K, VA any](ws state.WindowStore[K, stamped[VA]], lower, upper int64) ([]closedWindow[K, VA], error) {
	it, err := ws.FetchAll(time.UnixMilli(lower), time.UnixMilli(upper))
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []closedWindow[K, VA]
	for it.Next() {
		out = append(out, closedWindow[K, VA]{key: it.Key(), agg: it.Value()})
	}
	if err := it.Err(); err != nil {
		return nil, err
	}
	// The store iterates by time segment, then key bytes, then start: a
	// stable sort by start keeps the key order within each.
	slices.SortStableFunc(out, func(a, b closedWindow[K, VA]) int {
		return cmp.Compare(a.key.Window.StartMs(), b.key.Window.StartMs())
	})
	return out, nil
}

func (p *slidingAggregateProcessor[K, V, VA]) Close() error { return nil }
