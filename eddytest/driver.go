// Package eddytest owns the in-process topology test driver: pipe records
// into source topics, read what sinks wrote, look into stores and advance
// wall-clock time, with no broker. It runs the same task code as the
// engine (package internal/task), with every topic of one partition, so a
// topology's logic is tested exactly as it runs.
//
// After every piped record the driver processes it to completion (through
// repartition topics too) and commits, as Kafka Streams'
// TopologyTestDriver does: stores are then up to date and their changelog
// records readable like any output topic.
package eddytest

import (
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddystream/eddy/internal/task"
	"github.com/eddystream/eddy/processor"
	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/state"
	"github.com/eddystream/eddy/topology"
)

// Driver runs a topology in memory. It is not safe for concurrent use.
type Driver struct {
	appID string
	tasks []*task.Task
	// backends are the tasks' stores; Close closes them after the tasks.
	backends []state.Backend
	readers  map[string]*task.Task // source topic -> task reading it
	outputs  map[string][]*kgo.Record
	offsets  map[string]int64
	pending  []*kgo.Record // emitted, not yet routed
	now      time.Time
	errors   task.ErrorPolicy
	dropped  map[string]int64 // by reason
	closed   bool

	// globals are the global stores by topic: a record piped or written
	// to the topic is applied to its store at once.
	globals map[string]*task.GlobalStore
	// typedGlobals are the global stores' typed views, by store name.
	typedGlobals map[string]any
	// globalErr is an error applying a record to a global store, which
	// the pipe call in progress returns.
	globalErr error
}

// Option configures a Driver.
type Option func(*Driver)

// WithApplicationID sets the application id that prefixes internal topic
// names (default "eddytest").
func WithApplicationID(id string) Option { return func(d *Driver) { d.appID = id } }

// WithStartTime sets the initial wall-clock time (default 2026-01-01 UTC).
// The wall clock fires wall-clock punctuators and is what
// topology.WallClockTimestamp stamps records with.
func WithStartTime(t time.Time) Option { return func(d *Driver) { d.now = t } }

// WithSkipOnDeserializationError makes the driver skip input records that
// do not deserialize, as the engine's skip handler does. By default such a
// record fails the pipe call.
func WithSkipOnDeserializationError() Option {
	return func(d *Driver) { d.errors.SkipDeserializationErrors = true }
}

// WithSkipOnProcessingError makes the driver skip input records a
// processor fails on, as the engine's skip handler does. By default such a
// record fails the pipe call.
func WithSkipOnProcessingError() Option {
	return func(d *Driver) { d.errors.SkipProcessingErrors = true }
}

// WithDeadLetterTopic sends skipped records to topic, with the headers the
// engine adds; read them with RawOutput.
func WithDeadLetterTopic(topic string) Option {
	return func(d *Driver) { d.errors.DeadLetterTopic = topic }
}

