package topology

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/eddystream/eddy/internal/task"
	"github.com/eddystream/eddy/processor"
	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/state"
	"github.com/eddystream/eddy/window"
)

// Join joins two streams on their keys within the join windows w: each
// record of one stream is joined, through joiner, with every record of the
// other stream that has the same key and a timestamp in its window (for a
// left record at t, right records in [t-before, t+after]; for a right
// record, the bounds flipped), as Kafka Streams' KStream.join(KStream,
// ValueJoinerWithKey, JoinWindows, StreamJoined). A result carries the
// larger timestamp of its two records and the headers of the record that
// produced it. Records with a null key or a null value are dropped
// (counted, reasons null_key and null_value); records whose own window has
// closed (see Joins in the package doc) are dropped as late.
//
// The result stream has left's key serde and no value serde: set it with
// WithSerdes before writing the stream out.
//
// Options: Named (names the join's processors and, after a key change, its
// repartition topics "<name>-left-repartition" and
// "<name>-right-repartition"), StoreName (the base name of its stores, as
// Kafka Streams' StreamJoined.withStoreName), WithPartitions (the
// repartition topics' partition count), and the store options InMemory,
// WithBackend, WithoutLogging and WithChangelogConfig, which apply to every
// store of the join.
func Join[K, V1, V2, VR any](left Stream[K, V1], right Stream[K, V2], joiner func(K, V1, V2) VR, w window.JoinWindows, opts ...Option) Stream[K, VR] {
	return streamJoin(left, right, joiner, w, false, false, opts)
}

// LeftJoin is Join that also emits every left record that joined no right
// record, as joiner(key, left, zero V2), once its window has closed: once
// the stream time (the largest timestamp the join has seen on either side)
// has passed the record's timestamp plus after plus the grace period. The
// zero value of V2 stands for Kafka Streams' null (nil for a pointer, map,
// slice or interface type). Such a result carries the left record's
// timestamp. As in Kafka Streams, a left record with a null key and a
// value is emitted at once as joiner(zero K, left, zero V2) with a null key.
// Options as for Join.
func LeftJoin[K, V1, V2, VR any](left Stream[K, V1], right Stream[K, V2], joiner func(K, V1, V2) VR, w window.JoinWindows, opts ...Option) Stream[K, VR] {
	return streamJoin(left, right, joiner, w, true, false, opts)
}

// OuterJoin is LeftJoin in both directions: a right record that joined no
// left record is emitted as joiner(key, zero V1, right) once its window
// has closed (its timestamp plus before plus the grace period), and a
// right record with a null key and a value at once. Options as for Join.
func OuterJoin[K, V1, V2, VR any](left Stream[K, V1], right Stream[K, V2], joiner func(K, V1, V2) VR, w window.JoinWindows, opts ...Option) Stream[K, VR] {
	return streamJoin(left, right, joiner, w, true, true, opts)
}

// joinEmitInterval is how often, at most, a left or outer join looks for
// unmatched records whose windows have closed: Kafka Streams' internal
// emit.interval.ms.kstreams.outer.join.spurious.results.fix default.
const joinEmitInterval = time.Second

