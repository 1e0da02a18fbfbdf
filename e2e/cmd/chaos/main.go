// Command chaos is the long version of the end-to-end chaos test: it runs
// instances of examples/aggregates against a real Kafka broker, feeds them
// input in rounds, kills one with SIGKILL every few seconds and restarts
// it, and at the end checks with package e2e/chaos that no input was lost.
//
//	go run ./e2e/cmd/chaos -duration 30m -kill-every 5s
//
// Step by step:
//
//  1. It builds examples/aggregates into the work directory.
//  2. It starts a broker with internal/kafkabroker (KAFKA_BROKERS, else a
//     container, else a JVM), unless -brokers names one.
//  3. It creates three topics of -partitions partitions, named after the
//     start time, and writes -initial records over -keys keys.
//  4. It starts -instances instances, each with a state directory of its
//     own, and runs until -duration passes: every -round-every it writes
//     -round more records, and every -kill-every (give or take a quarter) it
//     kills a random instance and restarts it, first wiping its state
//     directory with probability -wipe.
//  5. It waits until the instances have consumed all input (-drain-timeout),
//     stops them with SIGTERM, reads the outputs with read_committed
//     isolation and prints the verdict (chaos.Report).
//
// The instances' logs go to instance-<n>.log in the work directory (-work-dir,
// default a new temporary directory), one file per instance across its
// restarts, with a line marking each start and each kill. The work directory
// is removed after a run that passes, and kept otherwise.
//
// An interrupt (Ctrl-C) ends the chaos early; the command still drains,
// stops the instances and verifies. A second interrupt aborts: the
// instances are killed and nothing is verified. The instances run in their
// own process group, so that a terminal's Ctrl-C reaches only the command;
// if the command itself is killed with SIGKILL, they keep running.
//
// The exit status is 0 when the verdict holds, 1 on loss (with
// -exactly-once, also on duplicates, unexpected records or inexact
// aggregates), and 2 when the run could not reach a verdict or an instance
// misbehaved: it died without being killed, or did not stop within a
// minute of SIGTERM.
//
// Extra flags for the instances go in -app-args; for example, to check
// exactly-once processing:
//
//	go run ./e2e/cmd/chaos -duration 30m -app-args '-guarantee exactly-once' -exactly-once
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddystream/eddy/e2e/chaos"
	"github.com/eddystream/eddy/internal/kafkabroker"
)

// Exit statuses.
const (
	exitPass   = 0
	exitLoss   = 1
	exitFailed = 2
)

// stopTimeout is how long an instance may take to stop after SIGTERM.
const stopTimeout = time.Minute

// config holds the flags, validated by parseFlags.
type config struct {
	duration, killEvery, roundEvery time.Duration
	drainTimeout, verifyTimeout     time.Duration
	commitInterval, sessionTimeout  time.Duration
	brokers, workDir, appArgs       string
	instances, keys, initial, round int
	partitions                      int
	wipe                            float64
	seed                            uint64
	exactlyOnce, keep               bool
}

