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

// SessionWindowedStream is a grouped stream cut into sessions
// (window.SessionWindows), ready for a session-windowed aggregation.
// Create it with SessionWindowedBy.
type SessionWindowedStream[K, V any] struct {
	g         GroupedStream[K, V]
	windows   window.SessionWindows
	emitFinal bool
}

// SessionWindowedBy cuts the grouped stream into the sessions of w, as
// Kafka Streams' KGroupedStream.windowedBy(SessionWindows). (A function,
// for the reason given on WindowedBy.)
func SessionWindowedBy[K, V any](g GroupedStream[K, V], w window.SessionWindows) SessionWindowedStream[K, V] {
	return SessionWindowedStream[K, V]{g: g, windows: w}
}

// EmitOnWindowClose makes the aggregation forward each session's result
// once, when the session closes (its end plus the inactivity gap plus the
// grace period has passed in stream time), instead of every update and
// removal: Kafka Streams' emitStrategy(EmitStrategy.onWindowClose()) for
// sessions (KIP-825). As there, closed sessions are looked for at most
// once a second of wall-clock time, each is emitted with its end as the
// timestamp, and the last close time emitted is kept with the store, so
// that a restarted task does not emit a session twice.
func (ss SessionWindowedStream[K, V]) EmitOnWindowClose() SessionWindowedStream[K, V] {
	ss.emitFinal = true
	return ss
}

// Count counts the records per key and session. Records with a null key
// are dropped and counted as dropped; a null value counts (Kafka Streams'
// KStreamSessionWindowAggregate drops null keys only). A record whose
// session, merged with the sessions it joins, would have closed is
// dropped as late: counted in eddy_dropped_records_total with the reason
// "late" and logged at debug. When a record merges sessions, each merged
// session is forwarded as a deletion (ToStream: a tombstone for its
// windowed key), then the merged session with its aggregate. Options:
// StoreName, Named, WithRetention and the store options InMemory,
// WithBackend, WithoutLogging, WithChangelogConfig.
func (ss SessionWindowedStream[K, V]) Count(opts ...Option) Table[window.Windowed[K], int64] {
	return sessionAggregate(ss, "session-count", func() int64 { return 0 },
		func(_ K, _ V, n int64, _ bool) int64 { return n + 1 },
		func(_ K, a, b int64) int64 { return a + b }, serde.Int64(), opts)
}

// Reduce combines the values per key and session with fn(aggregate,
// value); the first value of a session is its initial aggregate, and
// merged sessions are combined with fn too, the earlier-found one first
// (Kafka Streams' reduce uses the reducer as the merger). Drops and
// forwards as for Count; options as for Count.
func (ss SessionWindowedStream[K, V]) Reduce(fn func(agg, v V) V, opts ...Option) Table[window.Windowed[K], V] {
	return sessionAggregate(ss, "session-reduce", nil, reducing[K](fn), func(_ K, a, b V) V { return fn(a, b) }, ss.g.s.values, opts)
}

// SessionAggregate folds the values per key and session into an
// aggregate of type VA. A record starts from init(), merged with the
// aggregates of the sessions it joins by merger(key, aggregate, session's
// aggregate) in the order the store returns them (by end, then start),
// and is then folded in with agg. aggSerde stores the aggregate. Drops
// and forwards as for Count; options as for Count. Kafka Streams'
// SessionWindowedKStream.aggregate(initializer, aggregator, sessionMerger).
func SessionAggregate[K, V, VA any](ss SessionWindowedStream[K, V], init func() VA, agg func(K, V, VA) VA, merger func(K, VA, VA) VA, aggSerde serde.Serde[VA], opts ...Option) Table[window.Windowed[K], VA] {
	return sessionAggregate(ss, "session-aggregate", init, func(k K, v V, old VA, _ bool) VA {
		return agg(k, v, old)
	}, merger, aggSerde, opts)
}

