package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddystream/eddy"
	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/topology"
)

// instanceCommand is the hidden subcommand that runs one instance of the
// stateful application of the restore and failover workloads. The bench
// starts each instance as an OS process of its own, so that a crash is a
// real SIGKILL; it is not listed in the usage.
const instanceCommand = "bench-instance"

// benchStore is the name of the stateful application's store, so its
// changelog topic is "<application-id>-counts-changelog".
const benchStore = "counts"

// instanceArgs configures one instance of the stateful application.
type instanceArgs struct {
	brokers        []string
	appID          string
	input, output  string
	name           string // the instance's name: its client id and the tag on its outputs
	stateDir       string
	addrFile       string // where the instance writes its admin address once it listens
	standbys       int
	sessionTimeout time.Duration
	probing        time.Duration
}

func (a instanceArgs) flags() []string {
	return []string{instanceCommand,
		"-brokers", strings.Join(a.brokers, ","), "-app-id", a.appID, "-input", a.input, "-output", a.output,
		"-name", a.name, "-state-dir", a.stateDir, "-addr-file", a.addrFile,
		"-standbys", strconv.Itoa(a.standbys), "-session-timeout", a.sessionTimeout.String(), "-probing-interval", a.probing.String(),
	}
}

// countTopology counts the records of each key of input and writes every
// new count to output as "<name> <count>", so that a reader of output
// knows which instance produced each update. The output keeps the input's
// key, so with as many partitions as the input, task 0_p writes to
// partition p of output.
func countTopology(input, output, name string) (*topology.Topology, error) {
	b := topology.NewBuilder()
	src := topology.Source(b, input, serde.String(), serde.String())
	counts := src.GroupByKey().Count(topology.StoreName(benchStore)).ToStream()
	prefix := name + " "
	topology.MapValues(counts, func(n int64) string { return prefix + strconv.FormatInt(n, 10) }).
		WithSerdes(serde.String(), serde.String()).To(output)
	return b.Build()
}

// runInstance is the hidden subcommand: it runs one instance of the
// counting application until ctx ends (SIGTERM: a graceful shutdown) or
// the process is killed.
func runInstance(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet(instanceCommand, flag.ExitOnError)
	var a instanceArgs
	brokers := fs.String("brokers", "", "Kafka bootstrap brokers, comma separated")
	fs.StringVar(&a.appID, "app-id", "", "application id")
	fs.StringVar(&a.input, "input", "", "input topic")
	fs.StringVar(&a.output, "output", "", "output topic")
	fs.StringVar(&a.name, "name", "", "instance name: client id and output tag")
	fs.StringVar(&a.stateDir, "state-dir", "", "state directory")
	fs.StringVar(&a.addrFile, "addr-file", "", "file to write the admin address to")
	fs.IntVar(&a.standbys, "standbys", 0, "standby replicas per task")
	fs.DurationVar(&a.sessionTimeout, "session-timeout", 6*time.Second, "consumer group session timeout")
	fs.DurationVar(&a.probing, "probing-interval", 5*time.Second, "probing rebalance interval")
	fs.Parse(args)
	a.brokers = strings.Split(*brokers, ",")
	if *brokers == "" || a.appID == "" || a.input == "" || a.output == "" || a.name == "" || a.stateDir == "" || a.addrFile == "" {
		return errors.New(instanceCommand + ": -brokers, -app-id, -input, -output, -name, -state-dir and -addr-file are required")
	}
	top, err := countTopology(a.input, a.output, a.name)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("instance", a.name)
	app, err := eddy.New(top, eddy.ApplicationID(a.appID), eddy.Brokers(a.brokers...), eddy.StateDir(a.stateDir),
		eddy.NumStandbyReplicas(a.standbys), eddy.SessionTimeout(a.sessionTimeout), eddy.ProbingRebalanceInterval(a.probing),
		eddy.AdminAddr("127.0.0.1:0"), eddy.Logger(log), eddy.KafkaOptions(kgo.ClientID(a.name)))
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- app.Run(ctx) }()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var addr string
	for addr == "" {
		select {
		case err := <-errc:
			return fmt.Errorf("%s: the application stopped before serving its admin endpoints: %w", a.name, err)
		case <-tick.C:
		}
		addr = app.AdminAddr()
	}
	// Write, then rename: the bench never reads half an address.
	tmp := a.addrFile + ".tmp"
	err = os.WriteFile(tmp, []byte(addr), 0o644)
	if err == nil {
		err = os.Rename(tmp, a.addrFile)
	}
	if err != nil {
		app.Close()
		<-errc
		return fmt.Errorf("%s: write the admin address: %w", a.name, err)
	}
	return <-errc
}