// streamJoin adds the stores and processors of a stream-stream join:
// Kafka Streams' KStreamImplJoin. Each side has a processor that buffers
// its records in its window store, joins them with the other side's
// window store, and (left and outer joins) keeps its unmatched records in
// the shared outer store until their windows close; both forward to a
// pass-through merge node, the join's output.
func streamJoin[K, V1, V2, VR any](left Stream[K, V1], right Stream[K, V2], joiner func(K, V1, V2) VR, w window.JoinWindows, leftOuter, rightOuter bool, opts []Option) Stream[K, VR] {
	b := left.b
	o := collect(opts)
	base := o.name
	if base == "" {
		base = b.generatedName("join")
	}
	if right.b != b {
		b.errorf(base, "join: the streams come from different builders")
	}
	if joiner == nil {
		b.errorf(base, "join: the joiner is nil")
	}
	if o.retention > 0 {
		b.errorf(base, "WithRetention does not apply to a join: its stores keep records for the join windows' size plus grace, as Kafka Streams requires")
	}
	// After a key change, each changed side is read back through a
	// repartition topic, as Kafka Streams' repartitionForJoin does, so
	// that records with equal keys meet in the same task.
	if left.keyChanged {
		left = GroupedStream[K, V1]{s: left, opts: options{name: base + "-left", partitions: o.partitions}}.input(base + "-left")
	}
	if right.keyChanged {
		right = GroupedStream[K, V2]{s: right, opts: options{name: base + "-right", partitions: o.partitions}}.input(base + "-right")
	}

	storeBase := o.store
	if storeBase == "" {
		storeBase = base
	}
	thisSuffix, otherSuffix := "-this-join", "-other-join"
	if rightOuter {
		thisSuffix = "-outer-this-join"
	}
	if leftOuter {
		otherSuffix = "-outer-other-join"
	}
	thisStore, otherStore := storeBase+thisSuffix, storeBase+otherSuffix
	outerStore := ""
	if leftOuter {
		if rightOuter {
			outerStore = storeBase + "-outer-shared-join-store"
		} else {
			outerStore = storeBase + "-left-shared-join-store"
		}
	}

	keys := left.keys
	if keys == nil {
		keys = right.keys
	}
	storeOK := keys != nil && left.values != nil && right.values != nil
	if !storeOK {
		b.errorf(base, "a join buffers both streams in window stores, which need a key serde and both value serdes: set them with WithSerdes")
	}
	before, after := w.BeforeAfter()
	// A join store's windows have the size before+after (Kafka Streams'
	// JoinWindows.size); eddy's window stores need a positive size, which
	// only names the end of the windows they iterate, and a retention of
	// at least that size. For windows of size zero with no grace, a
	// retention of one millisecond keeps exactly the records at the
	// store's stream time, as a retention of zero does in Kafka Streams.
	cfg := state.WindowStoreConfig{WindowSize: max(w.Size(), time.Millisecond), Retention: max(w.Retention(), time.Millisecond)}
	if storeOK {
		declareJoinWindowStore(b, thisStore, o, keys, left.values, cfg)
		declareJoinWindowStore(b, otherStore, o, keys, right.values, cfg)
		if outerStore != "" {
			b.declareStore(outerStore, o, func(raw state.RawStore, topic string) any {
				return &outerJoinStore{kv: state.NewKeyValueStore(outerStore, topic, raw, serde.Bytes(), serde.Serde[[][]byte](byteListSerde{})), topic: topic}
			})
		}
	}

	times := &joinTimes{m: map[*task.Task]*joinTime{}}
	shape := joinShape{
		windowsBeforeMs: before.Milliseconds(), windowsAfterMs: after.Milliseconds(), graceMs: w.Grace().Milliseconds(),
		outerStore: outerStore,
	}
	stores := []string{thisStore, otherStore}
	if outerStore != "" {
		stores = append(stores, outerStore)
	}
	leftName, rightName := base+thisSuffix, base+otherSuffix
	leftNode := addJoinSide(b, leftName, left.n, stores, times, func() *joinSide[K, V1, V2, VR] {
		return &joinSide[K, V1, V2, VR]{
			joinShape: shape, thisStore: thisStore, otherStore: otherStore, thisLeft: true, outer: leftOuter,
			beforeMs: shape.windowsBeforeMs, afterMs: shape.windowsAfterMs,
			joiner: joiner, keys: keys, thisValues: left.values, otherValues: right.values,
		}
	})
	rightNode := addJoinSide(b, rightName, right.n, stores, times, func() *joinSide[K, V2, V1, VR] {
		return &joinSide[K, V2, V1, VR]{
			joinShape: shape, thisStore: otherStore, otherStore: thisStore, thisLeft: false, outer: rightOuter,
			beforeMs: shape.windowsAfterMs, afterMs: shape.windowsBeforeMs,
			joiner: func(k K, r V2, l V1) VR { return joiner(k, l, r) }, keys: keys, thisValues: right.values, otherValues: left.values,
		}
	})
	merge := addProcessor(b, "join-merge", options{name: base + "-merge"}, []*node{leftNode, rightNode}, nil, processor.Func(func(ctx processor.Context[K, VR], r processor.Record[K, VR]) error {
		return ctx.Forward(r)
	}))
	kind := "inner"
	switch {
	case leftOuter && rightOuter:
		kind = "outer"
	case leftOuter:
		kind = "left"
	}
	leftNode.detail = fmt.Sprintf("%s join, left side, windows: %v", kind, w)
	rightNode.detail = fmt.Sprintf("%s join, right side, windows: %v", kind, w)
	return Stream[K, VR]{b: b, n: merge, keys: keys}
}

