package eddy

import (
	"context"
	"errors"
	"sync"

	"github.com/eddystream/eddy/internal/engine"
	"github.com/eddystream/eddy/topology"
)

// App runs one topology as one instance of an application. Create it with
// New, run it with Run, stop it by cancelling Run's context or with Close.
type App struct {
	eng *engine.Engine

	mu      sync.Mutex
	started bool
	cancel  context.CancelFunc
	done    chan struct{}
}

// ErrAlreadyRun is returned by a second call to Run.
var ErrAlreadyRun = errors.New("eddy: Run was already called; an App runs once, create a new one")

// New validates the options and returns an App for top. It does not
// connect to Kafka: Run does. Configuration errors match
// errors.Is(err, ErrInvalidConfig).
func New(top *topology.Topology, opts ...Option) (*App, error) {
	if top == nil {
		return nil, errors.Join(ErrInvalidConfig, errors.New("eddy: the topology is nil"))
	}
	c, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	eng := engine.New(top, engine.Config{
		ApplicationID:        c.appID,
		Brokers:              c.brokers,
		StateDir:             c.stateDir,
		CommitInterval:       c.commitInterval,
		Workers:              c.workers,
		KafkaOptions:         c.kafkaOpts,
		Logger:               c.logger,
		SkipBadRecords:       c.deser == SkipOnDeserializationError,
		SkipProcessingErrors: c.processing == SkipOnProcessingError,
		DeadLetterTopic:      c.deadLetter,
		ExactlyOnce:          c.guarantee == ExactlyOnce,
		NoProduceRetries:     c.production == FailOnProductionError,
		Replication:          c.replication,
		SessionTimeout:       c.sessionTimeout,
	})
	return &App{eng: eng, done: make(chan struct{})}, nil
}

// Run runs the application until ctx ends or a fatal error occurs. After
// ctx ends it commits, writes checkpoints, leaves the group and returns
// nil. A fatal error (a missing topic, a record the handler refuses, a
// processor's error) is returned after the worker stops.
func (a *App) Run(ctx context.Context) error {
	a.mu.Lock()
	if a.started {
		a.mu.Unlock()
		return ErrAlreadyRun
	}
	a.started = true
	ctx, a.cancel = context.WithCancel(ctx)
	a.mu.Unlock()
	defer close(a.done)
	defer a.cancel()
	return a.eng.Run(ctx)
}

// Close stops a running App and waits until Run has returned; it leaves no
// goroutine behind. Calling it on an App that never ran is a no-op.
func (a *App) Close() error {
	a.mu.Lock()
	started, cancel := a.started, a.cancel
	a.mu.Unlock()
	if !started {
		return nil
	}
	cancel()
	<-a.done
	return nil
}

// SkippedRecords is the number of input records dropped by
// SkipOnDeserializationError and SkipOnProcessingError.
func (a *App) SkippedRecords() int64 { return a.eng.Skipped() }
