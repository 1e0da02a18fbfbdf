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
// Nothing here performs I/O or reads a clock. Time reaches a processor
// through record timestamps (stream time) and through the ticks the driver
// gives the task (wall-clock time), which is what lets eddytest drive the
// same code deterministically.
package processor
