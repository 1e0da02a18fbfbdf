// Package processor owns eddy's low-level Processor API: the Processor
// interface user code implements, the Context it receives, the Record that
// flows between processors, and punctuation (callbacks on stream time or
// wall-clock time).
//
// Processors are typed with generics: a Processor[KIn, VIn, KOut, VOut]
// receives records with keys of type KIn and values of type VIn and forwards
// records of KOut and VOut to its children. The topology package wires
// processors into a graph; the engine creates one instance of every
// processor per task (per input partition), so a Processor needs no locks:
// one goroutine calls Init, then Process and punctuators, then Close.
//
// # Nulls
//
// A Kafka record's key and value may each be null, which is not the same
// as empty: a record produced without a key has a null key, and a null
// value is a tombstone. A Record carries this through the topology. A
// source gives a null key or value to its children as the zero value of
// its type with Record.NullKey or Record.NullValue set, without calling
// the serde (see package serde); a record forwarded as it is keeps the
// marks; a sink writes a null key or value as a Kafka null. For types that
// have nil (pointers, slices, maps, interfaces) nil is null too: the zero
// value a source gives is nil, and a processor can make a key or value
// null by setting it to nil. Record.KeyIsNull and Record.ValueIsNull test
// both ways. With the Bytes serde a nil []byte is null and an empty one is
// not, exactly as the Kafka client reads them.
//
// Nothing here performs I/O or reads a clock. Time reaches a processor
// through record timestamps (stream time) and through the ticks the driver
// gives the task (wall-clock time), which is what lets eddytest drive the
// same code deterministically.
package processor
