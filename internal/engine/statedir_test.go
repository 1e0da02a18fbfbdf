package engine

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eddystream/eddy/processor"
)

func TestTaskDirLock(t *testing.T) {
	dir := taskDir(t.TempDir(), "app", processor.TaskID{Subtopology: 1, Partition: 4})
	if filepath.Base(dir) != "1_4" || filepath.Base(filepath.Dir(dir)) != "app" {
		t.Fatalf("task dir = %s, want <state>/app/1_4", dir)
	}
	first, err := lockTaskDir(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = lockTaskDir(dir, 200*time.Millisecond)
	if !errors.Is(err, ErrTaskDirLocked) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("second lock: %v, want ErrTaskDirLocked naming %s", err, dir)
	}
	if waited := time.Since(start); waited < 200*time.Millisecond {
		t.Errorf("gave up after %v, before the wait ended", waited)
	}
	// The holder lets go while the other waits: the waiter gets it.
	go func() {
		time.Sleep(100 * time.Millisecond)
		first.unlock()
	}()
	second, err := lockTaskDir(dir, 5*time.Second)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	second.unlock()
}

// TestStateDirLock: a second lock on an instance's state directory fails at
// once, naming the directory; once the holder unlocks, it succeeds.
func TestStateDirLock(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "app")
	first, err := lockStateDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = lockStateDir(dir)
	if !errors.Is(err, ErrStateDirLocked) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("second lock: %v, want ErrStateDirLocked naming %s", err, dir)
	}
	// The task directories below it are locked on their own.
	task, err := lockTaskDir(taskDir(filepath.Dir(dir), "app", processor.TaskID{Partition: 1}), 0)
	if err != nil {
		t.Fatalf("task lock under a locked state directory: %v", err)
	}
	task.unlock()
	if err := first.unlock(); err != nil {
		t.Fatal(err)
	}
	again, err := lockStateDir(dir)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	again.unlock()
}

func TestProcessIDIsKept(t *testing.T) {
	dir := t.TempDir()
	id, err := loadProcessID(dir)
	if err != nil || len(id) != 36 {
		t.Fatalf("process id %q, %v", id, err)
	}
	again, err := loadProcessID(dir)
	if err != nil || again != id {
		t.Fatalf("second load = %q, %v; want %q", again, err, id)
	}
	if err := os.WriteFile(filepath.Join(dir, "process-id"), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if fresh, err := loadProcessID(dir); err != nil || fresh == id || len(fresh) != 36 {
		t.Fatalf("a garbled process id was not replaced: %q, %v", fresh, err)
	}
}
