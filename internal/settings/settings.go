// Package settings owns an application's settings: one struct that package
// eddy's options write into, that the engine reads and whose Assignor part
// the group balancer and the assignor read. Each setting has one name from
// option to assignor: the name of the option (or, for the handling and
// guarantee options, of the constant that selects it) that sets it.
//
// Defaults returns the settings with every default filled in; options
// overwrite fields, so a zero an option writes stays zero. Package eddy
// validates the result; the engine and the assignor take the values
// literally.
package settings

import (
	"crypto/tls"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
)

// Settings holds every setting of an application. Each field is set by the
// eddy option of the same name, which documents it.
type Settings struct {
	ApplicationID  string
	Brokers        []string
	StateDir       string
	CommitInterval time.Duration
	// ExactlyOnce is set by ProcessingGuarantee(ExactlyOnce).
	ExactlyOnce bool
	Workers     int
	// KafkaOptions are the options every Kafka client of the engine ends
	// with. After validation they start with the options TLS and SASL
	// give, so that the application's own can override them.
	KafkaOptions []kgo.Opt
	TLS          *tls.Config
	SASL         sasl.Mechanism
	Logger       *slog.Logger
	// SkipOnDeserializationError is set by
	// OnDeserializationError(SkipOnDeserializationError).
	SkipOnDeserializationError bool
	// SkipOnProcessingError is set by OnProcessingError(SkipOnProcessingError).
	SkipOnProcessingError bool
	// FailOnProductionError is set by OnProductionError(FailOnProductionError).
	FailOnProductionError bool
	DeadLetterTopic       string
	ReplicationFactor     int16
	SessionTimeout        time.Duration
	HeartbeatInterval     time.Duration
	InstanceID            string
	Endpoint              string
	Rack                  string
	Assignor
	TaskTimeout      time.Duration
	ShutdownTimeout  time.Duration
	AdminAddr        string
	AdminTLS         *tls.Config
	AdminBearerToken string
	MetricsRegistry  prometheus.Registerer
}

// Assignor holds the settings of the group balancer and its assignor,
// taken literally: a zero is a zero.
type Assignor struct {
	// NumStandbyReplicas is how many standby replicas of each stateful
	// task the leader assigns.
	NumStandbyReplicas int
	// AcceptableRecoveryLag is the lag (changelog records, summed over a
	// task's changelog partitions) up to which an instance's state counts
	// as caught up; 0 means only state with no lag does.
	AcceptableRecoveryLag int64
	// MaxWarmupReplicas is how many warm-up replicas the group may have at
	// once; 0 means none.
	MaxWarmupReplicas int
	// ProbingRebalanceInterval is how long after an assignment that asks
	// for a probing rebalance the member triggers it.
	ProbingRebalanceInterval time.Duration
}

// The defaults that do not depend on other settings.
const (
	DefaultAcceptableRecoveryLag    int64 = 10_000
	DefaultMaxWarmupReplicas              = 2
	DefaultProbingRebalanceInterval       = 10 * time.Minute
	DefaultSessionTimeout                 = 45 * time.Second
	DefaultTaskTimeout                    = 5 * time.Minute
	DefaultShutdownTimeout                = 30 * time.Second
	// DefaultHeartbeatInterval is the heartbeat interval unless a third of
	// the session timeout is less.
	DefaultHeartbeatInterval = time.Second
	// DefaultCommitInterval and DefaultExactlyOnceCommitInterval are the
	// commit intervals under at-least-once and exactly-once.
	DefaultCommitInterval            = 30 * time.Second
	DefaultExactlyOnceCommitInterval = 100 * time.Millisecond
)

// Defaults returns the settings an application has before its options
// apply. CommitInterval and HeartbeatInterval are left zero: their defaults
// depend on other settings (see DefaultCommitInterval and
// DefaultHeartbeatInterval), so package eddy fills them in when no option
// set them.
func Defaults() Settings {
	return Settings{
		Brokers:           []string{"localhost:9092"},
		StateDir:          filepath.Join(os.TempDir(), "eddy"),
		Workers:           1,
		Logger:            slog.Default(),
		ReplicationFactor: -1,
		SessionTimeout:    DefaultSessionTimeout,
		Assignor: Assignor{
			AcceptableRecoveryLag:    DefaultAcceptableRecoveryLag,
			MaxWarmupReplicas:        DefaultMaxWarmupReplicas,
			ProbingRebalanceInterval: DefaultProbingRebalanceInterval,
		},
		TaskTimeout:     DefaultTaskTimeout,
		ShutdownTimeout: DefaultShutdownTimeout,
	}
}
