package eddy

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"

	"github.com/eddystream/eddy/internal/settings"
)

// Option configures an App. Options are validated together by New.
type Option func(*config)

// Guarantee is a processing guarantee.
type Guarantee int

const (
	// AtLeastOnce commits input offsets only after the outputs and state
	// changes they caused are durable in Kafka: after a failure, records
	// since the last commit are processed again. Kafka Streams:
	// processing.guarantee=at_least_once.
	AtLeastOnce Guarantee = iota
	// ExactlyOnce commits, per worker and per commit interval, one Kafka
	// transaction holding the outputs, the changelog records and the input
	// offsets (with the group generation, KIP-447, so a zombie's commit is
	// refused). Inputs and changelogs are read read_committed. Store
	// writes wait in per-task overlays and reach the stores only after the
	// transaction commits; an aborted transaction (after a rebalance or an
	// error) rewinds the tasks to the last committed offsets. Kafka
	// Streams: processing.guarantee=exactly_once_v2.
	ExactlyOnce
)

func (g Guarantee) String() string {
	switch g {
	case AtLeastOnce:
		return "at-least-once"
	case ExactlyOnce:
		return "exactly-once"
	}
	return fmt.Sprintf("Guarantee(%d)", int(g))
}

// DeserializationHandling says what to do with an input record that does
// not deserialize.
type DeserializationHandling int

const (
	// FailOnDeserializationError stops the application with an error that
	// names the topic, partition and offset of the record. Kafka Streams:
	// LogAndFailExceptionHandler.
	FailOnDeserializationError DeserializationHandling = iota
	// SkipOnDeserializationError logs the record's position and the error,
	// counts it, and goes on. Kafka Streams: LogAndContinueExceptionHandler.
	SkipOnDeserializationError
)

// ProcessingHandling says what to do with an input record for which a
// processor returns an error.
type ProcessingHandling int

const (
	// FailOnProcessingError stops the application with an error that names
	// the record's topic, partition and offset. Kafka Streams:
	// LogAndFailProcessingExceptionHandler.
	FailOnProcessingError ProcessingHandling = iota
	// SkipOnProcessingError logs the error, counts the record and goes on.
	// What the processors did for the record before the error stays.
	// Kafka Streams: LogAndContinueProcessingExceptionHandler.
	SkipOnProcessingError
)

// ProductionHandling says what to do when a record cannot be produced.
type ProductionHandling int

const (
	// RetryTransientProductionErrors lets the client retry errors that pass
	// (a leader moving, a broker restarting, a request timing out) until the
	// record is written; an error that does not pass (a record too large, a
	// write not authorized, a missing topic) fails the commit. Under
	// at-least-once that stops the application with an error naming the
	// topic; under exactly-once it aborts the transaction, and the tasks
	// retry from the last commit (ten aborts in a row stop the
	// application).
	RetryTransientProductionErrors ProductionHandling = iota
	// FailOnProductionError does not retry: the first error of any kind
	// fails the commit as above. Use it where a slow broker must surface at
	// once rather than be waited out.
	FailOnProductionError
)

// config is what the options write: the settings the engine and the
// assignor read, and what New needs to validate them.
type config struct {
	settings.Settings
	// commitIntervalSet and heartbeatSet tell an option's zero from no
	// option: their defaults depend on other options.
	commitIntervalSet, heartbeatSet bool
	// tlsSet, saslSet, adminTLSSet, adminTokenSet and registrySet tell an
	// option given nil or "" from no option.
	tlsSet, saslSet, adminTLSSet, adminTokenSet, registrySet bool
	// gatherer is what AdminAddr's /metrics serves: MetricsRegistry's, if
	// it gathers, or the App's own registry.
	gatherer prometheus.Gatherer
	// errs holds what options found wrong with their arguments.
	errs []error
}

// bad records a configuration error; format should name the option.
func (c *config) bad(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
}

// ApplicationID sets the application id: the consumer group id and the
// prefix of every internal topic. Required. Kafka Streams: application.id.
func ApplicationID(id string) Option { return func(c *config) { c.ApplicationID = id } }

// Brokers sets the bootstrap brokers (default "localhost:9092"). At least
// one is required, and none may be empty. Kafka Streams: bootstrap.servers.
func Brokers(addrs ...string) Option { return func(c *config) { c.Brokers = addrs } }

