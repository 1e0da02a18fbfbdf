// Package e2e is eddy's end-to-end suite: OS processes built from the
// examples, run against a real Apache Kafka broker (KRaft). The broker
// comes from KAFKA_BROKERS, else a testcontainers container when a Docker
// engine answers, else a broker JVM started from the Apache Kafka jars on
// Maven Central (see internal/kafkabroker). It is never faked. The broker
// fault tests (brokerfaults_test.go) kill brokers, so they run a cluster
// of broker JVMs of their own (kafkabroker.StartCluster) whatever
// KAFKA_BROKERS says.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddystream/eddy/internal/kafkabroker"
)

var (
	brokers []string
	bins    = map[string]string{} // example name -> built binary
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	binDir, err := os.MkdirTemp("", "eddy-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(binDir)
	for _, ex := range []string{"wordcount", "aggregates"} {
		out := filepath.Join(binDir, ex)
		cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "../examples/"+ex)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: build %s: %v\n", ex, err)
			return 1
		}
		bins[ex] = out
	}
	b, err := kafkabroker.Start(ctx, kafkabroker.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, nil))))
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: no Kafka broker, and the end-to-end suite never runs without one:", err)
		return 1
	}
	defer b.Close()
	brokers = b.Addrs()
	fmt.Fprintf(os.Stderr, "e2e: broker %s (%s) ready after %.1fs\n", strings.Join(brokers, ","), b.Source(), time.Since(start).Seconds())
	code := m.Run()
	if code != 0 {
		if tail := b.LogTail(40); tail != "" {
			fmt.Fprintf(os.Stderr, "e2e: broker log tail:\n%s\n", tail)
		}
	}
	return code
}

// proc is one OS process of an example.
type proc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error
	// admin is the host:port of the admin endpoints when the test chose
	// it (see freeAddr); else adminAddr reads it from the log.
	admin string
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start runs example ex with args plus -brokers; the process is killed
// when the test ends if it still runs.
func start(t *testing.T, name, ex string, args ...string) *proc {
	t.Helper()
	return startOn(t, brokers, name, ex, args...)
}

// startOn is start against the brokers at addrs instead of the suite's.
func startOn(t *testing.T, addrs []string, name, ex string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bins[ex], append([]string{"-brokers", strings.Join(addrs, ",")}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			// The whole output goes to a file; the tail to the test log.
			path := "(not saved)"
			if f, err := os.CreateTemp("", "eddy-e2e-"+p.name+"-*.log"); err == nil {
				f.WriteString(p.out.String())
				f.Close()
				path = f.Name()
			}
			t.Logf("output of %s (all of it in %s):\n%s", p.name, path, tail(p.out.String(), 60))
		}
	})
	return p
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// kill sends SIGKILL and waits.
func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop() {
	p.t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		p.t.Fatalf("%s did not stop within 60s of SIGTERM", p.name)
	}
	if p.err != nil {
		p.t.Fatalf("%s exited with %v:\n%s", p.name, p.err, tail(p.out.String(), 40))
	}
}

// wait waits for the process to exit by itself and returns its error.
func (p *proc) wait(d time.Duration) error {
	p.t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(d):
		p.t.Fatalf("%s still runs after %v", p.name, d)
		return nil
	}
}

var restoredRE = regexp.MustCompile(`msg="task restored and running".* restored_records=(\d+)`)

// restored sums the changelog records the process says it restored.
func (p *proc) restored() int64 {
	var n int64
	for _, m := range restoredRE.FindAllStringSubmatch(p.out.String(), -1) {
		v, _ := strconv.ParseInt(m[1], 10, 64)
		n += v
	}
	return n
}

// waitFor waits until the process has logged substr n times.
func (p *proc) waitFor(substr string, n int, d time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if strings.Count(p.out.String(), substr) >= n {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.t.Fatalf("%s logged %q %d times within %v, want %d", p.name, substr, strings.Count(p.out.String(), substr), d, n)
}

// running is the log line of a task that has restored and runs.
const running = `msg="task restored and running"`

func client(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func createTopics(t *testing.T, partitions int32, topics ...string) {
	t.Helper()
	adm := kadm.NewClient(client(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := adm.CreateTopics(ctx, partitions, 1, nil, topics...)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("create topics %v: %v", topics, err)
	}
}

func produce(t *testing.T, recs []*kgo.Record) {
	t.Helper()
	cl := client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// waitConsumed waits until group has committed the end offset of every
// partition of topics.
func waitConsumed(t *testing.T, group string, d time.Duration, topics ...string) {
	t.Helper()
	waitConsumedMarked(t, group, d, nil, topics...)
}

// waitConsumedMarked is waitConsumed for topics of which some (marked) are
// written by exactly-once transactions: their end offset may be a commit
// marker, which takes an offset but is no record to consume, so the group
// has consumed them once its offset is at most one below the end.
func waitConsumedMarked(t *testing.T, group string, d time.Duration, marked map[string]bool, topics ...string) {
	t.Helper()
	adm := kadm.NewClient(client(t))
	deadline := time.Now().Add(d)
	var lag string
	for time.Now().Before(deadline) {
		// Committed offsets first, end offsets second: an upstream task
		// commits its input only after flushing what it wrote to the
		// repartition topic, so ends listed afterwards include it.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		committed, err2 := adm.FetchOffsets(ctx, group)
		ends, err1 := adm.ListEndOffsets(ctx, topics...)
		cancel()
		if err1 == nil && err2 == nil {
			var behind []string
			seen := map[string]bool{}
			ends.Each(func(o kadm.ListedOffset) {
				if o.Err != nil {
					behind = append(behind, fmt.Sprintf("%s-%d: %v", o.Topic, o.Partition, o.Err))
					return
				}
				seen[o.Topic] = true
				c, ok := committed.Lookup(o.Topic, o.Partition)
				end := o.Offset
				if marked[o.Topic] {
					end--
				}
				if end > 0 && (!ok || c.At < end) {
					behind = append(behind, fmt.Sprintf("%s-%d at %d of %d", o.Topic, o.Partition, c.At, o.Offset))
				}
			})
			for _, topic := range topics {
				if !seen[topic] {
					behind = append(behind, topic+" not listed yet")
				}
			}
			if len(behind) == 0 {
				return
			}
			lag = strings.Join(behind, ", ")
		} else {
			lag = fmt.Sprint(errors.Join(err1, err2))
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("group %s did not consume %v within %v: %s", group, topics, d, lag)
}

// readAll reads every record of topic up to its current end.
func readAll(t *testing.T, topic string) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(client(t)).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	remaining := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			remaining[o.Partition] = o.Offset
		}
	})
	cl := client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var out []*kgo.Record
	for len(remaining) > 0 {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("read %s: %v", topic, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			out = append(out, r)
			if r.Offset+1 >= remaining[r.Partition] {
				delete(remaining, r.Partition)
			}
		})
	}
	return out
}

// lines returns each non-empty line of s.
func lines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// lastLine returns the last non-empty line of s.
func lastLine(s string) string {
	ls := lines(s)
	if len(ls) == 0 {
		return ""
	}
	return ls[len(ls)-1]
}

func ctx30() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 30*time.Second)
}

var runSeq atomic.Int64

// uniqueName names a test's topics and group: the test's name plus a
// number unique in the process and the time, so that -count and reruns
// against a long-lived broker (KAFKA_BROKERS) never collide.
func uniqueName(t *testing.T) string {
	return fmt.Sprintf("%s-%d-%d", strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")), runSeq.Add(1), time.Now().Unix()%100000)
}
