package task

import (
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddystream/eddy/processor"
	"github.com/eddystream/eddy/state"
)

// Config is what a Task needs besides its Spec.
type Config struct {
	ID            processor.TaskID
	ApplicationID string
	Spec          *Spec
	// Backends holds one restored backend per store of the Spec, by store
	// name. The Task reads and writes them (through an overlay) but never
	// closes them: they belong to the driver, which may build a new Task
	// over the same backends (after an aborted commit) or close them.
	Backends map[string]state.Backend
	// Output receives the records sinks produce, with Partition unset: the
	// producer partitions them by key.
	Output func(*kgo.Record)
	// ChangelogOutput receives changelog records, with Partition set to the
	// task's partition. Nil means Output.
	ChangelogOutput func(*kgo.Record)
	// Errors says which failed input records are skipped rather than
	// failing the task, and where skipped records go. The zero value fails
	// on every error.
	Errors ErrorPolicy
	// OnDrop, if set, is called for every record a node drops on purpose
	// (see DropNulls, SkipOnInvalidTimestamp), for the driver to count and
	// log.
	OnDrop func(Drop)
	// WallClock is the driver's clock, which wall-clock timestamp
	// extractors read (Task.WallClock); nil means time.Now. eddytest sets
	// its own, so that such extractors are tested on its clock.
	WallClock func() time.Time
	// Globals holds the typed view of every global store by name (see
	// GlobalSpec), which any processor of the task may read. The driver
	// owns them and keeps them up to date.
	Globals map[string]any
}

// TopicPartition names one input partition of a task.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// Task is one running instance of a sub-topology. It is used by one
// goroutine at a time.
type Task struct {
	cfg     Config
	stores  map[string]*storeRuntime
	order   []string // store names in Spec order
	sources map[string]source
	nodes   []node
	inited  bool

	// queues holds one queue per input partition; a queue also remembers
	// the offset after its last processed record, which is what to commit.
	queues   map[TopicPartition]*queue
	buffered int

	streamTime int64 // unix ms; -1 until the first record
	origin     processor.Origin
	hasOrigin  bool

	puncts  []*punctuation
	skipped int64
}

// source is the entry point of one topic into the graph: it deserializes
// and forwards.
type source interface {
	name() string
	// timing is how the source stamps its records.
	timing() SourceTime
	// deliver deserializes rec and forwards it stamped with ts (Unix ms).
	deliver(rec *kgo.Record, ts int64) error
}

// node is anything with a lifecycle in the graph, in initialisation order.
type node interface {
	name() string
	init() error
	close() error
}

// New instantiates the task's processors over its backends. The processors
// are not initialised until Init, so that a driver can restore stores
// first.
func New(cfg Config) (*Task, error) {
	t := &Task{
		cfg:        cfg,
		stores:     make(map[string]*storeRuntime, len(cfg.Spec.Stores)),
		sources:    make(map[string]source),
		queues:     make(map[TopicPartition]*queue),
		streamTime: -1,
	}
	for _, spec := range cfg.Spec.Stores {
		b, ok := cfg.Backends[spec.Name]
		if !ok {
			return nil, fmt.Errorf("task %s: no backend for store %q", cfg.ID, spec.Name)
		}
		t.stores[spec.Name] = newStoreRuntime(spec, b)
		t.order = append(t.order, spec.Name)
	}
	if t.cfg.ChangelogOutput == nil {
		t.cfg.ChangelogOutput = cfg.Output
	}
	if err := cfg.Spec.Build(t); err != nil {
		return nil, fmt.Errorf("task %s: %w", cfg.ID, err)
	}
	return t, nil
}

// ID is the task's id.
func (t *Task) ID() processor.TaskID { return t.cfg.ID }

// Init initialises every processor, children before parents (the order
// Build registered them), so that a processor that forwards from Init finds
// its children ready. It is called once, after the stores are restored.
func (t *Task) Init() error {
	if t.inited {
		return nil
	}
	t.inited = true
	for _, n := range t.nodes {
		if err := initNode(n); err != nil {
			return fmt.Errorf("task %s: init %s: %w", t.cfg.ID, n.name(), err)
		}
	}
	return nil
}