// StateDir sets the directory under which tasks keep their stores and
// checkpoints, as <dir>/<application-id>/<task-id> (default
// $TMPDIR/eddy). Each instance of an application needs its own: while one
// runs, another on the same directory fails at start with
// ErrStateDirLocked. It must not be empty. Kafka Streams: state.dir
// (default /tmp/kafka-streams).
func StateDir(dir string) Option { return func(c *config) { c.StateDir = dir } }

// CommitInterval sets how often tasks commit (default 30s under
// at-least-once and 100ms under exactly-once, as Kafka Streams). Under
// exactly-once it is also how long outputs stay invisible to read_committed
// consumers. CommitInterval(0) commits after every batch of records the
// worker polls, as commit.interval.ms=0 does; a negative interval is an
// error. Kafka Streams: commit.interval.ms.
func CommitInterval(d time.Duration) Option {
	return func(c *config) { c.CommitInterval, c.commitIntervalSet = d, true }
}

// ProcessingGuarantee sets the processing guarantee (default
// AtLeastOnce). Kafka Streams: processing.guarantee.
func ProcessingGuarantee(g Guarantee) Option {
	return func(c *config) {
		switch g {
		case AtLeastOnce, ExactlyOnce:
			c.ExactlyOnce = g == ExactlyOnce
		default:
			c.bad("unknown ProcessingGuarantee %v", g)
		}
	}
}

// Workers sets the number of group members (each with its own goroutine
// and Kafka clients) this instance runs (default 1). Tasks are balanced
// across instances and then across workers. It must be at least 1 (Kafka
// Streams allows 0 threads for a topology of global stores only, which
// eddy does not have). Kafka Streams: num.stream.threads.
func Workers(n int) Option { return func(c *config) { c.Workers = n } }

// KafkaOptions passes options to every franz-go client eddy creates, after
// eddy's own (TLS and SASL included), so they can override them: client
// id, timeouts, a dialer of one's own. Options that would change eddy's
// semantics (consumer group, balancers, partitioner, offsets, isolation)
// must not be passed. Default: none. Kafka Streams: the consumer.,
// producer. and admin. prefixed client configs.
func KafkaOptions(opts ...kgo.Opt) Option {
	return func(c *config) { c.KafkaOptions = append(c.KafkaOptions, opts...) }
}

// TLS connects to the brokers with TLS, verifying their certificates
// with cfg, for every Kafka client eddy creates (the group members, the
// admin client, the restore and standby consumers). Default: plaintext.
// Kafka Streams: security.protocol=SSL (SASL_SSL with SASL), with
// ssl.truststore.* for the brokers' CA and ssl.keystore.* for a client
// certificate.
//
// Each connection uses a copy of cfg; an empty ServerName is set to the
// broker's host, so certificates are checked against the address dialled
// (Kafka's ssl.endpoint.identification.algorithm=https). TLS(&tls.Config{})
// trusts the system's CAs. A CA of one's own, from a PEM file:
//
//	pem, err := os.ReadFile("ca.pem")
//	if err != nil { ... }
//	roots := x509.NewCertPool()
//	if !roots.AppendCertsFromPEM(pem) { ... } // no certificate in the file
//	eddy.TLS(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12})
//
// Mutual TLS (the broker's ssl.client.auth=required) adds the client's
// certificate and key (Kafka Streams: ssl.keystore.location):
//
//	cert, err := tls.LoadX509KeyPair("client.pem", "client-key.pem")
//	if err != nil { ... }
//	eddy.TLS(&tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}})
//
// KafkaOptions are applied after TLS, so a kgo.DialTLSConfig or kgo.Dialer
// there takes over.
func TLS(cfg *tls.Config) Option {
	return func(c *config) { c.TLS, c.tlsSet = cfg, true }
}