// sessionAggregate adds the session store and the processor of a
// session-windowed aggregation. init is nil for a reduction, whose
// aggregate starts as none (Kafka Streams' null).
func sessionAggregate[K, V, VA any](ss SessionWindowedStream[K, V], prefix string, init func() VA, fn func(K, V, VA, bool) VA, merge func(K, VA, VA) VA, aggSerde serde.Serde[VA], opts []Option) Table[window.Windowed[K], VA] {
	b := ss.g.s.b
	o := collect(opts)
	store := o.store
	if store == "" {
		store = b.generatedName(prefix + "-store")
	}
	in := ss.g.input(store)
	keys := in.keys
	retention := ss.windows.Retention()
	if o.retention > 0 {
		retention = o.retention
	}
	storeRetention := retention
	if ss.emitFinal {
		// A session closes when the stream time passes its end plus the
		// gap and grace, the moment a store of that retention expires it.
		// Kafka Streams' emit-final store still returns it until its
		// time segment is dropped; eddy's store reads by the
		// millisecond, so it keeps sessions another gap plus grace (and
		// a millisecond) for them to be emitted, and the aggregation
		// merges only those within the retention, as Kafka Streams does.
		storeRetention += ss.windows.Retention() + time.Millisecond
	}
	n := addProcessor(b, prefix, o, []*node{in.n}, []string{store}, func() processor.Processor[K, V, window.Windowed[K], change[VA]] {
		return &sessionAggregateProcessor[K, V, VA]{
			store: store, windows: ss.windows, init: init, fn: fn, merge: merge,
			emitFinal: ss.emitFinal, retention: retention.Milliseconds(), storeRetention: storeRetention.Milliseconds(),
		}
	})
	n.detail = "windows: " + ss.windows.String()
	if ss.emitFinal {
		n.detail += ", emit on window close"
	}
	var tableKeys serde.Serde[window.Windowed[K]]
	switch {
	case ss.windows.InactivityGap() <= 0:
		b.errorf(n.name, "SessionWindowedBy needs session windows made with window.SessionWindowsOfInactivityGapWithNoGrace or SessionWindowsOfInactivityGapAndGrace")
		return Table[window.Windowed[K], VA]{b: b, n: n, store: store}
	case retention < ss.windows.Retention():
		b.errorf(n.name, "the store's retention %v is shorter than the inactivity gap plus the grace period (%v): a session would be dropped before it closes", retention, ss.windows.Retention())
	case keys == nil || aggSerde == nil:
		b.errorf(n.name, "a session-windowed aggregation's store needs a key serde and an aggregate serde: set the key serde with WithSerdes before grouping")
	default:
		if _, err := state.NewSessionStore(store, store, nil, keys, aggSerde, storeRetention); err != nil {
			b.errorf(n.name, "%v", err)
		} else {
			b.declareStoreOf(store, o, state.KindSession, storeRetention, func(raw state.RawStore, topic string) any {
				s, err := state.NewSessionStore(store, topic, raw, keys, aggSerde, storeRetention)
				if err != nil {
					panic(err) // checked above
				}
				return s
			})
		}
		tableKeys = window.SessionWindowedSerde(keys)
	}
	dropNullKeys[K, V](n)
	// Suppression waits this long after a window's end (Kafka Streams'
	// GraphGraceSearchUtil).
	grace := ss.windows.Grace() + ss.windows.InactivityGap()
	return Table[window.Windowed[K], VA]{b: b, n: n, keys: tableKeys, values: aggSerde, store: store, get: sessionGetter[K, VA](store), grace: &grace}
}

// sessionGetter reads a session table's values for joins, as Kafka
// Streams' KTableSessionWindowValueGetter: the aggregate of the key's
// session with the windowed key's bounds, stamped with the session's end.
func sessionGetter[K, VA any](store string) *valueGetter[window.Windowed[K], VA] {
	return &valueGetter[window.Windowed[K], VA]{stores: []string{store}, open: func(ctx state.StoreGetter) (lookup[window.Windowed[K], VA], error) {
		ss, err := state.Session[K, VA](ctx, store)
		if err != nil {
			return nil, err
		}
		return func(k window.Windowed[K]) (VA, int64, bool, error) {
			v, ok, err := ss.FetchSession(k.Key, k.Window.Start(), k.Window.End())
			return v, k.Window.EndMs(), ok, err
		}, nil
	}}
}

