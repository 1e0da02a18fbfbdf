package task

import (
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddystream/eddy/processor"
	"github.com/eddystream/eddy/serde"
)

// Downstream is a node that receives records of keys K and values V. Parents
// hold their children as Downstreams of their own output types, so records
// flow between nodes without boxing.
type Downstream[K, V any] interface {
	Name() string
	Receive(rec processor.Record[K, V]) error
}

// AddSource registers the entry node for topics: it deserializes records
// with the serdes and forwards them to children, stamped as st says. A
// null key or value (nil) is not deserialized: it becomes the zero value
// with the record's NullKey or NullValue set, so that no serde ever sees
// null (see package serde).
func AddSource[K, V any](t *Task, name string, topics []string, st SourceTime, keys serde.Serde[K], values serde.Serde[V], children []Downstream[K, V]) {
	s := &sourceNode[K, V]{n: name, st: st, keys: keys, values: values, children: children}
	for _, topic := range topics {
		t.sources[topic] = s
	}
	t.AddNode(s)
}

type sourceNode[K, V any] struct {
	n        string
	st       SourceTime
	keys     serde.Serde[K]
	values   serde.Serde[V]
	children []Downstream[K, V]
}

func (s *sourceNode[K, V]) name() string { return s.n }
func (s *sourceNode[K, V]) init() error  { return nil }
func (s *sourceNode[K, V]) close() error { return nil }

func (s *sourceNode[K, V]) timing() SourceTime { return s.st }

func (s *sourceNode[K, V]) deliver(r *kgo.Record, ts int64) error {
	stamp := r.Timestamp
	if stamp.UnixMilli() != ts { // extracted, or the partition time
		stamp = time.UnixMilli(ts)
	}
	rec := processor.Record[K, V]{Timestamp: stamp, NullKey: r.Key == nil, NullValue: r.Value == nil}
	if !rec.NullKey {
		k, err := s.keys.Deserialize(r.Topic, r.Key)
		if err != nil {
			return &deserializeError{fmt.Errorf("key: %w", err)}
		}
		rec.Key = k
	}
	if !rec.NullValue {
		v, err := s.values.Deserialize(r.Topic, r.Value)
		if err != nil {
			return &deserializeError{fmt.Errorf("value: %w", err)}
		}
		rec.Value = v
	}
	if len(r.Headers) > 0 {
		rec.Headers = make([]processor.Header, len(r.Headers))
		for i, h := range r.Headers {
			rec.Headers[i] = processor.Header{Key: h.Key, Value: h.Value}
		}
	}
	for _, c := range s.children {
		if err := c.Receive(rec); err != nil {
			return err
		}
	}
	return nil
}

// NewProcessorNode wires a processor instance into task t with its
// children and the stores it may use, and registers it.
func NewProcessorNode[KIn, VIn, KOut, VOut any](t *Task, name string, p processor.Processor[KIn, VIn, KOut, VOut], children []Downstream[KOut, VOut], stores []string) Downstream[KIn, VIn] {
	n := &procNode[KIn, VIn, KOut, VOut]{t: t, n: name, p: p, children: children, stores: stores}
	t.AddNode(n)
	return n
}

// procNode is a processor in a task's graph, and the processor's Context.
type procNode[KIn, VIn, KOut, VOut any] struct {
	t        *Task
	n        string
	p        processor.Processor[KIn, VIn, KOut, VOut]
	children []Downstream[KOut, VOut]
	stores   []string
}

func (n *procNode[KIn, VIn, KOut, VOut]) name() string { return n.n }
func (n *procNode[KIn, VIn, KOut, VOut]) init() error  { return n.p.Init(n) }
func (n *procNode[KIn, VIn, KOut, VOut]) close() error { return n.p.Close() }

// Name is the node's name.
func (n *procNode[KIn, VIn, KOut, VOut]) Name() string { return n.n }

// Receive runs the processor on rec.
func (n *procNode[KIn, VIn, KOut, VOut]) Receive(rec processor.Record[KIn, VIn]) error {
	return n.p.Process(rec)
}

func (n *procNode[KIn, VIn, KOut, VOut]) ApplicationID() string { return n.t.cfg.ApplicationID }
func (n *procNode[KIn, VIn, KOut, VOut]) TaskID() processor.TaskID {
	return n.t.cfg.ID
}

func (n *procNode[KIn, VIn, KOut, VOut]) Forward(rec processor.Record[KOut, VOut]) error {
	for _, c := range n.children {
		if err := c.Receive(rec); err != nil {
			return err
		}
	}
	return nil
}

func (n *procNode[KIn, VIn, KOut, VOut]) ForwardTo(child string, rec processor.Record[KOut, VOut]) error {
	for _, c := range n.children {
		if c.Name() == child {
			return c.Receive(rec)
		}
	}
	return fmt.Errorf("processor %q has no child %q", n.n, child)
}