// SASL authenticates every Kafka client eddy creates with mechanism m, one
// of franz-go's pkg/sasl mechanisms. Default: none. Kafka Streams:
// sasl.mechanism and sasl.jaas.config, with security.protocol=SASL_SSL
// (with TLS) or SASL_PLAINTEXT (without).
//
// SCRAM-SHA-512 (sasl.mechanism=SCRAM-SHA-512, ScramLoginModule; use
// scram.Auth.AsSha256Mechanism for SCRAM-SHA-256) over TLS, with the
// password from the environment rather than the command line:
//
//	import "github.com/twmb/franz-go/pkg/sasl/scram"
//
//	eddy.TLS(&tls.Config{RootCAs: roots}),
//	eddy.SASL(scram.Auth{User: "streams", Pass: os.Getenv("KAFKA_PASSWORD")}.AsSha512Mechanism())
//
// PLAIN (sasl.mechanism=PLAIN, PlainLoginModule):
//
//	import "github.com/twmb/franz-go/pkg/sasl/plain"
//
//	eddy.SASL(plain.Auth{User: "streams", Pass: os.Getenv("KAFKA_PASSWORD")}.AsMechanism())
//
// Without TLS, PLAIN sends the password in clear text: use it over TLS
// only. SCRAM never sends the password, but without TLS the traffic
// itself is neither private nor protected. A wrong user or password fails
// the connection with kerr.SaslAuthenticationFailed, which Run returns at
// once (matchable with errors.Is) rather than retrying. For credentials
// that rotate, scram.Sha512(func(ctx) (scram.Auth, error)) asks for them
// at each new connection. KafkaOptions may add kgo.SASL mechanisms of its
// own after m.
func SASL(m sasl.Mechanism) Option {
	return func(c *config) { c.SASL, c.saslSet = m, true }
}

// Logger sets the logger (default slog.Default()). Logger(nil) is an
// error: to log nothing, pass slog.New(slog.DiscardHandler). Kafka
// Streams: its log4j/slf4j configuration.
func Logger(l *slog.Logger) Option { return func(c *config) { c.Logger = l } }

// OnDeserializationError sets the handling of input records that do not
// deserialize (default FailOnDeserializationError). Kafka Streams:
// default.deserialization.exception.handler.
func OnDeserializationError(h DeserializationHandling) Option {
	return func(c *config) {
		switch h {
		case FailOnDeserializationError, SkipOnDeserializationError:
			c.SkipOnDeserializationError = h == SkipOnDeserializationError
		default:
			c.bad("OnDeserializationError: unknown deserialization handling %d", h)
		}
	}
}

// OnProcessingError sets the handling of input records a processor fails
// on (default FailOnProcessingError). Kafka Streams:
// processing.exception.handler.
func OnProcessingError(h ProcessingHandling) Option {
	return func(c *config) {
		switch h {
		case FailOnProcessingError, SkipOnProcessingError:
			c.SkipOnProcessingError = h == SkipOnProcessingError
		default:
			c.bad("OnProcessingError: unknown processing-error handling %d", h)
		}
	}
}

// OnProductionError sets the handling of records that cannot be produced
// (default RetryTransientProductionErrors). Kafka Streams:
// default.production.exception.handler, whose default also fails.
func OnProductionError(h ProductionHandling) Option {
	return func(c *config) {
		switch h {
		case RetryTransientProductionErrors, FailOnProductionError:
			c.FailOnProductionError = h == FailOnProductionError
		default:
			c.bad("OnProductionError: unknown production-error handling %d", h)
		}
	}
}

// DeadLetterTopic sends every record a skip handler drops to topic (which
// must exist), with its original key, value, timestamp and headers plus
// headers naming the error (eddy.error.kind, eddy.error.message) and where
// the record came from (eddy.source.topic, eddy.source.partition,
// eddy.source.offset). It is produced like any output of the task, so it
// is durable when the task commits. Default: none; DeadLetterTopic("") is
// none too. Kafka Streams: errors.dead.letter.queue.topic.name (KIP-1034).
func DeadLetterTopic(topic string) Option { return func(c *config) { c.DeadLetterTopic = topic } }

// ReplicationFactor sets the replication factor of the internal topics
// eddy creates (default -1: the broker's default.replication.factor).
// Zero, or below -1, is an error. Kafka Streams: replication.factor
// (default -1 too).
func ReplicationFactor(n int16) Option { return func(c *config) { c.ReplicationFactor = n } }

// SessionTimeout sets the consumer group session timeout: how long the
// group waits for a silent member before moving its tasks (default 45s, as
// Kafka's clients). It must be positive. Kafka Streams: session.timeout.ms
// (consumer config).
func SessionTimeout(d time.Duration) Option { return func(c *config) { c.SessionTimeout = d } }

// HeartbeatInterval sets how often each group member heartbeats (default
// 1s, or a third of the session timeout if that is less). A member learns
// that the group is rebalancing from a heartbeat's answer, so this bounds
// how long a failover waits for the survivors to rejoin. Kafka's clients
// default to 3s. It must be positive and below the session timeout. Kafka
// Streams: heartbeat.interval.ms (consumer config).
func HeartbeatInterval(d time.Duration) Option {
	return func(c *config) { c.HeartbeatInterval, c.heartbeatSet = d, true }
}