// declareJoinWindowStore declares the window store that buffers one side
// of a join. Kafka Streams' join stores retain duplicates (a sequence
// number in each key); here the value of a key and timestamp is the list
// of that side's values with them, in arrival order.
func declareJoinWindowStore[K, V any](b *Builder, name string, o options, keys serde.Serde[K], values serde.Serde[V], cfg state.WindowStoreConfig) {
	list := serde.Serde[[]V](listSerde[V]{values})
	b.declareStoreOf(name, o, state.KindWindow, cfg.Retention, func(raw state.RawStore, topic string) any {
		s, err := state.NewWindowStore(name, topic, raw, keys, list, cfg)
		if err != nil {
			panic(err) // the configuration is valid by construction
		}
		return s
	})
}

// addJoinSide adds the processor node of one side of a join. Its
// instances in a task share that task's joinTime with the other side's.
func addJoinSide[K, VT, VO, VR any](b *Builder, name string, parent *node, stores []string, times *joinTimes, newSide func() *joinSide[K, VT, VO, VR]) *node {
	n := b.addNode(kindProcessor, "join", name, []*node{parent})
	n.stores = stores
	n.instantiate = func(t *task.Task, _ func(string, bool) string, kids []any) any {
		p := newSide()
		p.time = times.get(t)
		p.release = func() { times.release(t) }
		return task.NewProcessorNode(t, n.name, processor.Processor[K, VT, K, VR](p), downstreams[K, VR](kids), stores)
	}
	return n
}

// joinTime is the time both sides of a join share within a task, Kafka
// Streams' KStreamImplJoin.TimeTracker.
type joinTime struct {
	// streamTime is the largest timestamp either side has seen.
	streamTime int64
	// minTime is a lower bound of the timestamps in the outer store
	// (math.MaxInt64: unknown, as after a restart).
	minTime int64
	// nextEmit is the wall-clock time (Unix ms) before which the outer
	// store is not looked at again.
	nextEmit int64
}

// joinTimes holds the joinTime of each task running a join. Tasks run on
// different goroutines, hence the lock.
type joinTimes struct {
	mu sync.Mutex
	m  map[*task.Task]*joinTime
}

func (j *joinTimes) get(t *task.Task) *joinTime {
	j.mu.Lock()
	defer j.mu.Unlock()
	jt, ok := j.m[t]
	if !ok {
		jt = &joinTime{streamTime: noStreamTime, minTime: math.MaxInt64}
		j.m[t] = jt
	}
	return jt
}

func (j *joinTimes) release(t *task.Task) {
	j.mu.Lock()
	defer j.mu.Unlock()
	delete(j.m, t)
}

// joinShape is what both sides of a join know of its windows.
type joinShape struct {
	// windowsBeforeMs and windowsAfterMs are the join windows' bounds as
	// seen from the left side; graceMs their grace period.
	windowsBeforeMs, windowsAfterMs, graceMs int64
	// outerStore is the shared store of unmatched records ("" for an
	// inner join).
	outerStore string
}

// joinSide is the processor of one side ("this") of a stream-stream join,
// Kafka Streams' KStreamKStreamJoinLeftSide and RightSide.
type joinSide[K, VT, VO, VR any] struct {
	joinShape
	thisStore, otherStore string
	// thisLeft says that this is the left side.
	thisLeft bool
	// outer says that this side's unmatched records are emitted.
	outer bool
	// beforeMs and afterMs bound this side's window: a record at t joins
	// the other side's records in [t-beforeMs, t+afterMs].
	beforeMs, afterMs int64
	// joiner takes this side's value first.
	joiner      func(K, VT, VO) VR
	keys        serde.Serde[K]
	thisValues  serde.Serde[VT]
	otherValues serde.Serde[VO]

	time    *joinTime
	release func()

	ctx    processor.Context[K, VR]
	this   state.WindowStore[K, []VT]
	other  state.WindowStore[K, []VO]
	shared *outerJoinStore
}

