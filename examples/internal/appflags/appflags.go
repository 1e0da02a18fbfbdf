// Package appflags owns the command-line flags the example applications
// share: where Kafka is, the application's identity, and the options for
// its guarantee, membership, replicas and admin endpoints, and TLS and
// SASL. Each flag maps to one eddy option; a flag left at its zero value
// leaves eddy's default. Secrets (the SASL password, the admin token) come
// from environment variables only, never from flags.
package appflags

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddystream/eddy"
)

// Flags holds the shared flags' values after flag parsing.
type Flags struct {
	Brokers        string
	AppID          string
	StateDir       string
	CommitInterval time.Duration
	SessionTimeout time.Duration
	Heartbeat      time.Duration
	Workers        int
	SkipBad        bool
	Guarantee      string
	InstanceID     string
	Standbys       int
	AcceptableLag  int64
	MaxWarmups     int
	Probing        time.Duration
	AdminAddr      string
	Rack           string
	TaskTimeout    time.Duration
	ShutdownTime   time.Duration
	Verbose        bool
	KafkaDebug     bool
	securityFlags
}

// Register defines the shared flags on fs; appID is the default
// application id and brokersHelp the -brokers usage.
func Register(fs *flag.FlagSet, appID, brokersHelp string) *Flags {
	f := &Flags{}
	fs.StringVar(&f.Brokers, "brokers", "", brokersHelp)
	fs.StringVar(&f.AppID, "app", appID, "application id")
	fs.StringVar(&f.StateDir, "state-dir", "", "state directory (default: eddy's)")
	fs.DurationVar(&f.CommitInterval, "commit-interval", 0, "commit interval (default: eddy's)")
	fs.DurationVar(&f.SessionTimeout, "session-timeout", 0, "consumer group session timeout (default: eddy's)")
	fs.DurationVar(&f.Heartbeat, "heartbeat-interval", 0, "consumer group heartbeat interval (default: eddy's)")
	fs.IntVar(&f.Workers, "workers", 1, "workers (group members) in this instance")
	fs.BoolVar(&f.SkipBad, "skip-bad-records", false, "skip input records that do not deserialize instead of failing")
	fs.StringVar(&f.Guarantee, "guarantee", "at-least-once", "processing guarantee: at-least-once or exactly-once")
	fs.StringVar(&f.InstanceID, "instance-id", "", "static group membership: this instance's id, kept across restarts")
	fs.IntVar(&f.Standbys, "standbys", 0, "standby replicas per stateful task")
	fs.Int64Var(&f.AcceptableLag, "acceptable-lag", -1, "changelog records an instance may lag and still count as caught up; 0 allows no lag, -1 leaves eddy's default (10000)")
	fs.IntVar(&f.MaxWarmups, "max-warmups", -1, "warm-up replicas at once; 0 plans none, -1 leaves eddy's default (2)")
	fs.DurationVar(&f.Probing, "probing-interval", 0, "probing rebalance interval while warm-ups exist (default: eddy's)")
	fs.StringVar(&f.AdminAddr, "admin-addr", "", "serve /metrics, /healthz and /readyz on this host:port (\":9090\" is loopback only; \"0.0.0.0:9090\" every interface)")
	fs.StringVar(&f.Rack, "rack", "", "this instance's rack")
	fs.DurationVar(&f.TaskTimeout, "task-timeout", 0, "how long commits may keep failing before the application fails (default: eddy's)")
	fs.DurationVar(&f.ShutdownTime, "shutdown-timeout", 0, "how long a shutdown may take before Run returns anyway (default: eddy's)")
	fs.BoolVar(&f.Verbose, "v", false, "debug logging")
	fs.BoolVar(&f.KafkaDebug, "kafka-debug", false, "log franz-go's own debug output to stderr (very verbose)")
	f.securityFlags.register(fs)
	return f
}

// Logger returns the logger the flags ask for, writing text to stderr.
func (f *Flags) Logger() *slog.Logger {
	level := slog.LevelInfo
	if f.Verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// Options returns the eddy options the flags set, with log as the logger.
// Brokers and StateDir are included when set.
func (f *Flags) Options(log *slog.Logger) ([]eddy.Option, error) {
	opts := []eddy.Option{eddy.ApplicationID(f.AppID), eddy.Logger(log), eddy.Workers(f.Workers)}
	if f.Brokers != "" {
		opts = append(opts, eddy.Brokers(strings.Split(f.Brokers, ",")...))
	}
	if f.StateDir != "" {
		opts = append(opts, eddy.StateDir(f.StateDir))
	}
	switch f.Guarantee {
	case "at-least-once":
	case "exactly-once":
		opts = append(opts, eddy.ProcessingGuarantee(eddy.ExactlyOnce))
	default:
		return nil, fmt.Errorf("-guarantee %q: want at-least-once or exactly-once", f.Guarantee)
	}
	if f.SkipBad {
		opts = append(opts, eddy.OnDeserializationError(eddy.SkipOnDeserializationError))
	}
	if f.KafkaDebug {
		opts = append(opts, eddy.KafkaOptions(kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelDebug, func() string {
			return time.Now().Format("15:04:05.000 ")
		}))))
	}
	set := func(cond bool, o eddy.Option) {
		if cond {
			opts = append(opts, o)
		}
	}
	set(f.CommitInterval > 0, eddy.CommitInterval(f.CommitInterval))
	set(f.SessionTimeout > 0, eddy.SessionTimeout(f.SessionTimeout))
	set(f.Heartbeat > 0, eddy.HeartbeatInterval(f.Heartbeat))
	set(f.InstanceID != "", eddy.InstanceID(f.InstanceID))
	set(f.Standbys > 0, eddy.NumStandbyReplicas(f.Standbys))
	set(f.AcceptableLag >= 0, eddy.AcceptableRecoveryLag(f.AcceptableLag))
	set(f.MaxWarmups >= 0, eddy.MaxWarmupReplicas(f.MaxWarmups))
	set(f.Probing > 0, eddy.ProbingRebalanceInterval(f.Probing))
	set(f.AdminAddr != "", eddy.AdminAddr(f.AdminAddr))
	set(f.Rack != "", eddy.Rack(f.Rack))
	set(f.TaskTimeout > 0, eddy.TaskTimeout(f.TaskTimeout))
	set(f.ShutdownTime > 0, eddy.ShutdownTimeout(f.ShutdownTime))
	security, err := f.securityOptions(log, f.AdminAddr)
	if err != nil {
		return nil, err
	}
	return append(opts, security...), nil
}
