package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/eddystream/eddy/internal/filelock"
	"github.com/eddystream/eddy/processor"
)

// The state directory of an application instance:
//
//	<state-dir>/<application-id>/.lock        held by the running instance
//	<state-dir>/<application-id>/process-id   the instance's process id
//	<state-dir>/<application-id>/<task-id>/   a task's stores and checkpoint
//	<state-dir>/<application-id>/<task-id>/.lock  held by the task's owner

// taskDir is the state directory of one task:
// <state-dir>/<application-id>/<task-id>.
func taskDir(stateDir, appID string, id processor.TaskID) string {
	return filepath.Join(stateDir, appID, id.String())
}

// ErrStateDirLocked is returned when another instance of the application,
// in this process or another, runs on the same state directory.
var ErrStateDirLocked = errors.New("eddy: state directory in use by another instance")

// ErrTaskDirLocked is returned when another process (or worker) holds a
// task's state directory.
var ErrTaskDirLocked = errors.New("eddy: task state directory is locked by another instance: two instances must not share a state directory; give each its own")

// dirLock is an exclusive lock on <dir>/.lock, released by unlock or by
// the process's death, so a crashed instance never leaves a stale lock.
type dirLock struct{ f *os.File }

// lockStateDir creates an instance's state directory and locks it, without
// waiting: the instance holds it while it runs, so that a second instance
// on the same directory fails at start instead of sharing its process id
// and its tasks' state.
func lockStateDir(dir string) (*dirLock, error) {
	l, err := lockDir(dir, 0)
	if errors.Is(err, filelock.ErrLocked) {
		return nil, fmt.Errorf("%w: %s; two instances must not share a state directory: give each its own (the StateDir option), or stop the other one first", ErrStateDirLocked, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("eddy: lock state directory %s: %w", dir, err)
	}
	return l, nil
}

// lockTaskDir creates dir and locks it, retrying for up to wait while
// another owner (for example a worker of this process closing the task)
// still holds it.
func lockTaskDir(dir string, wait time.Duration) (*dirLock, error) {
	l, err := lockDir(dir, wait)
	if errors.Is(err, filelock.ErrLocked) {
		return nil, fmt.Errorf("%w (%s)", ErrTaskDirLocked, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("eddy: lock task directory %s: %w", dir, err)
	}
	return l, nil
}

// lockDir creates dir and locks <dir>/.lock, retrying for up to wait while
// another holder has it (then the error matches filelock.ErrLocked).
func lockDir(dir string, wait time.Duration) (*dirLock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(wait)
	for {
		err = filelock.TryLock(f)
		if err == nil {
			return &dirLock{f: f}, nil
		}
		if !errors.Is(err, filelock.ErrLocked) || time.Now().After(deadline) {
			f.Close()
			return nil, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (l *dirLock) unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := filelock.Unlock(l.f)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	return err
}
