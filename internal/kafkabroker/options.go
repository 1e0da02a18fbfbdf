package kafkabroker

import (
	"fmt"
	"log/slog"
	"time"
)

// Option configures [Start] and [Serve].
type Option func(*config)

// config is the validated result of the options.
type config struct {
	startTimeout time.Duration
	logger       *slog.Logger
	version      string
	saslSSL      *saslSSLConfig // WithSASLSSL; nil without
}

// defaultStartTimeout bounds how long Start waits for a started broker (a
// container or a JVM) to answer. A JVM broker answers in a few seconds on a
// two-core machine; the margin covers a loaded CI machine and an image pull.
const defaultStartTimeout = 90 * time.Second

// WithStartTimeout bounds how long Start waits for the broker to answer its
// first metadata request: from the moment a broker JVM or container is
// started, or at once for the brokers of KAFKA_BROKERS. Fetching the jars the
// first time is bounded by Start's context only. The default is 90 s.
func WithStartTimeout(d time.Duration) Option {
	return func(c *config) { c.startTimeout = d }
}

// WithLogger receives progress lines ("downloading Kafka jars ...", "broker
// ready at ... in 3.1s") at Info level and shutdown trouble at Warn level. The
// default discards them.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.logger = l }
}

// WithVersion runs another Apache Kafka 4.x release (for example "4.0.1") by
// its Maven Central version, which is also the apache/kafka image tag. The
// default is [DefaultVersion]. It has no effect when KAFKA_BROKERS is set.
func WithVersion(v string) Option {
	return func(c *config) { c.version = v }
}

// newConfig applies opts over the defaults and validates the result once.
func newConfig(opts []Option) (config, error) {
	c := config{
		startTimeout: defaultStartTimeout,
		version:      DefaultVersion,
	}
	for _, o := range opts {
		o(&c)
	}
	if c.startTimeout <= 0 {
		return config{}, fmt.Errorf("kafkabroker: start timeout %v is not positive: pass WithStartTimeout a duration such as 90*time.Second", c.startTimeout)
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	if _, err := parseVersion(c.version); err != nil {
		return config{}, err
	}
	return c, nil
}