func parseFlags() (config, error) {
	var c config
	flag.DurationVar(&c.duration, "duration", 5*time.Minute, "how long to produce and kill")
	flag.DurationVar(&c.killEvery, "kill-every", 5*time.Second, "mean pause between kills (each pause is within a quarter of it)")
	flag.DurationVar(&c.roundEvery, "round-every", time.Second, "pause between rounds of input")
	flag.DurationVar(&c.drainTimeout, "drain-timeout", 5*time.Minute, "how long the instances may take to consume all input after the chaos")
	flag.DurationVar(&c.verifyTimeout, "verify-timeout", 10*time.Minute, "how long reading the outputs may take")
	flag.DurationVar(&c.commitInterval, "commit-interval", 100*time.Millisecond, "the instances' -commit-interval")
	flag.DurationVar(&c.sessionTimeout, "session-timeout", 6*time.Second, "the instances' -session-timeout")
	flag.StringVar(&c.brokers, "brokers", "", "Kafka bootstrap brokers, comma separated (default: start one with internal/kafkabroker)")
	flag.StringVar(&c.workDir, "work-dir", "", "directory for the binary, state directories and logs (default: a new temporary directory)")
	flag.StringVar(&c.appArgs, "app-args", "", "extra flags for every instance, separated by spaces")
	flag.IntVar(&c.instances, "instances", 3, "number of instances")
	flag.IntVar(&c.partitions, "partitions", 6, "partitions of each topic")
	flag.IntVar(&c.keys, "keys", 1000, "number of distinct keys")
	flag.IntVar(&c.initial, "initial", 50_000, "records written before the instances start")
	flag.IntVar(&c.round, "round", 5_000, "records written per round")
	flag.Float64Var(&c.wipe, "wipe", 0, "probability, from 0 to 1, that a killed instance's state directory is wiped before its restart")
	flag.Uint64Var(&c.seed, "seed", uint64(time.Now().UnixNano()), "seed of the keys, the kills and the wipes")
	flag.BoolVar(&c.exactlyOnce, "exactly-once", false, "require exactly-once: fail on duplicates, unexpected records and inexact aggregates too")
	flag.BoolVar(&c.keep, "keep", false, "keep the work directory after a run that passes")
	flag.Parse()
	switch {
	case flag.NArg() > 0:
		return c, fmt.Errorf("unexpected arguments %q: every setting is a flag", flag.Args())
	case c.duration <= 0 || c.killEvery <= 0 || c.roundEvery <= 0 || c.drainTimeout <= 0 || c.verifyTimeout <= 0:
		return c, errors.New("-duration, -kill-every, -round-every, -drain-timeout and -verify-timeout must be positive")
	case c.instances < 1 || c.partitions < 1 || c.keys < 1 || c.initial < 0 || c.round < 0:
		return c, errors.New("-instances, -partitions and -keys must be at least 1, -initial and -round at least 0")
	case c.wipe < 0 || c.wipe > 1:
		return c, fmt.Errorf("-wipe %v is not a probability between 0 and 1", c.wipe)
	}
	return c, nil
}

func main() {
	os.Exit(run())
}

// began is when the command started; progress lines show the time since.
var began = time.Now()

// logf prints a progress line.
func logf(format string, args ...any) {
	fmt.Printf("%8s  %s\n", time.Since(began).Round(time.Second), fmt.Sprintf(format, args...))
}

func run() int {
	c, err := parseFlags()
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		return exitFailed
	}

	// The first interrupt ends the chaos; the second aborts.
	interrupted, endChaos := context.WithCancel(context.Background())
	defer endChaos()
	abortCtx, abort := context.WithCancel(context.Background())
	defer abort()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	stopSignals := make(chan struct{})
	var sigWG sync.WaitGroup
	defer sigWG.Wait()
	defer close(stopSignals)
	sigWG.Go(func() {
		for n := 0; ; n++ {
			select {
			case <-stopSignals:
				return
			case s := <-sigs:
				if n == 0 {
					logf("%v: ending the chaos; interrupt again to abort", s)
					endChaos()
				} else {
					logf("%v: aborting", s)
					abort()
				}
			}
		}
	})

	code, workDir := runChaos(interrupted, abortCtx, c)
	if workDir != "" {
		if code == exitPass && !c.keep && c.workDir == "" {
			os.RemoveAll(workDir)
		} else {
			logf("logs and state kept in %s", workDir)
		}
	}
	return code
}

