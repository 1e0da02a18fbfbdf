package kafkabroker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// EnvBrokers names the environment variable that points Start at a broker
// someone else runs: a comma-separated bootstrap list such as
// "127.0.0.1:9092,127.0.0.1:9093".
const EnvBrokers = "KAFKA_BROKERS"

// Sources of a broker, as [Broker.Source] reports them.
const (
	SourceEnv            = "env"
	SourceTestcontainers = "testcontainers"
	SourceJVM            = "jvm"
)

// Broker is a running Kafka broker that tests can bootstrap from. It is safe
// for concurrent use. Close it when done; a broker from KAFKA_BROKERS is left
// running.
type Broker struct {
	addrs  []string
	source string
	// runner is the broker this package started; nil for SourceEnv.
	runner runner
	// saslSSL is the listener WithSASLSSL added; nil without.
	saslSSL *SASLSSL

	closeOnce sync.Once
	closeErr  error
}

// runner is a broker process or container that this package started.
type runner interface {
	// logTail returns the last n lines of the broker's log.
	logTail(n int) string
	// stop stops the broker, waits for it, and removes what it left behind.
	stop() error
}

// Start returns a running broker: the one KAFKA_BROKERS names, else a
// container if a Docker engine answers, else a JVM run from the cached Apache
// Kafka jars (downloading them with mvn the first time). If Docker answers but
// cannot start the container (say, it cannot pull the image), Start runs the
// JVM instead. See the package doc.
//
// ctx bounds the start only (the jar download, the storage format and the
// wait for the broker); the broker runs until Close. The wait for a started
// broker is also bounded by [WithStartTimeout]. An error from a broker that
// did not come up carries the tail of its log.
func Start(ctx context.Context, opts ...Option) (*Broker, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	if err := cfg.checkSASLSSL(); err != nil {
		return nil, err
	}
	if env := os.Getenv(EnvBrokers); strings.TrimSpace(env) != "" {
		return startFromEnv(ctx, cfg, env)
	}
	if cfg.saslSSL == nil && dockerAvailable(ctx) {
		b, err := startContainer(ctx, cfg)
		if !errors.Is(err, errNoContainer) {
			return b, err
		}
		cfg.logger.Warn("Docker cannot start the Kafka container; running a broker JVM instead", "err", err)
		b, jvmErr := startJVM(ctx, cfg)
		if jvmErr != nil {
			return nil, errors.Join(err, jvmErr)
		}
		return b, nil
	}
	return startJVM(ctx, cfg)
}

// startFromEnv checks that the brokers in env answer and returns them.
func startFromEnv(ctx context.Context, cfg config, env string) (*Broker, error) {
	addrs := parseBrokerList(env)
	if len(addrs) == 0 {
		return nil, fmt.Errorf("kafkabroker: %s=%q names no broker: set it to a comma-separated list such as 127.0.0.1:9092, or unset it to start a broker", EnvBrokers, env)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.startTimeout)
	defer cancel()
	if err := waitReady(ctx, addrs, nil); err != nil {
		return nil, fmt.Errorf("kafkabroker: the brokers in %s=%q do not answer: start them, or unset %s to start a broker: %w", EnvBrokers, env, EnvBrokers, err)
	}
	cfg.logger.Info("using brokers from the environment", "env", EnvBrokers, "addrs", addrs)
	return &Broker{addrs: addrs, source: SourceEnv}, nil
}

// parseBrokerList splits a comma-separated bootstrap list, dropping blanks.
func parseBrokerList(s string) []string {
	var addrs []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	return addrs
}

// Addrs returns the bootstrap addresses (host:port) of the broker, for
// kgo.SeedBrokers.
func (b *Broker) Addrs() []string {
	return append([]string(nil), b.addrs...)
}

// Source tells where the broker comes from: [SourceEnv], [SourceTestcontainers]
// or [SourceJVM].
func (b *Broker) Source() string { return b.source }

// LogTail returns the last n lines of the broker's log: warnings and errors of
// a JVM broker, the output of a container. It returns "" for a broker from
// KAFKA_BROKERS, and after Close (which removes a JVM broker's log). A test
// that fails can print it to show what the broker complained about.
func (b *Broker) LogTail(n int) string {
	if b.runner == nil {
		return ""
	}
	return b.runner.logTail(n)
}

// Close stops a broker that Start started and waits for it: a JVM gets
// SIGTERM, and SIGKILL if it has not stopped after a grace period; a
// container is terminated. It then removes the broker's temporary files.
// Close does nothing to a broker from KAFKA_BROKERS. Later calls return the
// first call's result.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		if b.runner != nil {
			b.closeErr = b.runner.stop()
		}
	})
	return b.closeErr
}

// Serve starts a broker as Start does, writes one line
// "KAFKA_BROKERS=host:port[,host:port...]" to w for a shell or a test
// harness to pick up, and keeps the broker running until ctx is done, then
// closes it.
func Serve(ctx context.Context, w io.Writer, opts ...Option) error {
	b, err := Start(ctx, opts...)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(w, "%s=%s\n", EnvBrokers, strings.Join(b.addrs, ",")); err != nil {
		return errors.Join(fmt.Errorf("kafkabroker: announce the broker address: %w", err), b.Close())
	}
	<-ctx.Done()
	return b.Close()
}

// errBrokerExited reports a broker process that ended before it answered.
var errBrokerExited = errors.New("the broker process exited")

// errBindFailed reports a broker process whose log says a port it was given
// is taken; it may still be shutting down.
var errBindFailed = errors.New("the broker could not bind its port")

// launchFailure returns a check for waitReady of a broker process that is
// closing exited when it ends and writes its log to logPath from offset
// from on: the broker exited, or it logged that a port was taken. A broker that failed to bind
// is a failed start even before its JVM has finished shutting down, which on
// a loaded machine can take longer than the start timeout.
func launchFailure(exited <-chan struct{}, logPath string, from int64) func() error {
	return func() error {
		select {
		case <-exited:
			return errBrokerExited
		default:
		}
		if isBindFailure(readFileFrom(logPath, from)) {
			return errBindFailed
		}
		return nil
	}
}

// waitReady waits until a broker at addrs answers a metadata request that
// lists at least one broker (a KRaft broker lists itself only once it has
// registered with the controller and is unfenced), until ctx is done, or
// until failed (which may be nil) returns an error.
func waitReady(ctx context.Context, addrs []string, failed func() error) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.DialTimeout(time.Second))
	if err != nil {
		return fmt.Errorf("create a client for %v: %w", addrs, err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)

	retry := time.NewTicker(200 * time.Millisecond)
	defer retry.Stop()
	var lastErr error
	for {
		attempt, cancel := context.WithTimeout(ctx, 2*time.Second)
		md, err := adm.BrokerMetadata(attempt)
		cancel()
		switch {
		case err != nil:
			lastErr = err
		case len(md.Brokers) == 0:
			lastErr = errors.New("the metadata response lists no broker yet")
		default:
			return nil
		}
		if failed != nil {
			if err := failed(); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last attempt: %v)", ctx.Err(), lastErr)
		case <-retry.C:
		}
	}
}