// sessionAggregateProcessor is Kafka Streams'
// KStreamSessionWindowAggregate: a record merges the sessions of its key
// within the inactivity gap into one session that spans them and the
// record, removes them, and stores the merged session's aggregate.
type sessionAggregateProcessor[K, V, VA any] struct {
	store     string
	windows   window.SessionWindows
	init      func() VA // nil: the aggregate starts as none (reduce)
	fn        func(K, V, VA, bool) VA
	merge     func(K, VA, VA) VA
	emitFinal bool
	// retention is the sessions' retention, storeRetention the store's
	// (longer with emitFinal), both in ms.
	retention, storeRetention int64

	ctx processor.Context[window.Windowed[K], change[VA]]
	ss  state.SessionStore[K, VA]
	// observed is the largest timestamp seen (KS's observedStreamTime,
	// which restarts with the processor, as there).
	observed int64
	// lastEmit is the last session close time emitted (emitFinal).
	lastEmit int64
	// written is the largest session end this instance wrote: the
	// stream time of Kafka Streams' session store (emitFinal).
	written  int64
	nextEmit time.Time
}

func (p *sessionAggregateProcessor[K, V, VA]) Init(ctx processor.Context[window.Windowed[K], change[VA]]) error {
	ss, err := state.Session[K, VA](ctx, p.store)
	if err != nil {
		return err
	}
	p.ctx, p.ss, p.observed, p.lastEmit, p.written = ctx, ss, noStreamTime, noStreamTime, noStreamTime
	if p.emitFinal {
		md, ok := ss.(state.WindowStoreMetadata)
		if !ok {
			return fmt.Errorf("store %q is a %T, which keeps no metadata: emit-on-window-close needs a session store made by the DSL", p.store, ss)
		}
		if v, ok, err := md.Metadata(lastEmitKey); err != nil {
			return err
		} else if ok && len(v) == 8 {
			p.lastEmit = readMillis(v)
		}
	}
	return nil
}

// session is one stored session and its aggregate.
type session[K, VA any] struct {
	key   window.Windowed[K]
	value VA
}

func (p *sessionAggregateProcessor[K, V, VA]) Process(r processor.Record[K, V]) error {
	ts := r.Timestamp.UnixMilli()
	gap := p.windows.InactivityGap().Milliseconds()
	p.observed = max(p.observed, ts)
	closeTime := p.observed - p.windows.Grace().Milliseconds() - gap

	merged, err := p.sessionsNear(r.Key, ts-gap, ts+gap)
	if err != nil {
		return err
	}
	var agg VA
	had := p.init != nil
	if had {
		agg = p.init()
	}
	start, end := ts, ts
	if p.emitFinal && p.written != noStreamTime {
		// Kept longer than the retention to be emitted, a session past
		// the retention is not merged: Kafka Streams' store does not
		// return it.
		merged = slices.DeleteFunc(merged, func(s session[K, VA]) bool {
			return s.key.Window.EndMs() <= p.written-p.retention
		})
	}
	for _, s := range merged {
		if had {
			agg = p.merge(r.Key, agg, s.value)
		} else {
			agg, had = s.value, true
		}
		start, end = min(start, s.key.Window.StartMs()), max(end, s.key.Window.EndMs())
	}
	if end < closeTime {
		dropLate(p.ctx)
		return p.emitClosed(r, closeTime, noStreamTime)
	}
	if start != ts || end != ts {
		for _, s := range merged {
			if err := p.ss.Remove(s.key); err != nil {
				return err
			}
			if !p.emitFinal {
				// Kafka Streams forwards Change(null, old): the session
				// is gone. Its records carry the session's end as their
				// timestamp and no headers (a new Record there).
				if err := p.ctx.Forward(processor.Record[window.Windowed[K], change[VA]]{
					Key: s.key, Value: change[VA]{deleted: true, old: s.value, hasOld: true}, Timestamp: time.UnixMilli(s.key.Window.EndMs()),
				}); err != nil {
					return err
				}
			}
		}
	}
	w, err := window.NewSessionWindow(start, end)
	if err != nil {
		return fmt.Errorf("record at %d: %w", ts, err)
	}
	agg = p.fn(r.Key, r.Value, agg, had)
	if p.emitFinal {
		// Before the session is written: a write that moves the store's
		// time on expires the oldest sessions, and those that have closed
		// must have been emitted first.
		if err := p.emitClosed(r, closeTime, end); err != nil {
			return err
		}
	}
	key := window.Windowed[K]{Key: r.Key, Window: w}
	if _, err := p.ss.Put(key, agg); err != nil {
		return err
	}
	if p.emitFinal {
		p.written = max(p.written, end)
		return nil
	}
	// The merged session is a new key, even when it has the bounds of one
	// it replaced (removed above): no old value, as in Kafka Streams.
	return p.ctx.Forward(processor.Record[window.Windowed[K], change[VA]]{
		Key: key, Value: change[VA]{value: agg}, Timestamp: time.UnixMilli(end),
	})
}