// runChaos does the run and returns the exit status and the work directory.
// The chaos lasts c.duration from the start of the instances, or until
// interrupted ends; abortCtx ends everything.
func runChaos(interrupted, abortCtx context.Context, c config) (code int, workDir string) {
	failed := func(format string, args ...any) int {
		logf("FAILED: "+format, args...)
		return exitFailed
	}
	workDir = c.workDir
	if workDir == "" {
		d, err := os.MkdirTemp("", "eddy-chaos-")
		if err != nil {
			return failed("create work directory: %v", err), ""
		}
		workDir = d
	} else if err := os.MkdirAll(workDir, 0o755); err != nil {
		return failed("create work directory: %v", err), ""
	}
	logf("seed %d; work directory %s", c.seed, workDir)

	bin := filepath.Join(workDir, "aggregates")
	build := exec.CommandContext(abortCtx, "go", "build", "-o", bin, "github.com/eddystream/eddy/examples/aggregates")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return failed("build examples/aggregates (run the command inside the eddy module): %v", err), workDir
	}

	brokers := strings.Split(c.brokers, ",")
	if c.brokers == "" {
		b, err := kafkabroker.Start(abortCtx, kafkabroker.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))))
		if err != nil {
			return failed("start a broker: %v", err), workDir
		}
		defer b.Close()
		brokers = b.Addrs()
		logf("broker %s (%s)", strings.Join(brokers, ","), b.Source())
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return failed("create client: %v", err), workDir
	}
	defer cl.Close()

	name := "chaos-" + time.Now().Format("20060102-150405")
	in, pass, stats := name+"-numbers", name+"-passthrough", name+"-stats"
	if err := createTopics(abortCtx, cl, int32(c.partitions), in, pass, stats); err != nil {
		return failed("%v", err), workDir
	}
	ds, err := chaos.Produce(abortCtx, cl, in, c.initial, c.keys, c.seed)
	if err != nil {
		return failed("%v", err), workDir
	}
	logf("application %s; wrote %d records over %d keys to %s", name, c.initial, c.keys, in)

	f := &fleet{
		bin: bin, dir: workDir, wipe: c.wipe, rng: rand.New(rand.NewPCG(c.seed, 2)),
		args: append([]string{"-brokers", strings.Join(brokers, ","), "-app", name, "-input", in, "-passthrough", pass, "-stats", stats,
			"-commit-interval", c.commitInterval.String(), "-session-timeout", c.sessionTimeout.String()}, strings.Fields(c.appArgs)...),
	}
	defer f.close()
	for i := range c.instances {
		if err := f.start(i, false); err != nil {
			return failed("%v", err), workDir
		}
	}

	// The producer owns ds until wg.Wait returns. Each round has a context
	// of its own, not the chaos one: a round cut off half-way would leave
	// the data set uncertain. Whichever of the producer and the kill loop
	// fails first ends the other.
	loopCtx, endLoop := context.WithTimeout(interrupted, c.duration)
	defer endLoop()
	var (
		wg      sync.WaitGroup
		prodErr error
	)
	wg.Go(func() {
		defer endLoop()
		t := time.NewTicker(c.roundEvery)
		defer t.Stop()
		for {
			select {
			case <-loopCtx.Done():
				return
			case <-t.C:
			}
			ctx, cancel := context.WithTimeout(abortCtx, 2*time.Minute)
			prodErr = ds.ProduceMore(ctx, cl, c.round)
			cancel()
			if prodErr != nil {
				return
			}
		}
	})
	chaosBegan := time.Now()
	kills, err := chaos.KillLoop(loopCtx, f, c.killEvery, rand.New(rand.NewPCG(c.seed, 1)))
	endLoop()
	wg.Wait()
	if err != nil {
		return failed("%v", err), workDir
	}
	if prodErr != nil {
		return failed("%v", prodErr), workDir
	}
	chaosTook := time.Since(chaosBegan).Round(time.Second)
	logf("chaos over after %v: %d kills (%d with a wiped state), %d records written", chaosTook, kills, f.wipes, ds.Records())

	drainCtx, cancelDrain := context.WithTimeout(abortCtx, c.drainTimeout)
	err = chaos.WaitConsumed(drainCtx, cl, name, in)
	cancelDrain()
	if err != nil {
		return failed("the instances did not consume all input: %v", err), workDir
	}
	logf("input consumed; stopping the instances")
	f.stopAll()

	verifyCtx, cancelVerify := context.WithTimeout(abortCtx, c.verifyTimeout)
	r, err := chaos.Verify(verifyCtx, brokers, ds, pass, stats)
	cancelVerify()
	if err != nil {
		return failed("verify: %v", err), workDir
	}
	fmt.Println(r)
	logf("%d kills (%d with a wiped state), %d records, %v of chaos", kills, f.wipes, ds.Records(), chaosTook)

	code = exitPass
	switch {
	case !r.NothingLost():
		code = exitLoss
	case c.exactlyOnce && !r.ExactlyOnce():
		logf("FAILED: -exactly-once, and the outputs are not exactly once")
		code = exitLoss
	}
	for _, p := range f.problems {
		logf("FAILED: %s", p)
	}
	if len(f.problems) > 0 && code == exitPass {
		code = exitFailed
	}
	return code, workDir
}

func createTopics(ctx context.Context, cl *kgo.Client, partitions int32, topics ...string) error {
	resp, err := kadm.NewClient(cl).CreateTopics(ctx, partitions, 1, nil, topics...)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return fmt.Errorf("create topics %v: %w", topics, err)
	}
	return nil
}

// instance is one running incarnation of an instance. Its goroutine waits
// for the process and closes done; every instance is killed or stopped,
// and waited for, before the command exits.
type instance struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // set before done is closed
}

