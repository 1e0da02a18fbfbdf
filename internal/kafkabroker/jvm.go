package kafkabroker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// stopGrace is how long Close lets a JVM broker shut down after SIGTERM before
// it sends SIGKILL. A single-node broker usually stops in one to three
// seconds.
const stopGrace = 15 * time.Second

// bindAttempts is how many times startJVM picks fresh ports when the broker
// cannot bind the ones it was given: ports are picked free but released
// before the JVM binds them, so another process can take them in between.
const bindAttempts = 3

// jvmOptions are the JVM flags of a broker: a heap big enough for test and
// benchmark traffic (and the log cleaner's buffer) yet modest on a shared
// machine, Kafka's own collector settings, and an exit instead of a sick
// broker on heap exhaustion.
var jvmOptions = []string{
	"-Xms256m", "-Xmx768m",
	"-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:InitiatingHeapOccupancyPercent=35",
	"-XX:+ExitOnOutOfMemoryError",
	"-Djava.awt.headless=true",
}

// toolOptions are the JVM flags of the short-lived storage formatter: it does
// little work, so it favours start-up time.
var toolOptions = []string{
	"-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
	"-Djava.awt.headless=true",
}

// jvmBroker is a broker JVM this package started, with its temporary
// directory (data, configuration and log).
type jvmBroker struct {
	cmd     *exec.Cmd
	dir     string
	logPath string
	logFile *os.File // the JVM's stdout and stderr
	log     *slog.Logger

	// exited is closed by the goroutine that waits for cmd, after it has set
	// waitErr.
	exited  chan struct{}
	waitErr error

	saslSSL *SASLSSL // the listener WithSASLSSL added; nil without
}

// startJVM runs a broker JVM from the cached Kafka jars.
func startJVM(ctx context.Context, cfg config) (*Broker, error) {
	begin := time.Now()
	java, err := findJava()
	if err != nil {
		return nil, err
	}
	cacheDir, err := defaultCacheDir()
	if err != nil {
		return nil, err
	}
	libs, _, err := ensureJars(ctx, cacheDir, cfg.version, mavenFetch, cfg.logger)
	if err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		ports, err := freeLoopbackPorts()
		if err != nil {
			return nil, err
		}
		jb, addr, err := launchJVM(ctx, java, libs, ports, cfg.saslSSL, cfg.logger)
		if err != nil {
			return nil, err
		}
		waitCtx, cancel := context.WithTimeout(ctx, cfg.startTimeout)
		err = waitReady(waitCtx, []string{addr}, launchFailure(jb.exited, jb.logPath, 0))
		cancel()
		if err == nil {
			cfg.logger.Info("broker ready", "source", SourceJVM, "addr", addr, "version", cfg.version,
				"took", time.Since(begin).Round(100*time.Millisecond), "log", jb.logPath)
			return &Broker{addrs: []string{addr}, source: SourceJVM, runner: jb, saslSSL: jb.saslSSL}, nil
		}
		if errors.Is(err, errBrokerExited) && jb.waitErr != nil {
			err = fmt.Errorf("%w: %v", err, jb.waitErr)
		}
		tail := jb.logTail(40)
		if stopErr := jb.stop(); stopErr != nil {
			cfg.logger.Warn("cleaning up a broker that did not start", "err", stopErr)
		}
		if (errors.Is(err, errBindFailed) || errors.Is(err, errBrokerExited) && isBindFailure(tail)) && attempt < bindAttempts {
			cfg.logger.Info("broker port was taken; retrying on other ports", "attempt", attempt)
			continue
		}
		return nil, fmt.Errorf("kafkabroker: the Kafka %s broker at %s did not come up: %w; last lines of its log:\n%s", cfg.version, addr, err, tail)
	}
}

// isBindFailure reports whether a broker log tells that a port was taken.
func isBindFailure(logTail string) bool {
	return strings.Contains(logTail, "BindException") || strings.Contains(logTail, "Address already in use")
}

// findJava returns $JAVA_HOME/bin/java if JAVA_HOME is set, else java from
// PATH.
func findJava() (string, error) {
	if home := os.Getenv("JAVA_HOME"); home != "" {
		java := filepath.Join(home, "bin", "java")
		if _, err := os.Stat(java); err == nil {
			return java, nil
		}
	}
	java, err := exec.LookPath("java")
	if err != nil {
		return "", fmt.Errorf("kafkabroker: no Docker engine answers and java is not on PATH: install a Java 17+ runtime (apt-get install openjdk-17-jre-headless), start Docker, or set %s to a running broker: %w", EnvBrokers, err)
	}
	return java, nil
}

