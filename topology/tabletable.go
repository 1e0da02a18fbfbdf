package topology

import (
	"fmt"
	"slices"
	"time"

	"github.com/eddystream/eddy/internal/task"
	"github.com/eddystream/eddy/processor"
	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/state"
)

// JoinTables joins two tables on their keys, as Kafka Streams'
// KTable.join(KTable): the result is a table holding joiner(key, l, r)
// for every key that both tables hold, kept up to date as either side
// changes. An update of one side looks up the other side's value of its
// key and, if there is one, forwards the key's new joined value; a
// deletion on either side deletes the joined key. Each result carries the
// larger timestamp of the two values joined. A nil result of joiner (of
// a pointer, slice, map or interface type) deletes the key, as a null
// does in Kafka Streams.
//
// Both tables must be materialized (an aggregation, TableFrom) or derived
// from materialized tables (Filter, MapTableValues, another join): each
// side reads the other through its store. They therefore share one
// sub-topology, and their topics must have the same number of partitions
// (checked at start).
//
// valueSerde is the serde of the joined values: needed when the result is
// materialized, and by the operations that need one downstream (nil when
// unknown). Options: Named (the join's node; its two sides are
// "<name>-join-this" and "<name>-join-other"), StoreName, which
// materializes the result in a timestamped key-value store of that name
// (Kafka Streams' Materialized.as), and the store options InMemory,
// WithBackend, WithoutLogging, WithChangelogConfig and WithCaching, any of
// which also materializes it (under a generated name without StoreName).
// An unmaterialized result is read, by a later join or a stream-table
// join, through both tables' stores.
func JoinTables[K, V1, V2, VR any](left Table[K, V1], right Table[K, V2], joiner func(K, V1, V2) VR, valueSerde serde.Serde[VR], opts ...Option) Table[K, VR] {
	return tableJoin(left, right, joiner, valueSerde, false, false, opts)
}

// LeftJoinTables is JoinTables that also holds a key the right table
// does not have, as joiner(key, l, zero V2), as Kafka Streams'
// KTable.leftJoin(KTable): the zero value of V2 stands for Kafka Streams'
// null (nil for a pointer, map, slice or interface type). A key the right
// table deletes is updated to that result; one the left table deletes is
// deleted. Such a result carries the left value's timestamp. Options as
// for JoinTables.
func LeftJoinTables[K, V1, V2, VR any](left Table[K, V1], right Table[K, V2], joiner func(K, V1, V2) VR, valueSerde serde.Serde[VR], opts ...Option) Table[K, VR] {
	return tableJoin(left, right, joiner, valueSerde, true, false, opts)
}

// OuterJoinTables is LeftJoinTables in both directions, as Kafka Streams'
// KTable.outerJoin(KTable): a key only the right table has is held as
// joiner(key, zero V1, r), and a key is deleted only when neither table
// has it. Options as for JoinTables.
func OuterJoinTables[K, V1, V2, VR any](left Table[K, V1], right Table[K, V2], joiner func(K, V1, V2) VR, valueSerde serde.Serde[VR], opts ...Option) Table[K, VR] {
	return tableJoin(left, right, joiner, valueSerde, true, true, opts)
}