// fleet runs the instances and is KillLoop's chaos.Controller. KillLoop
// and the command's main goroutine call it one at a time, never together.
type fleet struct {
	bin  string
	args []string
	dir  string
	wipe float64
	rng  *rand.Rand // decides the wipes

	current  []*instance
	logs     []*os.File // one per instance, across its incarnations
	kills    int
	wipes    int
	problems []string // instances that died without a kill or did not stop
}

func (f *fleet) Instances() int { return len(f.current) }

func (f *fleet) stateDir(i int) string { return filepath.Join(f.dir, fmt.Sprintf("state-%d", i)) }

// start starts instance i, appending its output to its log file.
func (f *fleet) start(i int, wiped bool) error {
	if i == len(f.logs) {
		lf, err := os.OpenFile(filepath.Join(f.dir, fmt.Sprintf("instance-%d.log", i)), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("open log of instance %d: %w", i, err)
		}
		f.logs = append(f.logs, lf)
		f.current = append(f.current, nil)
	}
	fmt.Fprintf(f.logs[i], "=== chaos: start at %s (state wiped: %v)\n", time.Now().Format(time.RFC3339Nano), wiped)
	cmd := exec.Command(f.bin, slices.Concat(f.args, []string{"-state-dir", f.stateDir(i)})...)
	cmd.Stdout, cmd.Stderr = f.logs[i], f.logs[i]
	cmd.SysProcAttr = ownProcessGroup() // a terminal's Ctrl-C is for the command only
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start instance %d: %w", i, err)
	}
	inst := &instance{cmd: cmd, done: make(chan struct{})}
	go func() {
		inst.err = cmd.Wait()
		close(inst.done)
	}()
	f.current[i] = inst
	return nil
}

// Kill kills instance i with SIGKILL and waits for it. An instance that
// had already exited is recorded as a problem.
func (f *fleet) Kill(i int) error {
	inst := f.current[i]
	select {
	case <-inst.done:
		f.problems = append(f.problems, fmt.Sprintf("instance %d exited without being killed (%v); see instance-%d.log", i, inst.err, i))
	default:
		if err := inst.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return err
		}
		<-inst.done
	}
	f.kills++
	fmt.Fprintf(f.logs[i], "=== chaos: killed at %s\n", time.Now().Format(time.RFC3339Nano))
	return nil
}

// Restart starts instance i again, first wiping its state directory with
// probability f.wipe.
func (f *fleet) Restart(i int) error {
	wipe := f.rng.Float64() < f.wipe
	if wipe {
		if err := os.RemoveAll(f.stateDir(i)); err != nil {
			return fmt.Errorf("wipe the state of instance %d: %w", i, err)
		}
		f.wipes++
	}
	if wipe {
		logf("kill %d: instance %d, restarted with an empty state directory", f.kills, i)
	} else {
		logf("kill %d: instance %d, restarted", f.kills, i)
	}
	return f.start(i, wipe)
}

// stopAll sends SIGTERM to every instance and waits for each to exit. An
// instance still running stopTimeout after the signal gets SIGQUIT, so
// that the Go runtime writes every goroutine's stack to its log, and then
// SIGKILL. An instance that does not stop cleanly is recorded as a problem.
func (f *fleet) stopAll() {
	for _, inst := range f.current {
		inst.cmd.Process.Signal(syscall.SIGTERM)
	}
	deadline := time.NewTimer(stopTimeout)
	defer deadline.Stop()
	expired := false
	for i, inst := range f.current {
		if !expired {
			select {
			case <-inst.done:
			case <-deadline.C:
				expired = true
			}
		}
		select {
		case <-inst.done:
			if inst.err != nil {
				f.problems = append(f.problems, fmt.Sprintf("instance %d did not stop cleanly: %v; see instance-%d.log", i, inst.err, i))
			}
			continue
		default:
		}
		inst.cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-inst.done:
		case <-time.After(5 * time.Second):
			inst.cmd.Process.Kill()
			<-inst.done
		}
		f.problems = append(f.problems, fmt.Sprintf("instance %d did not stop within %v of SIGTERM; its goroutines' stacks are in instance-%d.log", i, stopTimeout, i))
	}
}

// close kills whatever still runs and closes the logs.
func (f *fleet) close() {
	for _, inst := range f.current {
		if inst == nil {
			continue
		}
		inst.cmd.Process.Kill()
		<-inst.done
	}
	for _, lf := range f.logs {
		lf.Close()
	}
}