// AddNode registers a node of the graph. Init follows the order of
// registration and Close the reverse.
func (t *Task) AddNode(n node) { t.nodes = append(t.nodes, n) }

// Add queues input records of one partition, in offset order.
func (t *Task) Add(recs []*kgo.Record) {
	var q *queue
	for _, r := range recs {
		if q == nil || q.tp.Topic != r.Topic || q.tp.Partition != r.Partition {
			q = t.queue(TopicPartition{r.Topic, r.Partition})
		}
		q.push(r)
		t.buffered++
	}
}

func (t *Task) queue(tp TopicPartition) *queue {
	q := t.queues[tp]
	if q == nil {
		q = &queue{tp: tp, next: -1, partTime: -1, src: t.sources[tp.Topic]}
		t.queues[tp] = q
	}
	return q
}

// Buffered is the number of queued records not yet processed.
func (t *Task) Buffered() int { return t.buffered }

// Skipped is the number of input records dropped by the deserialization
// handler.
func (t *Task) Skipped() int64 { return t.skipped }

// Process processes up to max queued records, each time choosing the queued
// record with the smallest timestamp across the task's input partitions (so
// that joins and aggregations over several inputs see records in time
// order), and fires stream-time punctuators as stream time advances. It
// returns the number of records processed.
//
// A record's timestamp is what its source's extractor returns (SourceTime),
// taken when the record reaches the head of its partition's queue, as
// Kafka Streams' RecordQueue does. A record whose timestamp is invalid is
// skipped (not counted in the result), stamped with its partition's time,
// or fails the task with an *InvalidTimestampError, as its source says.
func (t *Task) Process(max int) (int, error) {
	n := 0
	for n < max && t.buffered > 0 {
		q, err := t.nextQueue()
		if err != nil {
			return n, err
		}
		if q == nil {
			break // the rest were skipped
		}
		ts := q.headTS
		rec := q.pop()
		t.buffered--
		n++
		if err := t.processOne(q, rec, ts); err != nil {
			return n, err
		}
	}
	return n, nil
}

// nextQueue returns the queue whose head has the smallest timestamp, or
// nil when every queue is empty.
func (t *Task) nextQueue() (*queue, error) {
	var best *queue
	for _, q := range t.queues {
		if err := t.stampHead(q); err != nil {
			return nil, err
		}
		if q.len() == 0 {
			continue
		}
		if best == nil || q.headTS < best.headTS {
			best = q
		}
	}
	return best, nil
}

func (t *Task) processOne(q *queue, rec *kgo.Record, ts int64) error {
	src := q.src
	if src == nil {
		return fmt.Errorf("task %s: record from topic %q, which the sub-topology does not read", t.cfg.ID, rec.Topic)
	}
	q.next = rec.Offset + 1
	if ts > q.partTime {
		q.partTime = ts
	}
	if ts > t.streamTime {
		t.streamTime = ts
	}
	t.origin = processor.Origin{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset}
	t.hasOrigin = true
	err := deliver(src, rec, ts)
	t.hasOrigin = false
	if err != nil {
		if err := t.handle(rec, err); err != nil {
			return err
		}
	}
	return t.punctuate(processor.StreamTime, time.UnixMilli(t.streamTime))
}

// Punctuate fires the wall-clock punctuators due at now.
func (t *Task) Punctuate(now time.Time) error {
	return t.punctuate(processor.WallClockTime, now)
}

func (t *Task) punctuate(typ processor.PunctuationType, now time.Time) error {
	for i := 0; i < len(t.puncts); i++ { // punctuators may schedule others
		p := t.puncts[i]
		if p.typ != typ || p.cancelled {
			continue
		}
		if p.due.IsZero() {
			p.due = now.Add(p.interval)
			continue
		}
		if now.Before(p.due) {
			continue
		}
		// Fire once, then skip the intervals that were missed, as Kafka
		// Streams does.
		missed := now.Sub(p.due)/p.interval + 1
		p.due = p.due.Add(missed * p.interval)
		if err := p.fire(now); err != nil {
			err = fmt.Errorf("task %s: %s punctuator of %s: %w", t.cfg.ID, typ, p.node, err)
			if !t.cfg.Errors.SkipProcessingErrors {
				return err
			}
			// As Kafka Streams hands a punctuator's exception to the
			// processing exception handler (KIP-1033): skipped, there is
			// no record to send to the dead-letter topic.
			if t.cfg.Errors.OnSkip != nil {
				t.cfg.Errors.OnSkip(nil, err)
			}
		}
	}
	return nil
}