func (n *procNode[KIn, VIn, KOut, VOut]) Store(name string) (any, error) {
	if g, ok := n.t.cfg.Globals[name]; ok {
		// As in Kafka Streams, every processor may read a global store
		// without being connected to it.
		return g, nil
	}
	if !slices.Contains(n.stores, name) {
		return nil, fmt.Errorf("processor %q is not connected to store %q: name the store where the processor is added to the topology", n.n, name)
	}
	s, ok := n.t.stores[name]
	if !ok {
		return nil, fmt.Errorf("processor %q: store %q does not exist in task %s", n.n, name, n.t.cfg.ID)
	}
	return s.typed, nil
}

func (n *procNode[KIn, VIn, KOut, VOut]) Schedule(interval time.Duration, typ processor.PunctuationType, fn processor.Punctuator) (processor.Cancellable, error) {
	if interval <= 0 {
		return nil, fmt.Errorf("processor %q: punctuation interval must be positive, got %v", n.n, interval)
	}
	if typ != processor.StreamTime && typ != processor.WallClockTime {
		return nil, fmt.Errorf("processor %q: unknown punctuation type %d", n.n, typ)
	}
	p := &punctuation{node: n.n, typ: typ, interval: interval, fn: fn}
	if typ == processor.StreamTime && n.t.streamTime >= 0 {
		p.due = time.UnixMilli(n.t.streamTime).Add(interval)
	}
	n.t.puncts = append(n.t.puncts, p)
	return p, nil
}

func (n *procNode[KIn, VIn, KOut, VOut]) Origin() (processor.Origin, bool) {
	return n.t.origin, n.t.hasOrigin
}

func (n *procNode[KIn, VIn, KOut, VOut]) StreamTime() time.Time { return n.t.StreamTime() }

func (n *procNode[KIn, VIn, KOut, VOut]) WallClock() time.Time { return n.t.WallClock() }

// Drop reports that the processor dropped the record it is processing
// for reason: the DSL's processors count late records this way (see
// Dropper).
func (n *procNode[KIn, VIn, KOut, VOut]) Drop(reason DropReason) { n.t.dropped(n.n, reason) }

// Dropper is implemented by the processor contexts of a task: a processor
// of the DSL reports a record it drops on purpose through it, with the
// node's name and the record's origin, to Config.OnDrop.
type Dropper interface {
	Drop(reason DropReason)
}

// TopicChooser picks a sink's topic per record.
type TopicChooser[K, V any] func(rec processor.Record[K, V]) string

// NewSink returns a terminal node that serializes records and hands them
// to the task's Output, and registers it. A null key or value
// (processor.Record's KeyIsNull, ValueIsNull) is written as nil without
// calling the serde.
func NewSink[K, V any](t *Task, name string, topic TopicChooser[K, V], keys serde.Serde[K], values serde.Serde[V]) Downstream[K, V] {
	s := &sinkNode[K, V]{t: t, n: name, topic: topic, keys: keys, values: values}
	t.AddNode(s)
	return s
}

type sinkNode[K, V any] struct {
	t      *Task
	n      string
	topic  TopicChooser[K, V]
	keys   serde.Serde[K]
	values serde.Serde[V]
}

func (s *sinkNode[K, V]) name() string { return s.n }
func (s *sinkNode[K, V]) init() error  { return nil }
func (s *sinkNode[K, V]) close() error { return nil }

// Name is the node's name.
func (s *sinkNode[K, V]) Name() string { return s.n }

// Receive serializes rec and emits it.
func (s *sinkNode[K, V]) Receive(rec processor.Record[K, V]) error {
	topic := s.topic(rec)
	if topic == "" {
		return fmt.Errorf("sink %q: the topic chooser returned no topic", s.n)
	}
	var k, v []byte
	var err error
	if !rec.KeyIsNull() {
		if k, err = s.keys.Serialize(topic, rec.Key); err != nil {
			return fmt.Errorf("sink %q: serialize key for %q: %w", s.n, topic, err)
		}
	}
	if !rec.ValueIsNull() {
		if v, err = s.values.Serialize(topic, rec.Value); err != nil {
			return fmt.Errorf("sink %q: serialize value for %q: %w", s.n, topic, err)
		}
	}
	out := &kgo.Record{Topic: topic, Key: k, Value: v, Timestamp: rec.Timestamp}
	if len(rec.Headers) > 0 {
		out.Headers = make([]kgo.RecordHeader, len(rec.Headers))
		for i, h := range rec.Headers {
			out.Headers[i] = kgo.RecordHeader{Key: h.Key, Value: h.Value}
		}
	}
	s.t.cfg.Output(out)
	return nil
}
