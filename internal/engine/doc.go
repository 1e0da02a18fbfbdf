// Package engine owns eddy's driver: the Kafka clients, topic setup, the
// per-worker poll-process-commit loop, task creation, restoration and
// shutdown. It does all the I/O that package task leaves out. The root
// package eddy is its public face; see its documentation for the loop.
package engine
