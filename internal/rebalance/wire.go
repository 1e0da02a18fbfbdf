package rebalance

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/eddystream/eddy/processor"
)

// eddy's user data, inside the consumer-protocol envelope, starts with two
// magic bytes and a version byte. The fields that follow are unsigned and
// signed varints, length-prefixed strings and task lists:
//
//	string    uvarint length, bytes
//	task      uvarint sub-topology, uvarint partition
//	task list uvarint count, tasks in strictly increasing order
//
// A later version only appends fields. A reader decodes the fields of the
// versions it knows and ignores what follows them when the version is newer
// than its own; for its own version, trailing bytes are an error.
const (
	magic0 = 0xED
	magic1 = 0xDE
)

// encoder appends eddy's wire primitives to a buffer.
type encoder struct{ buf []byte }

func newEncoder(version uint8) *encoder {
	return &encoder{buf: []byte{magic0, magic1, version}}
}

func (e *encoder) uvarint(v uint64) { e.buf = binary.AppendUvarint(e.buf, v) }
func (e *encoder) varint(v int64)   { e.buf = binary.AppendVarint(e.buf, v) }

func (e *encoder) string(s string) {
	e.uvarint(uint64(len(s)))
	e.buf = append(e.buf, s...)
}

func (e *encoder) task(t processor.TaskID) {
	e.uvarint(uint64(t.Subtopology))
	e.uvarint(uint64(t.Partition))
}

// tasks writes a task list; ts must be sorted, unique and valid.
func (e *encoder) tasks(ts []processor.TaskID) {
	e.uvarint(uint64(len(ts)))
	for _, t := range ts {
		e.task(t)
	}
}

// checkTasks validates tasks for encoding and returns them sorted and
// without duplicates, in a new slice (nil if empty).
func checkTasks(field string, ts []processor.TaskID) ([]processor.TaskID, error) {
	if len(ts) == 0 {
		return nil, nil
	}
	for _, t := range ts {
		if err := checkTask(t); err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
	}
	return sortTasks(slices.Clone(ts)), nil
}

func checkTask(t processor.TaskID) error {
	if t.Subtopology < 0 || t.Subtopology > math.MaxInt32 || t.Partition < 0 {
		return fmt.Errorf("invalid task id %d_%d", t.Subtopology, t.Partition)
	}
	return nil
}

// decoder reads eddy's wire primitives. The first failure sticks: later
// reads return zero values, and err reports the first field that failed.
type decoder struct {
	what string // what is decoded, for errors
	b    []byte
	err  error
}

// header checks the magic bytes and returns the version. A wrong magic wraps
// ErrNotEddy; version 0 wraps ErrMalformed.
func (d *decoder) header() uint8 {
	if len(d.b) < 3 || d.b[0] != magic0 || d.b[1] != magic1 {
		d.err = fmt.Errorf("%w: %s: user data does not start with eddy's magic bytes", ErrNotEddy, d.what)
		return 0
	}
	v := d.b[2]
	d.b = d.b[3:]
	if v == 0 {
		d.err = fmt.Errorf("%w: %s: version 0", ErrMalformed, d.what)
	}
	return v
}

func (d *decoder) fail(field, why string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s: %s: %s", ErrMalformed, d.what, field, why)
	}
}

func (d *decoder) uvarint(field string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(field, "truncated or overlong varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint(field string) int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(field, "truncated or overlong varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// int32 reads a uvarint that must fit a non-negative int32.
func (d *decoder) int32(field string) int32 {
	v := d.uvarint(field)
	if v > math.MaxInt32 {
		d.fail(field, fmt.Sprintf("%d is out of range", v))
		return 0
	}
	return int32(v)
}

// count reads a list length, which cannot exceed the bytes left divided by
// the minimum encoded size of one element: a lying length is rejected before
// anything is allocated for it.
func (d *decoder) count(field string, minElem int) int {
	n := d.uvarint(field)
	if d.err == nil && n > uint64(len(d.b)/minElem) {
		d.fail(field, fmt.Sprintf("count %d exceeds the %d bytes left", n, len(d.b)))
		return 0
	}
	return int(n)
}

func (d *decoder) string(field string) string {
	n := d.uvarint(field)
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.fail(field, fmt.Sprintf("length %d exceeds the %d bytes left", n, len(d.b)))
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) task(field string) processor.TaskID {
	sub := d.int32(field)
	p := d.int32(field)
	return processor.TaskID{Subtopology: int(sub), Partition: p}
}

// tasks reads a task list, which must be strictly increasing.
func (d *decoder) tasks(field string) []processor.TaskID {
	n := d.count(field, 2)
	if n == 0 {
		return nil
	}
	ts := make([]processor.TaskID, 0, n)
	for range n {
		t := d.task(field)
		if d.err != nil {
			return nil
		}
		if len(ts) > 0 && !ts[len(ts)-1].Less(t) {
			d.fail(field, "tasks are not in strictly increasing order")
			return nil
		}
		ts = append(ts, t)
	}
	return ts
}

// end checks that nothing follows the fields of a version the reader knows
// in full; for a newer version the rest is fields the reader cannot know.
func (d *decoder) end(version, known uint8) {
	if d.err == nil && version <= known && len(d.b) > 0 {
		d.fail("end", fmt.Sprintf("%d unexpected trailing bytes", len(d.b)))
	}
}