// tableJoin adds a table-table join, Kafka Streams' KTableImpl.doJoin: a
// processor per side, each joining the updates of its table with the
// other table's value getter, and a merge node, the result table's node,
// which materializes the result if asked to. leftOuter keeps left values
// without a right partner, rightOuter right values without a left one.
func tableJoin[K, V1, V2, VR any](left Table[K, V1], right Table[K, V2], joiner func(K, V1, V2) VR, valueSerde serde.Serde[VR], leftOuter, rightOuter bool, opts []Option) Table[K, VR] {
	b := left.b
	o := collect(opts)
	prefix := "table-join"
	switch {
	case rightOuter:
		prefix = "table-outer-join"
	case leftOuter:
		prefix = "table-left-join"
	}
	base := o.name
	if base == "" {
		base = b.generatedName(prefix)
	}
	if right.b != b {
		b.errorf(base, "the tables of a join come from different builders")
	}
	if joiner == nil {
		b.errorf(base, "join: the joiner is nil")
	}
	// A left or outer join tells a deletion of a key its table had from
	// one of a key it never had by the old value: the outer sides must
	// send theirs, as Kafka Streams forces them to.
	if leftOuter {
		enableOldValues(left.old, true)
	}
	if rightOuter {
		enableOldValues(right.old, true)
	}
	old := &oldValues{join: true, sides: [2]*oldValues{left.old, right.old}}

	getLeft, getRight := left.getter(), right.getter()
	var leftStores, rightStores []string
	if getLeft != nil {
		leftStores = getLeft.stores
	}
	if getRight != nil {
		rightStores = getRight.stores
	}
	// Each side reads the other's stores (KTableKTableJoinNode connects
	// them so).
	thisNode := addProcessor(b, prefix, options{name: base + "-join-this"}, []*node{left.n}, rightStores, func() processor.Processor[K, change[V1], K, change[VR]] {
		return &tableJoinSide[K, V1, V2, VR]{
			other: getRight, joiner: joiner, otherOptional: leftOuter, thisOptional: rightOuter, sendOld: old.send,
		}
	})
	otherNode := addProcessor(b, prefix, options{name: base + "-join-other"}, []*node{right.n}, leftStores, func() processor.Processor[K, change[V2], K, change[VR]] {
		return &tableJoinSide[K, V2, V1, VR]{
			other: getLeft, joiner: func(k K, r V2, l V1) VR { return joiner(k, l, r) },
			otherOptional: rightOuter, thisOptional: leftOuter, sendOld: old.send,
		}
	})
	thisNode.detail = "table: " + fmt.Sprint(rightStores)
	otherNode.detail = "table: " + fmt.Sprint(leftStores)
	if getLeft == nil || getRight == nil {
		b.errorf(base, "a table-table join reads each table through its store: join tables from an aggregation or TableFrom, or derived from those with Filter, MapTableValues or a join")
	}

	keys := left.keys
	if keys == nil {
		keys = right.keys
	}
	store := ""
	if o.store != "" || o.backend != nil || o.noLogging || o.changelog != nil || o.cached {
		store = o.store
		if store == "" {
			store = b.generatedName(prefix + "-store")
		}
		if keys == nil || valueSerde == nil {
			b.errorf(base, "a materialized join result needs a key serde (from either table) and the joined values' serde (valueSerde)")
			store = ""
		} else if decl := b.declareStore(store, o, func(raw state.RawStore, topic string) any {
			return newTimestampedStore(store, topic, raw, keys, valueSerde)
		}); decl != nil {
			decl.timestamped = true
		}
	}
	var mergeStores []string
	if store != "" {
		mergeStores = []string{store}
	}
	merge := addProcessor(b, prefix, options{name: base}, []*node{thisNode, otherNode}, mergeStores, func() processor.Processor[K, change[VR], K, change[VR]] {
		return &tableJoinMerge[K, VR]{store: store, sendOld: old.send}
	})
	out := Table[K, VR]{b: b, n: merge, keys: keys, values: valueSerde, store: store, old: old}
	if store == "" {
		out.get = joinGetter(getLeft, getRight, joiner, leftOuter, rightOuter)
	}
	return out
}

// joinGetter returns the getter of an unmaterialized join result, Kafka
// Streams' KTableKTable{Inner,Left,Outer}JoinValueGetter: it joins both
// tables' current values of a key, with the larger of their timestamps.
func joinGetter[K, V1, V2, VR any](left *valueGetter[K, V1], right *valueGetter[K, V2], joiner func(K, V1, V2) VR, leftOuter, rightOuter bool) *valueGetter[K, VR] {
	if left == nil || right == nil {
		return nil
	}
	stores := slices.Clone(left.stores)
	for _, s := range right.stores {
		if !slices.Contains(stores, s) {
			stores = append(stores, s)
		}
	}
	return &valueGetter[K, VR]{stores: stores, open: func(ctx state.StoreGetter) (lookup[K, VR], error) {
		getLeft, err := left.open(ctx)
		if err != nil {
			return nil, err
		}
		getRight, err := right.open(ctx)
		if err != nil {
			return nil, err
		}
		return func(k K) (VR, int64, bool, error) {
			var zero VR
			l, lts, lok, err := getLeft(k)
			if err != nil || (!lok && !rightOuter) {
				return zero, noTimestamp, false, err
			}
			r, rts, rok, err := getRight(k)
			if err != nil || (!rok && !leftOuter) || (!lok && !rok) {
				return zero, noTimestamp, false, err
			}
			ts := noTimestamp
			if lok {
				ts = lts
			}
			if rok {
				ts = max(ts, rts)
			}
			out := joiner(k, l, r)
			if isNull(out) {
				return zero, noTimestamp, false, nil
			}
			return out, ts, true, nil
		}, nil
	}}
}

