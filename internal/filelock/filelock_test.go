package filelock_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/eddystream/eddy/internal/filelock"
)

// holderEnv names the file a re-executed test binary locks and holds until
// it is killed (see TestMain).
const holderEnv = "EDDY_FILELOCK_HOLD"

func TestMain(m *testing.M) {
	if path := os.Getenv(holderEnv); path != "" {
		os.Exit(hold(path))
	}
	os.Exit(m.Run())
}

// hold locks path, says so on stdout and holds the lock until it is killed
// (or its stdin closes: the test is gone).
func hold(path string) int {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err == nil {
		err = filelock.TryLock(f)
	}
	if err != nil {
		fmt.Println(err)
		return 1
	}
	fmt.Println("locked")
	io.Copy(io.Discard, os.Stdin)
	return 0
}

func open(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestOpensOfOneProcessExcludeEachOther: the lock belongs to the open file,
// so two holders in one process conflict, and Unlock or Close frees it.
func TestOpensOfOneProcessExcludeEachOther(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".lock")
	a, b := open(t, path), open(t, path)
	if err := filelock.TryLock(a); err != nil {
		t.Fatal(err)
	}
	err := filelock.TryLock(b)
	if !errors.Is(err, filelock.ErrLocked) {
		t.Fatalf("second TryLock = %v, want ErrLocked", err)
	}
	var pe *os.PathError
	if !errors.As(err, &pe) || pe.Path != path {
		t.Errorf("error %q does not name %s", err, path)
	}
	if err := filelock.Unlock(a); err != nil {
		t.Fatal(err)
	}
	if err := filelock.TryLock(b); err != nil {
		t.Fatalf("TryLock after Unlock: %v", err)
	}
	b.Close()
	if err := filelock.TryLock(a); err != nil {
		t.Fatalf("TryLock after the holder closed its file: %v", err)
	}
}

// TestAKilledHolderLeavesNoStaleLock: another process holds the lock, so
// TryLock fails; once it is killed (no chance to unlock), TryLock succeeds.
func TestAKilledHolderLeavesNoStaleLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".lock")
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), holderEnv+"="+path)
	cmd.Stderr = os.Stderr
	if _, err := cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("holder process said %q, %v; want \"locked\"", line, err)
	}
	f := open(t, path)
	if err := filelock.TryLock(f); !errors.Is(err, filelock.ErrLocked) {
		t.Fatalf("TryLock while another process holds the lock = %v, want ErrLocked", err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	killed = true
	// The kernel releases the lock as it closes the dead process's files,
	// which Wait has seen happen; poll briefly all the same.
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := filelock.TryLock(f)
		if err == nil {
			break
		}
		if !errors.Is(err, filelock.ErrLocked) || time.Now().After(deadline) {
			t.Fatalf("TryLock after the holder was killed: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
