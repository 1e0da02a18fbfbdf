package kafkabroker

import "syscall"

// childProcAttr makes a child process (the broker JVM, mvn) die with us:
// Pdeathsig delivers SIGKILL to it when the thread that started it exits, and
// Go's runtime does not end threads of goroutines that are not locked to
// them, so in practice that is when this process exits, however it exits. Its
// own process group keeps a terminal's Ctrl-C away from it, so that Close
// alone decides how it stops.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
}
