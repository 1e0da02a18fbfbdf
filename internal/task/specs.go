package task

// SpecsOf returns the runtime form of every sub-topology of a
// *topology.Topology for an application id, in sub-topology order: what the
// engine and eddytest build tasks from. Package topology sets it in its
// init, since the conversion reads the topology's unexported graph;
// topology imports this package, so the topology is passed as any.
// Anything else than a built *topology.Topology panics.
//
// It replaces an exported Topology.TaskSpecs method, which made a type of
// this internal package part of topology's API.
var SpecsOf func(top any, appID string) []*Spec