func (p *joinSide[K, VT, VO, VR]) Init(ctx processor.Context[K, VR]) error {
	p.ctx = ctx
	var err error
	if p.this, err = state.Window[K, []VT](ctx, p.thisStore); err != nil {
		return err
	}
	if p.other, err = state.Window[K, []VO](ctx, p.otherStore); err != nil {
		return err
	}
	if p.outerStore != "" {
		s, err := ctx.Store(p.outerStore)
		if err != nil {
			return err
		}
		shared, ok := s.(*outerJoinStore)
		if !ok {
			return fmt.Errorf("store %q is a %T, not a join's outer store", p.outerStore, s)
		}
		p.shared = shared
	}
	return nil
}

func (p *joinSide[K, VT, VO, VR]) Process(r processor.Record[K, VT]) error {
	ts := r.Timestamp.UnixMilli()
	jt := p.time
	jt.streamTime = max(jt.streamTime, ts)
	switch {
	case p.outer && r.KeyIsNull() && !r.ValueIsNull():
		// Kafka Streams (KIP-962): a left or outer join emits a record
		// with a null key at once, as it can never join.
		var none VO
		return p.ctx.Forward(processor.Record[K, VR]{Key: r.Key, NullKey: true, Value: p.joiner(r.Key, r.Value, none), Timestamp: r.Timestamp, Headers: r.Headers})
	case r.KeyIsNull():
		drop(p.ctx, task.DropNullKey)
		return nil
	case r.ValueIsNull():
		drop(p.ctx, task.DropNullValue)
		return nil
	case ts+p.afterMs+p.graceMs < jt.streamTime:
		// The record's window has closed: every record it could join
		// that was not late has been matched or emitted unmatched.
		dropLate(p.ctx)
		return nil
	}
	vs, _, err := p.this.Fetch(r.Key, r.Timestamp)
	if err != nil {
		return err
	}
	if _, err := p.this.Put(r.Key, append(vs, r.Value), r.Timestamp); err != nil {
		return err
	}
	if p.shared != nil && ts == jt.streamTime {
		if err := p.emitNonJoined(r); err != nil {
			return err
		}
	}
	it, err := p.other.FetchRange(r.Key, time.UnixMilli(max(0, ts-p.beforeMs)), time.UnixMilli(max(0, ts+p.afterMs)))
	if err != nil {
		return err
	}
	matched, err := p.joinAll(r, ts, it)
	if cerr := it.Close(); err == nil {
		err = cerr
	}
	if err != nil || matched || !p.outer {
		return err
	}
	// Unmatched: wait in the outer store until the window closes (Kafka
	// Streams emits a record at once if its window's end, without the
	// grace period, has passed: KAFKA-19536; eddy waits out the grace).
	jt.minTime = min(jt.minTime, ts)
	kb, err := p.keys.Serialize(p.shared.topic, r.Key)
	if err != nil {
		return err
	}
	vb, err := p.thisValues.Serialize(p.shared.topic, r.Value)
	if err != nil {
		return err
	}
	return p.shared.add(outerKey(ts, p.thisLeft, kb), vb)
}

// joinAll forwards the join of r with every record of it, and removes
// those records from the outer store: they have a partner now.
func (p *joinSide[K, VT, VO, VR]) joinAll(r processor.Record[K, VT], ts int64, it state.WindowIterator[K, []VO]) (bool, error) {
	matched := false
	var kb []byte
	for it.Next() {
		otherTs := it.Key().Window.StartMs()
		for _, ov := range it.Value() {
			matched = true
			if err := p.ctx.Forward(processor.Record[K, VR]{Key: r.Key, Value: p.joiner(r.Key, r.Value, ov), Timestamp: time.UnixMilli(max(ts, otherTs)), Headers: r.Headers}); err != nil {
				return matched, err
			}
		}
		if p.shared != nil {
			if kb == nil {
				var err error
				if kb, err = p.keys.Serialize(p.shared.topic, r.Key); err != nil {
					return matched, err
				}
			}
			if err := p.shared.kv.Delete(outerKey(otherTs, !p.thisLeft, kb)); err != nil {
				return matched, err
			}
		}
	}
	return matched, it.Err()
}

