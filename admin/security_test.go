package admin_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eddystream/eddy/admin"
	"github.com/eddystream/eddy/internal/testtls"
)

// logBuffer is a logger whose output a test reads.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *slog.Logger { return slog.New(slog.NewTextHandler(b, nil)) }

func startWith(t *testing.T, addr string, log *slog.Logger, opts ...admin.Option) *admin.Server {
	t.Helper()
	srv, err := admin.New(addr, prometheus.NewRegistry(), &fakeHealth{}, log, opts...)
	if err != nil {
		t.Fatalf("New(%q): %v", addr, err)
	}
	t.Cleanup(func() {
		if err := srv.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return srv
}

func TestAddressWithoutHostListensOnLoopback(t *testing.T) {
	for _, addr := range []string{":0", "127.0.0.1:0", "localhost:0"} {
		srv := startWith(t, addr, quiet)
		host, _, err := net.SplitHostPort(srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			t.Errorf("New(%q) listens on %s, want a loopback address", addr, srv.Addr())
		}
	}
	// Beyond loopback only when the address says so.
	srv := startWith(t, "0.0.0.0:0", quiet)
	host, _, _ := net.SplitHostPort(srv.Addr())
	if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
		t.Errorf(`New("0.0.0.0:0") listens on %s, want every interface`, srv.Addr())
	}
}

func TestExposureWarnings(t *testing.T) {
	certs := testtls.New(t)
	for _, tc := range []struct {
		name string
		addr string
		opts []admin.Option
		want string // "" for no warning
	}{
		{"loopback", ":0", nil, ""},
		{"loopback with token", "127.0.0.1:0", []admin.Option{admin.WithBearerToken("s3cret")}, ""},
		{"exposed", "0.0.0.0:0", nil, "without authentication"},
		{"exposed with TLS only", "0.0.0.0:0", []admin.Option{admin.WithTLS(certs.ServerConfig(false))}, "without authentication"},
		{"exposed with token only", "0.0.0.0:0", []admin.Option{admin.WithBearerToken("s3cret")}, "without TLS"},
		{"exposed with TLS and token", "0.0.0.0:0", []admin.Option{admin.WithTLS(certs.ServerConfig(false)), admin.WithBearerToken("s3cret")}, ""},
		{"exposed with mutual TLS", "0.0.0.0:0", []admin.Option{admin.WithTLS(certs.ServerConfig(true))}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log logBuffer
			startWith(t, tc.addr, log.logger(), tc.opts...)
			warned := strings.Contains(log.String(), "level=WARN")
			switch {
			case tc.want == "" && warned:
				t.Errorf("unexpected warning: %s", log.String())
			case tc.want != "" && !strings.Contains(log.String(), tc.want):
				t.Errorf("log %q does not warn %q", log.String(), tc.want)
			}
			if !strings.Contains(log.String(), `msg="admin endpoints listening"`) {
				t.Errorf("log %q does not say where the endpoints listen", log.String())
			}
		})
	}
}

func TestBearerToken(t *testing.T) {
	srv := startWith(t, "127.0.0.1:0", quiet, admin.WithBearerToken("s3cret"))
	for _, tc := range []struct {
		path, auth string
		code       int
		challenge  string
	}{
		{"/metrics", "", 401, `Bearer realm="eddy admin"`},
		{"/metrics", "Bearer wrong", 401, `Bearer realm="eddy admin", error="invalid_token"`},
		{"/metrics", "Bearer s3cre", 401, `Bearer realm="eddy admin", error="invalid_token"`},
		{"/metrics", "Basic czNjcmV0", 401, `Bearer realm="eddy admin"`},
		{"/metrics", "Bearer s3cret", 200, ""},
		{"/metrics", "bearer s3cret", 200, ""},
		{"/", "", 401, `Bearer realm="eddy admin"`},
		{"/", "Bearer s3cret", 200, ""},
		// Probes stay open for Kubernetes, with or without a token.
		{"/healthz", "", 200, ""},
		{"/readyz", "", 200, ""},
		{"/healthz", "Bearer wrong", 200, ""},
	} {
		req, err := http.NewRequest("GET", "http://"+srv.Addr()+tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", tc.path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.code || resp.Header.Get("WWW-Authenticate") != tc.challenge {
			t.Errorf("GET %s with %q = %d, WWW-Authenticate %q; want %d, %q", tc.path, tc.auth, resp.StatusCode,
				resp.Header.Get("WWW-Authenticate"), tc.code, tc.challenge)
		}
	}
}

// tlsClient trusts cfg's roots and keeps no idle connections.
func tlsClient(cfg *tls.Config) *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true, TLSClientConfig: cfg}, Timeout: 10 * time.Second}
}

func TestTLS(t *testing.T) {
	certs := testtls.New(t)
	srv := startWith(t, "127.0.0.1:0", quiet, admin.WithTLS(certs.ServerConfig(false)))
	resp, err := tlsClient(certs.ClientConfig(false)).Get("https://" + srv.Addr() + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz over TLS: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET /healthz over TLS = %d, want 200", resp.StatusCode)
	}
	// A client that does not trust the CA refuses the server.
	_, err = tlsClient(&tls.Config{RootCAs: x509.NewCertPool()}).Get("https://" + srv.Addr() + "/healthz")
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Errorf("GET from a client without the CA: %v, want an unknown authority error", err)
	}
	// Plain HTTP gets no answer of the application's.
	resp, err = client.Get("http://" + srv.Addr() + "/healthz")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP to the TLS server = %d, want 400", resp.StatusCode)
		}
	}
}

func TestMutualTLS(t *testing.T) {
	certs := testtls.New(t)
	srv := startWith(t, "127.0.0.1:0", quiet, admin.WithTLS(certs.ServerConfig(true)))
	resp, err := tlsClient(certs.ClientConfig(true)).Get("https://" + srv.Addr() + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics with a client certificate: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET /metrics with a client certificate = %d, want 200", resp.StatusCode)
	}
	if resp, err := tlsClient(certs.ClientConfig(false)).Get("https://" + srv.Addr() + "/metrics"); err == nil {
		resp.Body.Close()
		t.Errorf("GET /metrics without a client certificate = %d, want a failed handshake", resp.StatusCode)
	}
}

func TestBadSecurityOptions(t *testing.T) {
	for name, tc := range map[string]struct {
		opt  admin.Option
		want string
	}{
		"nil TLS config":     {admin.WithTLS(nil), "needs a *tls.Config"},
		"TLS without a cert": {admin.WithTLS(&tls.Config{}), "no certificate"},
		"empty bearer token": {admin.WithBearerToken(""), "empty token"},
	} {
		srv, err := admin.New("127.0.0.1:0", prometheus.NewRegistry(), &fakeHealth{}, quiet, tc.opt)
		if err == nil {
			_ = srv.Close(context.Background())
			t.Errorf("%s: New succeeded", name)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q does not say %q", name, err, tc.want)
		}
	}
}