// New creates a driver for top, with one in-memory task per sub-topology,
// and initialises its processors.
func New(top *topology.Topology, opts ...Option) (*Driver, error) {
	d := &Driver{
		appID:   "eddytest",
		readers: map[string]*task.Task{},
		outputs: map[string][]*kgo.Record{},
		offsets: map[string]int64{},
		dropped: map[string]int64{},
		now:     time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	for _, o := range opts {
		o(d)
	}
	d.globals = map[string]*task.GlobalStore{}
	typedGlobals := map[string]any{}
	d.typedGlobals = typedGlobals
	for _, g := range task.GlobalsOf(top, d.appID) {
		b := state.NewMemoryBackend()
		d.backends = append(d.backends, b)
		gs := task.NewGlobalStore(g.Name, b)
		d.globals[g.Topic] = gs
		typedGlobals[g.Name] = g.Typed(gs)
	}
	for _, spec := range task.SpecsOf(top, d.appID) {
		backends := map[string]state.Backend{}
		for _, s := range spec.Stores {
			backends[s.Name] = state.NewMemoryBackend()
			d.backends = append(d.backends, backends[s.Name])
		}
		cfg := task.Config{
			ID:            processor.TaskID{Subtopology: spec.ID},
			ApplicationID: d.appID,
			Spec:          spec,
			Backends:      backends,
			Output:        func(r *kgo.Record) { d.pending = append(d.pending, r) },
			OnDrop:        func(drop task.Drop) { d.dropped[string(drop.Reason)]++ },
			WallClock:     func() time.Time { return d.now },
			Globals:       typedGlobals,
		}
		cfg.Errors = d.errors
		t, err := task.New(cfg)
		if err != nil {
			d.Close()
			return nil, err
		}
		d.tasks = append(d.tasks, t)
		for _, topic := range spec.SourceTopics {
			d.readers[topic] = t
		}
	}
	for _, t := range d.tasks {
		if err := t.Init(); err != nil {
			d.Close()
			return nil, err
		}
	}
	return d, nil
}

// PipeRaw feeds one serialized record into topic and processes it to
// completion.
func (d *Driver) PipeRaw(topic string, key, value []byte, ts time.Time, headers ...kgo.RecordHeader) error {
	if d.closed {
		return errors.New("eddytest: the driver is closed")
	}
	_, read := d.readers[topic]
	if _, global := d.globals[topic]; !read && !global {
		return fmt.Errorf("eddytest: no source or global table reads topic %q", topic)
	}
	d.route(&kgo.Record{Topic: topic, Key: key, Value: value, Timestamp: ts, Headers: headers})
	if err := d.takeGlobalErr(); err != nil {
		return err
	}
	if err := d.drain(); err != nil {
		return err
	}
	return d.commit()
}

// route hands a record to the task reading its topic, or keeps it as
// output.
func (d *Driver) route(r *kgo.Record) {
	if g, ok := d.globals[r.Topic]; ok {
		// A global table's topic updates its store at once, as the
		// engine's updater would, and is also kept as output.
		d.globalErr = errors.Join(d.globalErr, applyGlobal(g, r))
	}
	if t, ok := d.readers[r.Topic]; ok {
		r.Partition = 0
		r.Offset = d.offsets[r.Topic]
		d.offsets[r.Topic]++
		t.Add([]*kgo.Record{r})
		return
	}
	d.outputs[r.Topic] = append(d.outputs[r.Topic], r)
}

// drain processes until no task has queued input and every emitted
// record is routed.
func (d *Driver) drain() error {
	for {
		for len(d.pending) > 0 {
			batch := d.pending
			d.pending = nil
			for _, r := range batch {
				d.route(r)
			}
		}
		busy := false
		for _, t := range d.tasks {
			if t.Buffered() == 0 {
				continue
			}
			busy = true
			if _, err := t.Process(t.Buffered()); err != nil {
				return err
			}
		}
		if !busy && len(d.pending) == 0 {
			return d.takeGlobalErr()
		}
	}
}

func (d *Driver) commit() error {
	for _, t := range d.tasks {
		t.FlushChangelog(d.now)
	}
	for _, r := range d.pending {
		d.route(r)
	}
	d.pending = nil
	for _, t := range d.tasks {
		if err := t.CommitStores(func(string) (int64, bool) { return 0, false }); err != nil {
			return err
		}
	}
	return nil
}

// AdvanceWallClock moves wall-clock time forward by by and fires the
// wall-clock punctuators that fall due.
func (d *Driver) AdvanceWallClock(by time.Duration) error {
	d.now = d.now.Add(by)
	for _, t := range d.tasks {
		if err := t.Punctuate(d.now); err != nil {
			return err
		}
	}
	if err := d.drain(); err != nil {
		return err
	}
	return d.commit()
}

// Now is the driver's wall-clock time.
func (d *Driver) Now() time.Time { return d.now }

// Skipped is the number of input records dropped by the skip handlers.
func (d *Driver) Skipped() int64 {
	var n int64
	for _, t := range d.tasks {
		n += t.Skipped()
	}
	return n
}

// DroppedRecords is the number of records the topology dropped on purpose
// for reason, as the engine counts them in eddy_dropped_records_total:
// "null_key" and "null_value" are the records with a null key or value
// that stream aggregations drop, "invalid_timestamp" the input records
// with an invalid timestamp that a source skips
// (topology.SkipOnInvalidTimestamp).
func (d *Driver) DroppedRecords(reason string) int64 { return d.dropped[reason] }

// RawOutput returns and removes the records written to topic (a sink
// topic or a changelog topic) so far.
func (d *Driver) RawOutput(topic string) []*kgo.Record {
	out := d.outputs[topic]
	delete(d.outputs, topic)
	return out
}

// Close closes every task.
func (d *Driver) Close() error {
	if d.closed {
		return nil
	}
	d.closed = true
	var errs []error
	for _, t := range d.tasks {
		errs = append(errs, t.Close())
	}
	for _, b := range d.backends {
		errs = append(errs, b.Close())
	}
	return errors.Join(errs...)
}

// InputTopic pipes typed records into one source topic.
type InputTopic[K, V any] struct {
	d      *Driver
	topic  string
	keys   serde.Serde[K]
	values serde.Serde[V]
}

// NewInputTopic returns a typed handle to a source topic.
func NewInputTopic[K, V any](d *Driver, topic string, keys serde.Serde[K], values serde.Serde[V]) *InputTopic[K, V] {
	return &InputTopic[K, V]{d: d, topic: topic, keys: keys, values: values}
}

// Pipe feeds a record stamped with the driver's wall-clock time.
func (in *InputTopic[K, V]) Pipe(k K, v V) error { return in.PipeAt(k, v, in.d.now) }

// PipeAt feeds a record with timestamp ts. A nil key or value (of a
// pointer, slice, map or interface type) is fed as a Kafka null.
func (in *InputTopic[K, V]) PipeAt(k K, v V, ts time.Time) error {
	return in.pipe(processor.Record[K, V]{Key: k, Value: v}, ts)
}

// PipeRecord feeds rec with its headers. Its key and value are fed as a
// Kafka null when rec.KeyIsNull or rec.ValueIsNull, so that NullKey and
// NullValue feed nulls of any type. A zero Timestamp stands for the
// driver's wall-clock time.
func (in *InputTopic[K, V]) PipeRecord(rec processor.Record[K, V]) error {
	ts := rec.Timestamp
	if ts.IsZero() {
		ts = in.d.now
	}
	return in.pipe(rec, ts)
}

func (in *InputTopic[K, V]) pipe(rec processor.Record[K, V], ts time.Time) error {
	var kb, vb []byte
	var err error
	if !rec.KeyIsNull() {
		if kb, err = in.keys.Serialize(in.topic, rec.Key); err != nil {
			return err
		}
	}
	if !rec.ValueIsNull() {
		if vb, err = in.values.Serialize(in.topic, rec.Value); err != nil {
			return err
		}
	}
	var headers []kgo.RecordHeader
	for _, h := range rec.Headers {
		headers = append(headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
	}
	return in.d.PipeRaw(in.topic, kb, vb, ts, headers...)
}

// OutputTopic reads typed records from one sink topic.
type OutputTopic[K, V any] struct {
	d      *Driver
	topic  string
	keys   serde.Serde[K]
	values serde.Serde[V]
}

// NewOutputTopic returns a typed handle to a sink topic.
func NewOutputTopic[K, V any](d *Driver, topic string, keys serde.Serde[K], values serde.Serde[V]) *OutputTopic[K, V] {
	return &OutputTopic[K, V]{d: d, topic: topic, keys: keys, values: values}
}

// ReadRecords returns and removes everything written to the topic so
// far, in order. A null key or value is not deserialized: it reads as the
// zero value with NullKey or NullValue set, as sources read it.
func (out *OutputTopic[K, V]) ReadRecords() ([]processor.Record[K, V], error) {
	raw := out.d.RawOutput(out.topic)
	recs := make([]processor.Record[K, V], 0, len(raw))
	for _, r := range raw {
		rec := processor.Record[K, V]{Timestamp: r.Timestamp, NullKey: r.Key == nil, NullValue: r.Value == nil}
		if !rec.NullKey {
			k, err := out.keys.Deserialize(out.topic, r.Key)
			if err != nil {
				return nil, err
			}
			rec.Key = k
		}
		if !rec.NullValue {
			v, err := out.values.Deserialize(out.topic, r.Value)
			if err != nil {
				return nil, err
			}
			rec.Value = v
		}
		for _, h := range r.Headers {
			rec.Headers = append(rec.Headers, processor.Header{Key: h.Key, Value: h.Value})
		}
		recs = append(recs, rec)
	}
	return recs, nil
}

// ReadKeyValues is ReadRecords without timestamps and headers.
func (out *OutputTopic[K, V]) ReadKeyValues() ([]topology.KeyValue[K, V], error) {
	recs, err := out.ReadRecords()
	if err != nil {
		return nil, err
	}
	kvs := make([]topology.KeyValue[K, V], len(recs))
	for i, r := range recs {
		kvs[i] = topology.KV(r.Key, r.Value)
	}
	return kvs, nil
}

// KeyValueStore returns a store of the topology as a typed store, to read
// (or seed) its contents between pipe calls.
func KeyValueStore[K, V any](d *Driver, name string) (state.KeyValueStore[K, V], error) {
	if s, ok := d.typedGlobals[name]; ok {
		kv, ok := s.(state.KeyValueStore[K, V])
		if !ok {
			return nil, fmt.Errorf("eddytest: store %q is a %T", name, s)
		}
		return kv, nil
	}
	for _, t := range d.tasks {
		if s, ok := t.TypedStore(name); ok {
			kv, ok := s.(state.KeyValueStore[K, V])
			if !ok {
				return nil, fmt.Errorf("eddytest: store %q is a %T", name, s)
			}
			return kv, nil
		}
	}
	return nil, fmt.Errorf("eddytest: no store %q in the topology", name)
}

// WindowStore returns the named window store of the topology's first task
// that has it, as processors see it: a windowed aggregation's store reads
// its aggregates without their timestamps.
func WindowStore[K, V any](d *Driver, name string) (state.WindowStore[K, V], error) {
	for _, t := range d.tasks {
		if s, ok := t.TypedStore(name); ok {
			ws, ok := s.(state.WindowStore[K, V])
			if !ok {
				return nil, fmt.Errorf("eddytest: store %q is a %T", name, s)
			}
			return ws, nil
		}
	}
	return nil, fmt.Errorf("eddytest: no store %q in the topology", name)
}

// applyGlobal applies a record of a global table's topic to its store: a
// null value deletes the key, a null key is skipped (as the engine's
// updater does).
func applyGlobal(g *task.GlobalStore, r *kgo.Record) error {
	if r.Key == nil {
		return nil
	}
	return g.Apply([]state.Write{{Key: r.Key, Value: r.Value, Delete: r.Value == nil}})
}

func (d *Driver) takeGlobalErr() error {
	err := d.globalErr
	d.globalErr = nil
	return err
}
