//go:build unix

package main

import "syscall"

// ownProcessGroup starts an instance in a process group of its own.
func ownProcessGroup() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