// instanceProc is the bench's handle on an instance process. Its waiter
// goroutine reaps the process and closes exited; whoever starts an
// instance stops it (stop) before returning.
type instanceProc struct {
	args   instanceArgs
	cmd    *exec.Cmd
	log    *os.File
	admin  string
	exited chan struct{}
	err    error // the process's exit status, set before exited closes
}

// startInstance starts an instance process of exe (this binary) with its
// output and logs going to <logDir>/<name>.log.
func startInstance(exe, logDir string, a instanceArgs) (*instanceProc, error) {
	logFile, err := os.Create(filepath.Join(logDir, a.name+".log"))
	if err != nil {
		return nil, fmt.Errorf("start instance %s: %w", a.name, err)
	}
	cmd := exec.Command(exe, a.flags()...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start instance %s: %w", a.name, err)
	}
	p := &instanceProc{args: a, cmd: cmd, log: logFile, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.exited)
	}()
	return p, nil
}

// waitAdmin waits until the instance has written its admin address.
func (p *instanceProc) waitAdmin(ctx context.Context) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if b, err := os.ReadFile(p.args.addrFile); err == nil {
			p.admin = string(b)
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.exited:
			return fmt.Errorf("instance %s exited before serving its admin endpoints (%v); see %s", p.args.name, p.err, p.log.Name())
		case <-tick.C:
		}
	}
}

// running reports whether the process has not exited.
func (p *instanceProc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// stop sends sig and waits for the process to exit; if it has not exited
// after grace, it is killed. It returns the exit status of a process that
// did not exit cleanly after a SIGTERM.
func (p *instanceProc) stop(sig syscall.Signal, grace time.Duration) error {
	if !p.running() {
		return nil
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal instance %s: %w", p.args.name, err)
	}
	select {
	case <-p.exited:
	case <-time.After(grace):
		p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("instance %s did not stop within %v of %v and was killed; see %s", p.args.name, grace, sig, p.log.Name())
	}
	if sig == syscall.SIGTERM && p.err != nil {
		return fmt.Errorf("instance %s: %w; see %s", p.args.name, p.err, p.log.Name())
	}
	return nil
}

// instanceMetrics is what the bench reads of an instance's /metrics.
type instanceMetrics struct {
	running, restoring, standby float64 // tasks by state, summed over workers
	standbyLag                  float64 // eddy_standby_lag_records, summed over tasks
}

// metrics scrapes the instance's /metrics.
func (p *instanceProc) metrics(ctx context.Context) (instanceMetrics, error) {
	var m instanceMetrics
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.admin+"/metrics", nil)
	if err != nil {
		return m, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return m, fmt.Errorf("scrape instance %s: %w", p.args.name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return m, fmt.Errorf("scrape instance %s: %s", p.args.name, resp.Status)
	}
	err = eachSample(resp.Body, func(name, labels string, v float64) {
		switch name {
		case "eddy_tasks":
			switch {
			case strings.Contains(labels, `state="running"`):
				m.running += v
			case strings.Contains(labels, `state="restoring"`):
				m.restoring += v
			case strings.Contains(labels, `state="standby"`):
				m.standby += v
			}
		case "eddy_standby_lag_records":
			m.standbyLag += v
		}
	})
	if err != nil {
		return m, fmt.Errorf("scrape instance %s: %w", p.args.name, err)
	}
	return m, nil
}

// eachSample calls fn with each sample of a Prometheus text exposition:
// the metric name, the label set as written ("" or `{a="b",...}`) and
// the value. The bench reads only eddy's own metrics, whose label values
// hold no spaces or braces.
func eachSample(r io.Reader, fn func(name, labels string, v float64)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil {
			continue
		}
		series := line[:sp]
		name, labels := series, ""
		if i := strings.IndexByte(series, '{'); i >= 0 {
			name, labels = series[:i], series[i:]
		}
		fn(name, labels, v)
	}
	return sc.Err()
}
