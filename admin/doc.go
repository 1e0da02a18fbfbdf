// Package admin serves eddy's admin endpoints over HTTP: the Prometheus
// metrics at /metrics, a liveness probe at /healthz and a readiness probe
// at /readyz, with a list of them at /.
//
// New listens at once, so that a bad address or a port in use is an error
// of New, and serves from one goroutine that Close stops and waits for:
//
//	srv, err := admin.New(":9090", registry, app, logger)
//	if err != nil { ... }
//	defer srv.Close(context.Background())
//
// The probes answer 200 with "ok" or 503 with the reason, from the
// application's Health. Point a Kubernetes livenessProbe at /healthz and a
// readinessProbe at /readyz: an instance whose active tasks are restoring
// their stores reads as not ready, so a rolling restart waits for it before
// it stops the next instance.
//
// # Exposure
//
// An address without a host, such as ":9090", listens on 127.0.0.1 only.
// Kubernetes probes and a Prometheus server on another machine reach the
// pod's address, so there the address must name it: "0.0.0.0:9090".
// Beyond loopback, protect the endpoints: WithTLS serves HTTPS (with
// client certificates if its config requires them), and WithBearerToken
// requires a token on /metrics and / (the probes stay open, see
// WithBearerToken). New logs a warning when it listens beyond loopback
// without authentication, or with a token but without TLS:
//
//	cert, err := tls.LoadX509KeyPair("admin.pem", "admin-key.pem")
//	if err != nil { ... }
//	srv, err := admin.New("0.0.0.0:9090", registry, app, logger,
//		admin.WithTLS(&tls.Config{Certificates: []tls.Certificate{cert}}),
//		admin.WithBearerToken(os.Getenv("EDDY_ADMIN_TOKEN")))
package admin