// tableJoinSide joins the updates of one table ("this") with the other
// table's values, one processor of Kafka Streams' KTableKTableInnerJoin,
// LeftJoin, RightJoin or OuterJoin. thisOptional says whether a result
// may lack this side's value (the other side is outer), otherOptional
// whether it may lack the other's. The joiner takes this side's value
// first.
type tableJoinSide[K, VT, VO, VR any] struct {
	other                       *valueGetter[K, VO]
	joiner                      func(K, VT, VO) VR
	thisOptional, otherOptional bool
	sendOld                     bool
	ctx                         processor.Context[K, change[VR]]
	lookup                      lookup[K, VO]
}

func (p *tableJoinSide[K, VT, VO, VR]) Init(ctx processor.Context[K, change[VR]]) error {
	get, err := p.other.open(ctx)
	if err != nil {
		return err
	}
	p.ctx, p.lookup = ctx, get
	return nil
}

func (p *tableJoinSide[K, VT, VO, VR]) Process(r processor.Record[K, change[VT]]) error {
	if r.KeyIsNull() {
		drop(p.ctx, task.DropNullKey)
		return nil
	}
	c := r.Value
	other, ots, found, err := p.lookup(r.Key)
	if err != nil {
		return err
	}
	ts := r.Timestamp.UnixMilli()
	switch {
	case found:
		ts = max(ts, ots)
	case !p.otherOptional:
		return nil
	case c.deleted && !c.hasOld:
		// Neither side had the key, and neither has it now.
		return nil
	}
	// The result lacks this side's value only where that is allowed and
	// the other side's value makes a result.
	withoutThis := p.thisOptional && found
	var out change[VR]
	if !c.deleted || withoutThis {
		out.value = p.joiner(r.Key, c.value, other)
	}
	out.deleted = (c.deleted && !withoutThis) || isNull(out.value)
	if p.sendOld && (c.hasOld || withoutThis) {
		out.old = p.joiner(r.Key, c.old, other)
		out.hasOld = !isNull(out.old)
	}
	if out.deleted {
		out.value = *new(VR)
	}
	if !out.hasOld {
		out.old = *new(VR)
	}
	at := r.Timestamp
	if ts > at.UnixMilli() {
		at = time.UnixMilli(ts)
	}
	return p.ctx.Forward(processor.Record[K, change[VR]]{Key: r.Key, Value: out, Timestamp: at, Headers: r.Headers})
}

func (p *tableJoinSide[K, VT, VO, VR]) Close() error { return nil }

// tableJoinMerge is the result node of a table-table join, Kafka Streams'
// KTableKTableJoinMerger: it puts each update into the result's store when
// the result is materialized and forwards it, with its old value only if
// a downstream needs old values.
type tableJoinMerge[K, VR any] struct {
	store   string
	sendOld bool
	ctx     processor.Context[K, change[VR]]
	kv      *timestampedStore[K, VR]
}

func (p *tableJoinMerge[K, VR]) Init(ctx processor.Context[K, change[VR]]) error {
	p.ctx = ctx
	if p.store == "" {
		return nil
	}
	kv, err := timestampedStoreOf[K, VR](ctx, p.store)
	if err != nil {
		return err
	}
	p.kv = kv
	return nil
}

func (p *tableJoinMerge[K, VR]) Process(r processor.Record[K, change[VR]]) error {
	if p.kv != nil {
		var err error
		if r.Value.deleted {
			err = p.kv.Delete(r.Key)
		} else {
			err = p.kv.putStamped(r.Key, r.Value.value, r.Timestamp.UnixMilli())
		}
		if err != nil {
			return err
		}
	}
	if !p.sendOld {
		r.Value.old, r.Value.hasOld = *new(VR), false
	}
	return p.ctx.Forward(r)
}

func (p *tableJoinMerge[K, VR]) Close() error { return nil }