// emitNonJoined forwards the unmatched records of the outer store whose
// windows have closed, and removes them, as Kafka Streams'
// emitNonJoinedOuterRecords: at most once per joinEmitInterval of
// wall-clock time, in the store's order (timestamp, then right before
// left, then key), stopping once both sides have a record whose window is
// still open. Each carries its own timestamp and r's headers.
func (p *joinSide[K, VT, VO, VR]) emitNonJoined(r processor.Record[K, VT]) error {
	jt := p.time
	// Nothing can have closed yet. (A minTime unknown after a restart
	// lets the store be looked at, as Kafka Streams' overflowing sum does.)
	if jt.minTime != math.MaxInt64 && jt.minTime+p.afterMs+p.graceMs >= jt.streamTime {
		return nil
	}
	now := p.ctx.WallClock().UnixMilli()
	if now < jt.nextEmit {
		return nil
	}
	jt.nextEmit = now + joinEmitInterval.Milliseconds()
	jt.minTime = math.MaxInt64

	it, err := p.shared.kv.All()
	if err != nil {
		return err
	}
	var emitted [][]byte
	err = func() error {
		defer it.Close()
		leftOpen, rightOpen := false, false
		for it.Next() {
			key := it.Key()
			ts, isLeft, kb, err := splitOuterKey(key)
			if err != nil {
				return err
			}
			jt.minTime = ts
			if leftOpen && rightOpen {
				break
			}
			lookback := p.windowsBeforeMs
			if isLeft {
				lookback = p.windowsAfterMs
			}
			if ts+lookback+p.graceMs >= jt.streamTime {
				if isLeft {
					leftOpen = true
				} else {
					rightOpen = true
				}
				continue
			}
			k, err := p.keys.Deserialize(p.shared.topic, kb)
			if err != nil {
				return err
			}
			for _, vb := range it.Value() {
				var out VR
				if isLeft == p.thisLeft {
					v, err := p.thisValues.Deserialize(p.shared.topic, vb)
					if err != nil {
						return err
					}
					var none VO
					out = p.joiner(k, v, none)
				} else {
					v, err := p.otherValues.Deserialize(p.shared.topic, vb)
					if err != nil {
						return err
					}
					var none VT
					out = p.joiner(k, none, v)
				}
				if err := p.ctx.Forward(processor.Record[K, VR]{Key: k, Value: out, Timestamp: time.UnixMilli(ts), Headers: r.Headers}); err != nil {
					return err
				}
			}
			emitted = append(emitted, append([]byte(nil), key...))
		}
		return it.Err()
	}()
	if err != nil {
		return err
	}
	for _, key := range emitted {
		if err := p.shared.kv.Delete(key); err != nil {
			return err
		}
	}
	return nil
}

func (p *joinSide[K, VT, VO, VR]) Close() error {
	p.release()
	return nil
}

// drop reports that the processor of ctx dropped its record for reason.
func drop[K, V any](ctx processor.Context[K, V], reason task.DropReason) {
	if d, ok := ctx.(task.Dropper); ok {
		d.Drop(reason)
	}
}

// outerJoinStore is the store a left or outer join keeps its unmatched
// records in until their windows close (Kafka Streams' "shared" outer
// join store, a list-value store keyed by TimestampedKeyAndJoinSide). Its
// keys are outerKey's; its values the list of the serialized values of
// one side's records with that key and timestamp.
type outerJoinStore struct {
	kv    state.KeyValueStore[[]byte, [][]byte]
	topic string
}

// add appends v to the values of key.
func (s *outerJoinStore) add(key, v []byte) error {
	vs, _, err := s.kv.Get(key)
	if err != nil {
		return err
	}
	return s.kv.Put(key, append(vs, v))
}

