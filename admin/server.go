package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Health reports the state of the application to the probes. Its methods
// are called from the server's request goroutines, concurrently with the
// application, and must be safe for that; they should answer from state the
// application keeps, without I/O.
type Health interface {
	// Alive returns nil while the application runs: it has neither failed
	// nor stopped. An error fails /healthz, and a Kubernetes liveness probe
	// then restarts the container.
	Alive() error
	// Ready returns nil when the member has its assignment and no active
	// task is restoring; otherwise an error that says why, such as "3
	// active tasks restoring". An error fails /readyz, and Kubernetes then
	// sends no traffic to the pod, which for eddy matters to interactive
	// queries and to rollouts that wait for readiness.
	Ready() error
}

// readHeaderTimeout bounds how long a client may take to send its request
// headers, so that slow clients cannot hold connections open for ever.
const readHeaderTimeout = 10 * time.Second

// Server is the admin HTTP server. Make it with New, which starts it, and
// stop it with Close.
type Server struct {
	ln   net.Listener
	http *http.Server
	log  *slog.Logger
	tls  bool
	// done is closed when the serving goroutine returns; serveErr is its
	// error, unless the server was closed, and may be read once done is
	// closed.
	done     chan struct{}
	serveErr error
}

// New listens on addr (host:port; port 0 picks a free port, which Addr
// then tells) and serves in a goroutine of its own until Close. An address
// without a host (":9090") listens on 127.0.0.1 only: to serve other
// machines (a Prometheus server, Kubernetes probes, which reach the pod's
// address), name the host, as in "0.0.0.0:9090", and consider WithTLS and
// WithBearerToken; New logs a warning when the server listens beyond
// loopback without them. It serves:
//
//   - /metrics: the metrics of g, in the format the scraper asks for.
//   - /healthz: 200 "ok" while h.Alive returns nil, else 503 with its error.
//   - /readyz: 200 "ok" while h.Ready returns nil, else 503 with its error.
//   - /: a list of these endpoints.
//
// With WithBearerToken, /metrics and / require the token; the probes do
// not (see WithBearerToken).
//
// New listens before it returns, so that a port already in use or a bad
// address fails here and not in the background. A nil log means
// slog.Default(); the server logs errors of the metrics handler and of
// serving.
func New(addr string, g prometheus.Gatherer, h Health, log *slog.Logger, opts ...Option) (*Server, error) {
	if g == nil {
		return nil, errors.New("admin: the Gatherer is nil; pass the registry the metrics are registered on (prometheus.DefaultGatherer for the global one)")
	}
	if h == nil {
		return nil, errors.New("admin: the Health is nil; pass the application's health")
	}
	if log == nil {
		log = slog.Default()
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if err := o.check(); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", listenAddr(addr))
	if err != nil {
		return nil, fmt.Errorf("admin: listen on %q (want host:port, such as :9090 or 127.0.0.1:0; is the port in use?): %w", addr, err)
	}
	protect := func(h http.Handler) http.Handler { return h }
	if o.token != "" {
		protect = requireBearer(o.token)
	}
	s := &Server{ln: ln, log: log, tls: o.tls != nil, done: make(chan struct{})}
	s.http = &http.Server{
		Handler:           handler(g, h, log, protect),
		ReadHeaderTimeout: readHeaderTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if o.tls != nil {
		s.http.TLSConfig = o.tls.Clone()
	}
	log.Info("admin endpoints listening", "addr", s.Addr(), "tls", o.tls != nil, "bearer_token", o.token != "")
	warnIfExposed(log, ln, &o)
	go s.serve()
	return s, nil
}

func (s *Server) serve() {
	defer close(s.done)
	var err error
	if s.tls {
		// The certificate is in TLSConfig.
		err = s.http.ServeTLS(s.ln, "", "")
	} else {
		err = s.http.Serve(s.ln)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return
	}
	s.log.Error("admin server stopped", "addr", s.Addr(), "err", err)
	s.serveErr = fmt.Errorf("admin: serve on %s: %w", s.Addr(), err)
}

// Addr returns the address the server listens on, with the port it got
// when New was given port 0.
func (s *Server) Addr() string {
	return s.ln.Addr().String()
}

// Close stops the server: it stops listening, waits for the requests in
// flight until ctx ends, then closes the connections that remain, and
// returns once the serving goroutine has. It returns ctx's error when
// requests were cut short, and the error that stopped serving early, if
// one did. Close is idempotent.
func (s *Server) Close(ctx context.Context) error {
	err := s.http.Shutdown(ctx)
	if err != nil {
		// The context ended with requests still in flight: cut them.
		_ = s.http.Close()
		err = fmt.Errorf("admin: close %s: requests still in flight: %w", s.Addr(), err)
	}
	<-s.done
	return errors.Join(err, s.serveErr)
}

// Handler returns the server's handler, for mounting the admin endpoints
// on a server of one's own. New serves it. It requires no token: the
// server it is mounted on authenticates, if it must.
func Handler(g prometheus.Gatherer, h Health, log *slog.Logger) http.Handler {
	return handler(g, h, log, func(h http.Handler) http.Handler { return h })
}

// handler is Handler with protect wrapped around /metrics and /.
func handler(g prometheus.Gatherer, h Health, log *slog.Logger, protect func(http.Handler) http.Handler) http.Handler {
	if log == nil {
		log = slog.Default()
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", protect(promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorLog: slogErrorLogger{log},
		// Serve what can be gathered, and log the rest, rather than fail
		// the whole scrape for one bad collector.
		ErrorHandling: promhttp.ContinueOnError,
	})))
	mux.Handle("GET /healthz", probe(h.Alive))
	mux.Handle("GET /readyz", probe(h.Ready))
	mux.Handle("GET /{$}", protect(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = fmt.Fprint(w, index)
	})))
	return mux
}

const index = `eddy admin
/metrics  Prometheus metrics
/healthz  200 while the application runs, else 503
/readyz   200 when the member has its assignment and no active task is restoring, else 503
`

// probe serves 200 "ok" when check returns nil, and 503 with its error
// otherwise. The response is never cached: a probe must see the state now.
func probe(check func() error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if err := check(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = fmt.Fprintln(w, err)
			return
		}
		_, _ = fmt.Fprintln(w, "ok")
	})
}

// slogErrorLogger is promhttp's error logger on a slog.Logger.
type slogErrorLogger struct{ log *slog.Logger }

func (l slogErrorLogger) Println(v ...any) {
	l.log.Error("admin: serve /metrics", "err", fmt.Sprint(v...))
}