// launchJVM formats fresh storage in a new temporary directory and starts a
// broker on it, listening on ports (and with sec, if not nil, on a SASL_SSL
// listener too). It does not wait for the broker.
func launchJVM(ctx context.Context, java, libs string, ports listenerPorts, sec *saslSSLConfig, log *slog.Logger) (jb *jvmBroker, addr string, err error) {
	dir, err := os.MkdirTemp("", "eddy-kafka-")
	if err != nil {
		return nil, "", fmt.Errorf("kafkabroker: create a temporary directory for the broker: %w", err)
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(dir)
		}
	}()
	var (
		dataDir    = filepath.Join(dir, "data")
		propsPath  = filepath.Join(dir, "server.properties")
		log4jPath  = filepath.Join(dir, "log4j2.xml")
		logPath    = filepath.Join(dir, "kafka.log")
		classPath  = filepath.Join(libs, "*")
		log4jFlag  = "-Dlog4j2.configurationFile=" + log4jPath
		settings   = serverProperties(ports, dataDir)
		formatArgs []string
		secure     *SASLSSL
	)
	if sec != nil {
		if settings, formatArgs, secure, err = sec.setUp(ctx, java, dir, ports, settings, log); err != nil {
			return nil, "", err
		}
	}
	properties := renderProperties(settings)
	if err := os.WriteFile(propsPath, []byte(properties), 0o644); err != nil {
		return nil, "", fmt.Errorf("kafkabroker: write server.properties: %w", err)
	}
	if err := os.WriteFile(log4jPath, []byte(log4jConfig(logPath)), 0o644); err != nil {
		return nil, "", fmt.Errorf("kafkabroker: write the log4j configuration: %w", err)
	}

	// Format the KRaft storage: meta.properties with a new cluster id, and the
	// bootstrap metadata (the latest metadata.version of this release).
	format := exec.CommandContext(ctx, java, append(append([]string{}, toolOptions...),
		log4jFlag, "-cp", classPath, "kafka.tools.StorageTool",
		"format", "--cluster-id", newClusterID(), "--config", propsPath)...)
	format.Args = append(format.Args, formatArgs...)
	var out bytes.Buffer
	format.Stdout, format.Stderr = &out, &out
	format.SysProcAttr = childProcAttr()
	format.WaitDelay = 5 * time.Second
	formatBegin := time.Now()
	if err := format.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, "", fmt.Errorf("kafkabroker: formatting the broker storage: %w", ctx.Err())
		}
		return nil, "", fmt.Errorf("kafkabroker: format the broker storage (kafka.tools.StorageTool; Kafka 4.x needs Java 17+): %w\n%s", err, lastLines(out.String()+readFile(logPath), 30))
	}

	log.Debug("formatted the broker storage", "dir", dataDir, "took", time.Since(formatBegin).Round(10*time.Millisecond))

	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, "", fmt.Errorf("kafkabroker: open the broker log: %w", err)
	}
	// Not CommandContext: ctx bounds the start, the broker runs until stop.
	cmd := exec.Command(java, append(append([]string{}, jvmOptions...),
		log4jFlag, "-cp", classPath, "kafka.Kafka", propsPath)...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = childProcAttr()
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, "", fmt.Errorf("kafkabroker: start the broker JVM %s: %w", java, err)
	}
	jb = &jvmBroker{cmd: cmd, dir: dir, logPath: logPath, logFile: logFile, log: log, exited: make(chan struct{}), saslSSL: secure}
	go func() {
		jb.waitErr = cmd.Wait()
		close(jb.exited)
	}()
	return jb, net.JoinHostPort("127.0.0.1", strconv.Itoa(ports.broker)), nil
}

// freeLoopbackPorts returns two distinct loopback ports that are free now.
func freeLoopbackPorts() (listenerPorts, error) {
	var ports [2]int
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return listenerPorts{}, fmt.Errorf("kafkabroker: find a free loopback port for the broker: %w", err)
		}
		// Held open until both are picked, so that the two differ.
		defer l.Close()
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return listenerPorts{broker: ports[0], controller: ports[1]}, nil
}

// logTail returns the last n lines of the broker's log.
func (jb *jvmBroker) logTail(n int) string {
	return lastLines(readFile(jb.logPath), n)
}

// readFile returns the content of path, or "" if it cannot be read.
func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return string(b)
}

// readFileFrom returns the text of the file at path from offset on, or ""
// if it cannot be read.
func readFileFrom(path string, offset int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	b, err := io.ReadAll(io.NewSectionReader(f, offset, 1<<40))
	if err != nil {
		return ""
	}
	return string(b)
}

// stop sends SIGTERM, then SIGKILL after stopGrace, waits for the JVM to
// exit, and removes its temporary directory.
func (jb *jvmBroker) stop() error {
	select {
	case <-jb.exited:
	default:
		if err := jb.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			jb.log.Warn("could not send SIGTERM to the broker JVM", "pid", jb.cmd.Process.Pid, "err", err)
		}
		grace := time.NewTimer(stopGrace)
		select {
		case <-jb.exited:
		case <-grace.C:
			jb.log.Warn("the broker JVM did not stop after SIGTERM; killing it", "pid", jb.cmd.Process.Pid, "grace", stopGrace)
			_ = jb.cmd.Process.Kill()
			<-jb.exited
		}
		grace.Stop()
	}
	_ = jb.logFile.Close()
	if err := os.RemoveAll(jb.dir); err != nil {
		return fmt.Errorf("kafkabroker: remove the broker's temporary directory (safe to delete by hand): %w", err)
	}
	return nil
}