// outerKey is the outer store's key of a record: its timestamp (8 bytes,
// big-endian, the sign bit flipped so that the order is the timestamps'),
// its side (1 left, 0 right, as Kafka Streams' serializer), its key.
func outerKey(ts int64, left bool, key []byte) []byte {
	b := make([]byte, 9, 9+len(key))
	binary.BigEndian.PutUint64(b, uint64(ts)^(1<<63))
	if left {
		b[8] = 1
	}
	return append(b, key...)
}

var errBadOuterKey = errors.New("topology: a join's outer store holds a malformed key: reset the application's state")

func splitOuterKey(b []byte) (ts int64, left bool, key []byte, err error) {
	if len(b) < 9 {
		return 0, false, nil, errBadOuterKey
	}
	return int64(binary.BigEndian.Uint64(b) ^ (1 << 63)), b[8] == 1, b[9:], nil
}

// byteListSerde serializes a list of byte strings, each behind its length
// (an unsigned varint).
type byteListSerde struct{}

func (byteListSerde) Serialize(_ string, vs [][]byte) ([]byte, error) {
	var out []byte
	for _, v := range vs {
		out = binary.AppendUvarint(out, uint64(len(v)))
		out = append(out, v...)
	}
	if out == nil {
		out = []byte{}
	}
	return out, nil
}

func (byteListSerde) Deserialize(topic string, b []byte) ([][]byte, error) {
	var out [][]byte
	for len(b) > 0 {
		n, w := binary.Uvarint(b)
		if w <= 0 || uint64(len(b)-w) < n {
			return nil, &serde.Error{Serde: "join value list", Topic: topic, Err: fmt.Errorf("truncated list of %d bytes", len(b))}
		}
		out = append(out, b[w:w+int(n)])
		b = b[w+int(n):]
	}
	return out, nil
}

// listSerde serializes a list of values with values, as byteListSerde
// lays the list out.
type listSerde[V any] struct{ values serde.Serde[V] }

func (s listSerde[V]) Serialize(topic string, vs []V) ([]byte, error) {
	raw := make([][]byte, len(vs))
	for i, v := range vs {
		b, err := s.values.Serialize(topic, v)
		if err != nil {
			return nil, err
		}
		raw[i] = b
	}
	return byteListSerde{}.Serialize(topic, raw)
}

func (s listSerde[V]) Deserialize(topic string, b []byte) ([]V, error) {
	raw, err := byteListSerde{}.Deserialize(topic, b)
	if err != nil {
		return nil, err
	}
	out := make([]V, len(raw))
	for i, r := range raw {
		if out[i], err = s.values.Deserialize(topic, r); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// copartitionErrors reports each sub-topology that reads repartition
// topics whose partition counts are set (WithPartitions) and differ: its
// tasks read partition p of every source topic, so a join (or any
// sub-topology) over them could not meet its keys. Counts that come from
// input topics are known only at start, where the engine checks them.
func (t *Topology) copartitionErrors() []error {
	set := map[string]int{} // repartition topic -> partitions set by its sink
	for _, st := range t.subs {
		for _, n := range st.nodes {
			if n.kind == kindSink && n.internal && n.repartitionPartitions > 0 {
				set[n.topics[0]] = n.repartitionPartitions
			}
		}
	}
	var errs []error
	for _, st := range t.subs {
		var first *node
		var parts []string
		counts := map[int]bool{}
		for _, n := range st.nodes {
			if n.kind != kindSource || !n.internal {
				continue
			}
			if c, ok := set[n.topics[0]]; ok {
				if first == nil {
					first = n
				}
				counts[c] = true
				parts = append(parts, fmt.Sprintf("%s has %d", n.topics[0], c))
			}
		}
		if len(counts) > 1 {
			errs = append(errs, &NodeError{Node: first.name, Msg: fmt.Sprintf("sub-topology %d reads co-partitioned repartition topics with different partition counts (%s): a join needs equal counts; give them the same WithPartitions", st.id, strings.Join(parts, ", "))})
		}
	}
	return errs
}