// InstanceID makes the instance a static group member (KIP-345): its
// workers join with the instance ids <id>-0, <id>-1, …, which must be
// unique in the group and stay the same across restarts. A static member
// that restarts within the session timeout gets its tasks back without a
// rebalance, and it does not leave the group when it stops, so raise
// SessionTimeout to cover a restart. Without it (the default), a stopping
// instance commits and leaves the group at once, and its tasks move.
// InstanceID("") is the default. Kafka Streams: group.instance.id
// (consumer config).
func InstanceID(id string) Option { return func(c *config) { c.InstanceID = id } }

// Endpoint sets the host:port on which this instance serves interactive
// queries, told to the group so that other instances can find the owner of
// a key (default: none; Endpoint("") is none too). Kafka Streams:
// application.server.
func Endpoint(hostPort string) Option { return func(c *config) { c.Endpoint = hostPort } }

// Rack sets the instance's rack (default: none; Rack("") is none too).
// Standby replicas prefer instances in other racks than the active task's.
// Kafka Streams: client.rack (and rack.aware.assignment.tags).
func Rack(rack string) Option { return func(c *config) { c.Rack = rack } }

// NumStandbyReplicas sets how many standby replicas each stateful task has
// (default 0): other instances that keep a copy of the task's stores up to
// date by replaying its changelogs, so that a failover resumes from them
// instead of restoring in full. Negative is an error. Kafka Streams:
// num.standby.replicas (default 0 too).
func NumStandbyReplicas(n int) Option { return func(c *config) { c.NumStandbyReplicas = n } }

// AcceptableRecoveryLag sets how many changelog records an instance may be
// behind on a task and still count as caught up (default 10,000). A
// stateful task moves only to a caught-up instance; to move it elsewhere
// (to balance a new instance), eddy first warms a replica there.
// AcceptableRecoveryLag(0) counts only an instance with no lag as caught
// up; negative is an error. Kafka Streams: acceptable.recovery.lag
// (default 10,000 too).
func AcceptableRecoveryLag(records int64) Option {
	return func(c *config) { c.AcceptableRecoveryLag = records }
}

// MaxWarmupReplicas sets how many warm-up replicas may exist at once in
// the whole group (default 2): extra standby tasks on instances that will
// take a stateful task over once they have caught up.
// MaxWarmupReplicas(0) plans no warm-ups: a stateful task held where its
// state is caught up moves only once a standby replica has caught up
// (Kafka Streams requires at least 1). Negative is an error. Kafka
// Streams: max.warmup.replicas (default 2 too).
func MaxWarmupReplicas(n int) Option { return func(c *config) { c.MaxWarmupReplicas = n } }

// ProbingRebalanceInterval sets how often, while warm-up replicas exist,
// the group rebalances to move the tasks whose warm-ups have caught up
// (default 10m). It must be positive (Kafka Streams requires at least a
// minute). Kafka Streams: probing.rebalance.interval.ms (default 10m too).
func ProbingRebalanceInterval(d time.Duration) Option {
	return func(c *config) { c.ProbingRebalanceInterval = d }
}

// AdminAddr serves the admin HTTP endpoints on addr (host:port; ":0"
// picks a free port): /metrics (Prometheus), /healthz (200 while the
// application runs) and /readyz (200 when no active task is restoring).
// Default: none. The metrics come from MetricsRegistry's gatherer, or from
// a registry of the App's own.
//
// An address without a host (":9090") listens on 127.0.0.1 only. To serve
// Kubernetes probes or a Prometheus server on another machine, name the
// host ("0.0.0.0:9090") and protect the endpoints with AdminTLS and
// AdminBearerToken; the App logs a warning when they listen beyond
// loopback without authentication. AdminAddr("") serves nothing, as
// without the option. Kafka Streams has no admin server; its metrics go
// through JMX.
func AdminAddr(addr string) Option { return func(c *config) { c.AdminAddr = addr } }

// AdminTLS serves the admin endpoints over HTTPS with cfg, which must hold
// the server's certificate (Certificates or GetCertificate). Setting
// cfg.ClientAuth to tls.RequireAndVerifyClientCert, with cfg.ClientCAs,
// requires client certificates too. Default: plain HTTP. Kafka Streams has
// no admin server; its metrics go through JMX.
//
//	cert, err := tls.LoadX509KeyPair("admin.pem", "admin-key.pem")
//	if err != nil { ... }
//	eddy.AdminTLS(&tls.Config{Certificates: []tls.Certificate{cert}})
func AdminTLS(cfg *tls.Config) Option {
	return func(c *config) { c.AdminTLS, c.adminTLSSet = cfg, true }
}