// sessionsNear returns key's sessions that end at or after earliestEnd and
// start at or before latestStart, read before any is changed.
func (p *sessionAggregateProcessor[K, V, VA]) sessionsNear(key K, earliestEnd, latestStart int64) ([]session[K, VA], error) {
	it, err := p.ss.FindSessions(key, time.UnixMilli(earliestEnd), time.UnixMilli(latestStart))
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []session[K, VA]
	for it.Next() {
		out = append(out, session[K, VA]{key: it.Key(), value: it.Value()})
	}
	return out, it.Err()
}

// emitClosed forwards the sessions that closed since the last emission,
// as KStreamSessionWindowAggregate's maybeForwardFinalResult: those that
// end in [last close time emitted, close time - 1], at most once per
// emitInterval of wall-clock time, and only when the close time moved.
// As for time windows, eddy looks despite the interval when writing a
// session that ends at putEnd (noStreamTime: none) would expire a closed
// session not yet emitted.
func (p *sessionAggregateProcessor[K, V, VA]) emitClosed(r processor.Record[K, V], closeTime, putEnd int64) error {
	if !p.emitFinal {
		return nil
	}
	lower := max(0, p.lastEmit)
	upper := closeTime - 1 // sessions include their end
	now := p.ctx.WallClock()
	wouldExpire := putEnd != noStreamTime && lower <= min(upper, putEnd-p.storeRetention)
	if now.Before(p.nextEmit) && !wouldExpire {
		return nil
	}
	p.nextEmit = now.Add(emitInterval)
	if p.lastEmit != noStreamTime && p.lastEmit >= closeTime {
		return nil
	}
	if upper < 0 || lower > upper {
		return nil
	}
	closed, err := p.sessionsEnding(lower, upper)
	if err != nil {
		return err
	}
	for _, s := range closed {
		if err := p.ctx.Forward(processor.Record[window.Windowed[K], change[VA]]{
			Key: s.key, Value: change[VA]{value: s.value}, Timestamp: time.UnixMilli(s.key.Window.EndMs()), Headers: r.Headers,
		}); err != nil {
			return err
		}
	}
	p.lastEmit = closeTime
	return p.ss.(state.WindowStoreMetadata).PutMetadata(lastEmitKey, appendMillis(nil, closeTime))
}

// sessionsEnding returns every key's sessions that end from lower to
// upper, by end, then start, then key: the order of Kafka Streams'
// time-ordered session store, which its emit-final aggregation reads.
func (p *sessionAggregateProcessor[K, V, VA]) sessionsEnding(lower, upper int64) ([]session[K, VA], error) {
	it, err := p.ss.All()
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []session[K, VA]
	for it.Next() {
		if e := it.Key().Window.EndMs(); e >= lower && e <= upper {
			out = append(out, session[K, VA]{key: it.Key(), value: it.Value()})
		}
	}
	if err := it.Err(); err != nil {
		return nil, err
	}
	// The store iterates by time segment, then key bytes, end and start:
	// a stable sort by end and start keeps the key order within each.
	slices.SortStableFunc(out, func(a, b session[K, VA]) int {
		return cmp.Or(cmp.Compare(a.key.Window.EndMs(), b.key.Window.EndMs()), cmp.Compare(a.key.Window.StartMs(), b.key.Window.StartMs()))
	})
	return out, nil
}

func (p *sessionAggregateProcessor[K, V, VA]) Close() error { return nil }
