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
package admin