// AdminBearerToken requires "Authorization: Bearer <token>" on /metrics
// and / of the admin endpoints (401 otherwise). /healthz and /readyz stay
// open: Kubernetes probes can send headers only as literal values in the
// pod spec, and the probes tell only whether the instance runs and is
// ready. Read the token from a secret (a file or the environment), never
// from the command line, and use AdminTLS with it. Default: no token.
// Prometheus sends it with a scrape config's authorization.credentials_file.
// An empty token is an error. Kafka Streams has no admin server.
func AdminBearerToken(token string) Option {
	return func(c *config) { c.AdminBearerToken, c.adminTokenSet = token, true }
}

// MetricsRegistry registers eddy's metrics (listed in package metrics) on
// reg. If reg is also a prometheus.Gatherer (a *prometheus.Registry is),
// AdminAddr's /metrics serves it. Default: a registry of the App's own,
// served by AdminAddr if set and otherwise unused. MetricsRegistry(nil) is
// an error. Kafka Streams: metric.reporters (its metrics go to JMX).
func MetricsRegistry(reg prometheus.Registerer) Option {
	return func(c *config) { c.MetricsRegistry, c.registrySet = reg, true }
}

// TaskTimeout sets how long a worker's commits may keep failing with
// errors that may pass (a broker rejecting writes with
// NOT_ENOUGH_REPLICAS, a partition without a leader, a broker that does
// not answer) before the application fails (default 5m). Every step of a
// commit has a deadline; each attempt that fails logs a warning naming the
// cause (the error, topic and partition), and the worker goes back to its
// last commit and tries again: under exactly-once it aborts the
// transaction, under at-least-once it drops what it processed since (the
// records are processed again, as after a crash). Meanwhile /readyz
// answers 503 with the cause and eddy_commit_stalled_seconds grows. Once
// commits have failed for this long, Run returns an error naming the last
// cause, as the production-error handling fails. It must be positive:
// every commit attempt runs within it (Kafka Streams' task.timeout.ms=0,
// failing at the first error, has no equivalent here). Kafka Streams:
// task.timeout.ms (default 5m too).
func TaskTimeout(d time.Duration) Option { return func(c *config) { c.TaskTimeout = d } }

// ShutdownTimeout bounds how long Run takes to return once its context
// ends or Close is called (default 30s): the final commit, closing the
// tasks and leaving the group. Whatever the broker or the disk does, Run
// returns by then, with an error if the shutdown did not finish (what was
// not committed is processed again by the next owner of its tasks). It
// must be positive. Kafka Streams: the timeout given to KafkaStreams.close.
func ShutdownTimeout(d time.Duration) Option { return func(c *config) { c.ShutdownTimeout = d } }

// ErrInvalidConfig is matched (errors.Is) by every error New returns for
// a bad option.
var ErrInvalidConfig = errors.New("eddy: invalid configuration")

