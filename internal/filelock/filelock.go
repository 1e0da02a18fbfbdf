// Package filelock takes exclusive locks on files that the operating system
// releases when the process dies, however it dies: flock(2) on Unix systems,
// LockFileEx on Windows. eddy uses them to keep one process per state
// directory and per task directory, and one downloader per Kafka jar cache,
// without leaving a stale lock behind after a crash.
//
// A lock belongs to an open file, not to a process: two opens of one path in
// the same process exclude each other as two processes do. The locks are
// advisory: they exclude other lockers only, not readers or writers.
package filelock

import (
	"errors"
	"os"
)

// ErrLocked is returned by TryLock when another open file (in this process
// or another) holds the lock.
var ErrLocked = errors.New("filelock: the file is locked by another holder")

// TryLock takes an exclusive lock on f without waiting. It returns ErrLocked
// (wrapped) if another open file holds one; other errors mean the lock could
// not be tried at all (errors.ErrUnsupported on a system without file locks).
// Unlock releases the lock, and so does closing f.
func TryLock(f *os.File) error {
	if err := tryLock(f); err != nil {
		return &os.PathError{Op: "lock", Path: f.Name(), Err: err}
	}
	return nil
}

// Unlock releases the lock TryLock took on f.
func Unlock(f *os.File) error {
	if err := unlock(f); err != nil {
		return &os.PathError{Op: "unlock", Path: f.Name(), Err: err}
	}
	return nil
}