// deliver hands rec to its source, turning a panic of the code it runs
// (serdes, DSL callbacks, processors) into a *PanicError.
func deliver(src source, rec *kgo.Record, ts int64) (err error) {
	defer recoverPanic(&err)
	return src.deliver(rec, ts)
}

// initNode initialises n, turning a panic into a *PanicError.
func initNode(n node) (err error) {
	defer recoverPanic(&err)
	return n.init()
}

// closeNode closes n, turning a panic into a *PanicError.
func closeNode(n node) (err error) {
	defer recoverPanic(&err)
	return n.close()
}

// Offsets returns, for each input partition the task has processed a
// record of, the next offset to consume: what the driver commits.
func (t *Task) Offsets() map[TopicPartition]int64 {
	out := make(map[TopicPartition]int64, len(t.queues))
	for tp, q := range t.queues {
		if q.next >= 0 {
			out[tp] = q.next
		}
	}
	return out
}

// DropBuffered forgets every queued record (for example those of a
// partition being revoked) and returns how many there were. The
// partitions' times are forgotten too, as Kafka Streams' RecordQueue.clear
// does: the records after the dropped ones will be read again.
func (t *Task) DropBuffered() int {
	n := t.buffered
	for _, q := range t.queues {
		clear(q.recs)
		q.recs, q.pos = q.recs[:0], 0
		q.stamped, q.partTime = false, -1
	}
	t.buffered = 0
	return n
}

// StreamTime is the largest timestamp processed, or the zero Time.
func (t *Task) StreamTime() time.Time {
	if t.streamTime < 0 {
		return time.Time{}
	}
	return time.UnixMilli(t.streamTime)
}

// Close closes the processors (children after parents, in reverse
// initialisation order). The first error is returned; every processor is
// closed regardless. The stores' backends stay open: they belong to the
// driver.
func (t *Task) Close() error {
	var first error
	if t.inited {
		for i := len(t.nodes) - 1; i >= 0; i-- {
			if err := closeNode(t.nodes[i]); err != nil && first == nil {
				first = fmt.Errorf("task %s: close %s: %w", t.cfg.ID, t.nodes[i].name(), err)
			}
		}
	}
	return first
}

// Config returns the configuration the task was built with, for a driver
// that builds a fresh Task over the same backends.
func (t *Task) Config() Config { return t.cfg }

// queue is a FIFO of one input partition's records, with the source that
// reads them and the offset after the last one processed (-1: none yet).
type queue struct {
	tp   TopicPartition
	src  source
	next int64
	recs []*kgo.Record
	pos  int
	// stamped says that headTS is the head record's timestamp (Unix ms),
	// from its source's extractor (stampHead).
	stamped bool
	headTS  int64
	// partTime is the partition time: the largest timestamp of the
	// partition's records processed so far, -1 before the first (Kafka
	// Streams' RecordQueue.partitionTime).
	partTime int64
}

func (q *queue) push(r *kgo.Record) { q.recs = append(q.recs, r) }
func (q *queue) len() int           { return len(q.recs) - q.pos }
func (q *queue) head() *kgo.Record  { return q.recs[q.pos] }

func (q *queue) pop() *kgo.Record {
	q.stamped = false
	r := q.recs[q.pos]
	q.recs[q.pos] = nil
	q.pos++
	if q.pos == len(q.recs) {
		q.recs, q.pos = q.recs[:0], 0
	}
	return r
}

// punctuation is one scheduled punctuator.
type punctuation struct {
	node      string
	typ       processor.PunctuationType
	interval  time.Duration
	due       time.Time // zero: armed on the first tick
	fn        processor.Punctuator
	cancelled bool
}

func (p *punctuation) Cancel() { p.cancelled = true }

// fire calls the punctuator, turning a panic into a *PanicError.
func (p *punctuation) fire(now time.Time) (err error) {
	defer recoverPanic(&err)
	return p.fn(now)
}
