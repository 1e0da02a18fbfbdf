package kafkabroker

import "syscall"

// childProcAttr starts a child process (the broker JVM, mvn) in a process
// group of its own, so that a console's Ctrl-C does not reach it and Close
// alone decides how it stops. Windows cannot tie a child's life to ours
// without a job object; a broker outlives a process that is killed without
// running Close.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{CreationFlags: syscall.CREATE_NEW_PROCESS_GROUP}
}
