//go:build linux

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// mountTmpfs mounts a tmpfs of size at a new directory, unmounted when the
// test ends. It needs root, which CI has; elsewhere the test is skipped.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root (CI runs as root)")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount a %s tmpfs at %s: %v: %s", size, dir, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fillDisk writes a file that leaves about keep bytes free on the file
// system of dir, and returns its path.
func fillDisk(t *testing.T, dir string, keep int64) string {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	free := int64(st.Bavail) * st.Bsize
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for n := free - keep; n > 0; n -= int64(len(chunk)) {
		if _, err := f.Write(chunk[:min(int64(len(chunk)), n)]); err != nil {
			break // full already: the stores wrote meanwhile
		}
	}
	return path
}

// TestFullStateDiskFailsAndRecovers: the state directory (an 8 MiB tmpfs)
// fills up under a running exactly-once word count. The instance exits
// with an error naming the cause (no space left on device) and where,
// instead of hanging while it reports itself healthy, as it did when
// Pebble's fatal commit error panicked under the worker's lock. Once the
// disk has room, a restart on the same directory restores and goes on,
// and every count is exact.
func TestFullStateDiskFailsAndRecovers(t *testing.T) {
	dir := mountTmpfs(t, "8m")
	r := newWordCount(t, 2)
	p := r.start("instance", filepath.Join(dir, "state"), "-guarantee", "exactly-once")
	r.produceLines(200)
	r.waitConsumedExactlyOnce()
	filler := fillDisk(t, dir, 16<<10)
	full := time.Now()
	// Long distinct words make every commit write hundreds of kilobytes
	// to the stores, past what Pebble preallocated for its WAL.
	for i := 0; i < 200; i++ {
		select {
		case <-p.done:
		default:
			r.produceDistinctLines(i, 100, 20, 100)
			continue
		}
		break
	}
	err := p.wait(90 * time.Second)
	failedAfter := time.Since(full)
	out := p.out.String()
	if err == nil || !strings.Contains(out, "no space left on device") {
		t.Fatalf("exit %v, want a failure naming the full disk:\n%s", err, tail(out, 30))
	}
	if !strings.Contains(out, filepath.Join(dir, "state")) {
		t.Errorf("the failure does not name the state directory %s:\n%s", dir, tail(out, 30))
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	q := r.start("restarted", filepath.Join(dir, "state"), "-guarantee", "exactly-once")
	r.waitConsumedExactlyOnce()
	r.checkExactCommitted()
	t.Logf("failed %v after the disk filled: %s; restarted with room: %d lines, every count exact", failedAfter.Round(100*time.Millisecond), lastLine(out), r.seq)
	q.stop()
}

// produceDistinctLines writes n lines of words long, each word used once
// (batch tells the batches apart), and records the expected counts.
func (r *wcRun) produceDistinctLines(batch, n, words, long int) {
	recs := make([]*kgo.Record, n)
	for i := range recs {
		ws := make([]string, words)
		for j := range ws {
			w := fmt.Sprintf("b%dl%dw%dx", batch, i, j) // letters and digits: one word to the example
			ws[j] = w + strings.Repeat("x", max(0, long-len(w)))
			r.want[ws[j]]++
		}
		recs[i] = &kgo.Record{Topic: r.input, Key: []byte(fmt.Sprint(r.seq)), Value: []byte(strings.Join(ws, " "))}
		r.seq++
	}
	produce(r.t, recs)
}