// newConfig applies opts over the defaults (settings.Defaults), so that a
// zero an option gives stays zero, and validates the result in one pass.
// Every error names the option at fault.
func newConfig(opts []Option) (config, error) {
	c := config{Settings: settings.Defaults()}
	for _, o := range opts {
		o(&c)
	}
	bad := c.bad
	if c.ApplicationID == "" {
		bad("ApplicationID is required: it names the consumer group and the internal topics")
	}
	for _, r := range c.ApplicationID {
		if !(r == '.' || r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			bad("ApplicationID %q may contain only ASCII letters, digits, '.', '_' and '-', as it prefixes topic names", c.ApplicationID)
			break
		}
	}
	if len(c.Brokers) == 0 {
		bad("Brokers needs at least one address")
	}
	if slices.Contains(c.Brokers, "") {
		bad("Brokers got an empty address: was its environment variable or flag empty?")
	}
	if c.StateDir == "" {
		bad("StateDir must not be empty")
	}
	if c.tlsSet && c.TLS == nil {
		bad("TLS needs a *tls.Config: pass &tls.Config{} to trust the system's CAs, or set RootCAs")
	}
	if c.saslSet && c.SASL == nil {
		bad("SASL needs a mechanism, such as scram.Auth{...}.AsSha512Mechanism() or plain.Auth{...}.AsMechanism()")
	}
	if c.Logger == nil {
		bad("Logger needs a *slog.Logger: to log nothing, pass slog.New(slog.DiscardHandler)")
	}
	// TLS and SASL come first, so that KafkaOptions may override them.
	var security []kgo.Opt
	if c.TLS != nil {
		security = append(security, kgo.DialTLSConfig(c.TLS))
	}
	if c.SASL != nil {
		security = append(security, kgo.SASL(c.SASL))
	}
	c.KafkaOptions = append(security, c.KafkaOptions...)
	if !c.commitIntervalSet {
		c.CommitInterval = settings.DefaultCommitInterval
		if c.ExactlyOnce {
			c.CommitInterval = settings.DefaultExactlyOnceCommitInterval
		}
	}
	if c.CommitInterval < 0 {
		bad("CommitInterval must not be negative, got %v", c.CommitInterval)
	}
	if c.Workers < 1 {
		bad("Workers must be at least 1, got %d", c.Workers)
	}
	if c.DeadLetterTopic != "" && !c.SkipOnDeserializationError && !c.SkipOnProcessingError {
		bad("DeadLetterTopic %q receives skipped records, but no handler skips: choose SkipOnDeserializationError or SkipOnProcessingError", c.DeadLetterTopic)
	}
	if c.ReplicationFactor == 0 || c.ReplicationFactor < -1 {
		bad("ReplicationFactor must be -1 (broker default) or positive, got %d", c.ReplicationFactor)
	}
	if c.SessionTimeout <= 0 {
		bad("SessionTimeout must be positive, got %v", c.SessionTimeout)
	}
	if !c.heartbeatSet {
		c.HeartbeatInterval = min(settings.DefaultHeartbeatInterval, c.SessionTimeout/3)
	}
	if c.HeartbeatInterval <= 0 || c.HeartbeatInterval >= c.SessionTimeout {
		bad("HeartbeatInterval must be positive and below SessionTimeout (%v), got %v", c.SessionTimeout, c.HeartbeatInterval)
	}
	if c.NumStandbyReplicas < 0 {
		bad("NumStandbyReplicas must not be negative, got %d", c.NumStandbyReplicas)
	}
	if c.AcceptableRecoveryLag < 0 {
		bad("AcceptableRecoveryLag must not be negative, got %d", c.AcceptableRecoveryLag)
	}
	if c.MaxWarmupReplicas < 0 {
		bad("MaxWarmupReplicas must not be negative, got %d", c.MaxWarmupReplicas)
	}
	if c.ProbingRebalanceInterval <= 0 {
		bad("ProbingRebalanceInterval must be positive, got %v", c.ProbingRebalanceInterval)
	}
	if c.TaskTimeout <= 0 {
		bad("TaskTimeout must be positive, got %v", c.TaskTimeout)
	}
	if c.ShutdownTimeout <= 0 {
		bad("ShutdownTimeout must be positive, got %v", c.ShutdownTimeout)
	}
	if c.adminTLSSet {
		switch {
		case c.AdminTLS == nil:
			bad("AdminTLS needs a *tls.Config holding the admin server's certificate")
		case len(c.AdminTLS.Certificates) == 0 && c.AdminTLS.GetCertificate == nil && c.AdminTLS.GetConfigForClient == nil:
			bad("the AdminTLS config has no certificate: set Certificates (tls.LoadX509KeyPair) or GetCertificate")
		}
	}
	if c.adminTokenSet && c.AdminBearerToken == "" {
		bad("AdminBearerToken got an empty token: was its environment variable or file empty?")
	}
	if (c.adminTLSSet || c.adminTokenSet) && c.AdminAddr == "" {
		bad("AdminTLS and AdminBearerToken protect the admin endpoints, which are served only with AdminAddr")
	}
	switch {
	case c.registrySet && c.MetricsRegistry == nil:
		bad("MetricsRegistry needs a prometheus.Registerer, such as prometheus.NewRegistry()")
	case !c.registrySet:
		reg := prometheus.NewRegistry()
		c.MetricsRegistry, c.gatherer = reg, reg
	default:
		if g, ok := c.MetricsRegistry.(prometheus.Gatherer); ok {
			c.gatherer = g
		} else if c.AdminAddr != "" {
			bad("AdminAddr serves /metrics from MetricsRegistry, but the registry given is not a prometheus.Gatherer: pass a *prometheus.Registry")
		}
	}
	return c, errors.Join(c.errs...)
}
