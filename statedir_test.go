package eddy_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddystream/eddy"
)

// stateDirHolderEnv names a state directory on which a re-executed test
// binary runs an App until it is killed (see TestMain and holdStateDir).
const stateDirHolderEnv = "EDDY_TEST_HOLD_STATE_DIR"

// sharedAppID is the application id of the instances that share a state
// directory in these tests.
const sharedAppID = "shared"

// wordLines produces n lines to "lines" and adds their words to want.
func wordLines(t *testing.T, ctx context.Context, cl *kgo.Client, n int, want map[string]int64) {
	t.Helper()
	var recs []*kgo.Record
	for i := range n {
		line := fmt.Sprintf("w%d common", i%5)
		for _, w := range strings.Fields(line) {
			want[w]++
		}
		recs = append(recs, &kgo.Record{Topic: "lines", Key: []byte(fmt.Sprint(i)), Value: []byte(line)})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// waitReady waits until app is ready, failing the test if Run returns
// first (its error arrives on errc) or ctx ends.
func waitReady(t *testing.T, ctx context.Context, app *eddy.App, errc <-chan error) {
	t.Helper()
	for app.Ready() != nil {
		select {
		case err := <-errc:
			t.Fatalf("Run returned %v before the App was ready", err)
		case <-ctx.Done():
			t.Fatalf("the App is not ready: %v", app.Ready())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// checkStateDirLocked runs app, which shares dir with a running instance,
// and checks that Run fails at once with ErrStateDirLocked naming the
// application's state directory.
func checkStateDirLocked(t *testing.T, app *eddy.App, dir string) {
	t.Helper()
	start := time.Now()
	err := runErr(t, app)
	took := time.Since(start)
	if !errors.Is(err, eddy.ErrStateDirLocked) {
		t.Fatalf("Run on a state directory in use = %v (after %v), want ErrStateDirLocked", err, took.Round(time.Millisecond))
	}
	if appDir := filepath.Join(dir, sharedAppID); !strings.Contains(err.Error(), appDir) {
		t.Errorf("%q does not name the directory %s", err, appDir)
	}
	// It fails before it connects to Kafka, so it does not wait for anything.
	if took > 10*time.Second {
		t.Errorf("Run took %v to fail", took)
	}
	if !errors.Is(app.Alive(), eddy.ErrStateDirLocked) {
		t.Errorf("Alive = %v, want the ErrStateDirLocked that stopped Run", app.Alive())
	}
}

// TestSecondAppOnAStateDirInUseFails: two Apps of one process on one state
// directory. The second fails at once; the first keeps counting; once the
// first has stopped, a new App starts on the directory.
func TestSecondAppOnAStateDirInUseFails(t *testing.T) {
	addrs := cluster(t, kfake.SeedTopics(2, "lines", "counts"))
	dir := t.TempDir()
	top := wordCount(t, "lines", "counts")
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	consumer, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics("counts"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	first := newApp(t, top, addrs, sharedAppID, eddy.StateDir(dir))
	errc := make(chan error, 1)
	go func() { errc <- first.Run(ctx) }()
	want, got := map[string]int64{}, map[string]int64{}
	wordLines(t, ctx, cl, 50, want)
	readCounts(t, ctx, consumer, got, want)

	checkStateDirLocked(t, newApp(t, top, addrs, sharedAppID, eddy.StateDir(dir)), dir)

	// The first App is unaffected: healthy, and it counts new lines.
	if err := first.Alive(); err != nil {
		t.Fatalf("the first App: Alive = %v", err)
	}
	wordLines(t, ctx, cl, 50, want)
	readCounts(t, ctx, consumer, got, want)
	first.Close()
	if err := <-errc; err != nil {
		t.Fatalf("the first App's Run = %v", err)
	}

	// Its lock went with it: a new App starts on the directory.
	next := newApp(t, top, addrs, sharedAppID, eddy.StateDir(dir))
	go func() { errc <- next.Run(ctx) }()
	waitReady(t, ctx, next, errc)
	next.Close()
	if err := <-errc; err != nil {
		t.Fatalf("the App started after the first stopped: Run = %v", err)
	}
}

// TestStateDirInUseByAnotherProcess: an App in another process holds the
// state directory, so an App here fails at once; after that process is
// killed (it cannot unlock anything), an App here starts on it.
func TestStateDirInUseByAnotherProcess(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), stateDirHolderEnv+"="+dir)
	cmd.Stderr = os.Stderr
	// The holder runs until it is killed or its stdin closes.
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
	exited := make(chan struct{})
	defer func() {
		cmd.Process.Kill()
		<-exited
	}()
	said := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		said <- line
		cmd.Wait()
		close(exited)
	}()
	select {
	case line := <-said:
		if line != "running\n" {
			t.Fatalf("the holder process said %q, want \"running\"", line)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the holder process did not start its App within 60s")
	}

	addrs := cluster(t, kfake.SeedTopics(2, "lines", "counts"))
	top := wordCount(t, "lines", "counts")
	checkStateDirLocked(t, newApp(t, top, addrs, sharedAppID, eddy.StateDir(dir)), dir)

	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-exited
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	app := newApp(t, top, addrs, sharedAppID, eddy.StateDir(dir))
	errc := make(chan error, 1)
	go func() { errc <- app.Run(ctx) }()
	waitReady(t, ctx, app, errc)
	app.Close()
	if err := <-errc; err != nil {
		t.Fatalf("the App started after the holder was killed: Run = %v", err)
	}
}

// holdStateDir runs a word count App on dir, against a broker of its own,
// says "running" on stdout once it is ready and runs until it is killed or
// its stdin closes. It is the other process of
// TestStateDirInUseByAnotherProcess.
func holdStateDir(dir string) int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "state directory holder:", err)
		return 1
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "lines", "counts"))
	if err != nil {
		return fail(err)
	}
	defer c.Close()
	top, err := buildWordCount("lines", "counts")
	if err != nil {
		return fail(err)
	}
	app, err := eddy.New(top, eddy.ApplicationID(sharedAppID), eddy.Brokers(c.ListenAddrs()...),
		eddy.StateDir(dir), eddy.Logger(slog.New(slog.DiscardHandler)))
	if err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- app.Run(ctx) }()
	for app.Ready() != nil {
		select {
		case err := <-errc:
			return fail(fmt.Errorf("Run returned before the App was ready: %v", err))
		case <-ctx.Done():
			return fail(fmt.Errorf("not ready: %v", app.Ready()))
		case <-time.After(20 * time.Millisecond):
		}
	}
	fmt.Println("running")
	io.Copy(io.Discard, os.Stdin)
	cancel()
	if err := <-errc; err != nil {
		return fail(err)
	}
	return 0
}
