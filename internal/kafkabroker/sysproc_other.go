//go:build !linux && !windows

package kafkabroker

import "syscall"

// childProcAttr puts a child process (the broker JVM, mvn) in its own process
// group, so that a terminal's Ctrl-C does not reach it and Close alone decides
// how it stops. Only Linux can tie a child's life to ours (Pdeathsig); here a
// broker outlives a process that is killed without running Close.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
