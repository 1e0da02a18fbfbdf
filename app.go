package eddy

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eddystream/eddy/admin"
	"github.com/eddystream/eddy/internal/engine"
	"github.com/eddystream/eddy/internal/metrics"
	"github.com/eddystream/eddy/state/pebblestore"
	"github.com/eddystream/eddy/topology"
)

// App runs one topology as one instance of an application. Create it with
// New, run it with Run, stop it by cancelling Run's context or with Close.
type App struct {
	eng *engine.Engine
	cfg config

	mu      sync.Mutex
	admin   *admin.Server
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
	m, err := metrics.New(c.MetricsRegistry, prometheus.Labels{"application": c.ApplicationID})
	if err != nil {
		return nil, err
	}
	// The stores declared without a backend of their own go to Pebble, all
	// on one block cache of pebblestore.DefaultSupplierCacheSize.
	stores, err := pebblestore.NewSupplier()
	if err != nil {
		return nil, err
	}
	eng := engine.New(top, engine.Config{Settings: c.Settings, Metrics: m, DefaultSupplier: stores})
	return &App{eng: eng, cfg: c, done: make(chan struct{})}, nil
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
	if a.cfg.AdminAddr != "" {
		var adminOpts []admin.Option
		if a.cfg.AdminTLS != nil {
			adminOpts = append(adminOpts, admin.WithTLS(a.cfg.AdminTLS))
		}
		if a.cfg.AdminBearerToken != "" {
			adminOpts = append(adminOpts, admin.WithBearerToken(a.cfg.AdminBearerToken))
		}
		srv, err := admin.New(a.cfg.AdminAddr, a.cfg.gatherer, a.eng, a.cfg.Logger, adminOpts...)
		if err != nil {
			return err
		}
		a.mu.Lock()
		a.admin = srv
		a.mu.Unlock()
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := srv.Close(ctx); err != nil {
				a.cfg.Logger.Warn("close admin server", "err", err)
			}
		}()
	}
	return a.eng.Run(ctx)
}

// AdminAddr returns the address the admin endpoints listen on (useful
// with AdminAddr(":0")), or "" when they are not served or Run has not
// started them yet.
func (a *App) AdminAddr() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.admin == nil {
		return ""
	}
	return a.admin.Addr()
}

// Alive reports whether the App runs: nil until it fails. /healthz
// answers it.
func (a *App) Alive() error { return a.eng.Alive() }

// Ready reports whether the App's active tasks all run: nil once its
// workers run and none of its active tasks is restoring. /readyz answers
// it.
func (a *App) Ready() error { return a.eng.Ready() }

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
