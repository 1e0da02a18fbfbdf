package topology

import "github.com/eddystream/eddy/processor"

// oldValues says whether a table node forwards the old value with each
// update, as Kafka Streams' sendOldValues, which decides what Filter
// forwards. A node whose Table has a nil oldValues (an aggregation, or a
// TableFrom with a StoreName) reads old values from its store and always
// forwards them. For the others the flag is set while the graph is built
// and read when tasks are built, after Build.
type oldValues struct {
	send bool
	// source marks a TableFrom whose store the user did not name: Kafka
	// Streams sends its old values only when a downstream forces it.
	source bool
	// parent is the table a Filter or MapTableValues derives from.
	parent *oldValues
	// join marks a table-table join, which reads both sides: it sends old
	// values by forcing both to (Kafka Streams'
	// KTableKTableAbstractJoin.enableSendingOldValues).
	join  bool
	sides [2]*oldValues
}

// enableOldValues asks table node o to forward old values and reports
// whether it will, as Kafka Streams' KTableImpl.enableSendingOldValues:
// force is set by a downstream that cannot do without them (a table
// GroupBy).
func enableOldValues(o *oldValues, force bool) bool {
	switch {
	case o == nil || o.send:
		return true
	case o.source:
		if !force {
			return false
		}
	case o.join:
		enableOldValues(o.sides[0], true)
		enableOldValues(o.sides[1], true)
	case !enableOldValues(o.parent, force):
		return false
	}
	o.send = true
	return true
}

// isNull reports whether v is a Go nil (of a pointer, slice, map or
// interface type), which the DSL takes for a null returned by a user
// function.
func isNull[V any](v V) bool { return processor.Record[struct{}, V]{Value: v}.ValueIsNull() }
