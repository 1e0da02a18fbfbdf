// Package metrics (internal) creates and updates the Prometheus metrics
// that eddy exports, as the public package metrics lists them. The engine
// creates them with New, on the Registerer the application was given, and
// updates them through handles: Metrics.Task for a task's series and
// Metrics.Worker for a worker's. A handle holds the children of the metric
// vectors, so the record path counts with one atomic add and no label
// lookup.
//
// The package reads no clock: the engine measures the durations it
// reports. Series of a task, a worker or an input partition that leaves the
// member are deleted (RemoveTask, RemoveWorker, RemoveConsumerLag).
//
// A test checks the public package's list against what New registers and
// lints the names with promlint.
package metrics
