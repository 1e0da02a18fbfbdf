package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
)

// Option configures New.
type Option func(*options)

type options struct {
	tls      *tls.Config
	tlsSet   bool
	token    string
	tokenSet bool
}

// WithTLS serves HTTPS with cfg, which must hold the server's certificate
// (Certificates, GetCertificate or GetConfigForClient). To require client
// certificates as well (mutual TLS), set cfg.ClientAuth to
// tls.RequireAndVerifyClientCert and cfg.ClientCAs to the CAs that sign
// them. Default: plain HTTP.
func WithTLS(cfg *tls.Config) Option {
	return func(o *options) { o.tls, o.tlsSet = cfg, true }
}

// WithBearerToken requires the header "Authorization: Bearer <token>" on
// /metrics and /: a request without it, or with another token, gets 401
// with a WWW-Authenticate header (RFC 6750). The probes /healthz and
// /readyz stay open, because a Kubernetes httpGet probe can send headers
// only as literal values in the pod spec, where a secret does not belong;
// they tell only whether the application runs and is ready, and why not.
// Prometheus sends the token with a scrape config's authorization
// (credentials_file). Use it with WithTLS, or the token travels in clear
// text. Default: no token.
func WithBearerToken(token string) Option {
	return func(o *options) { o.token, o.tokenSet = token, true }
}

// check validates the options.
func (o *options) check() error {
	var errs []error
	if o.tlsSet {
		switch {
		case o.tls == nil:
			errs = append(errs, errors.New("admin: WithTLS needs a *tls.Config holding the server's certificate"))
		case !hasCertificate(o.tls):
			errs = append(errs, errors.New("admin: the WithTLS config has no certificate: set Certificates (tls.LoadX509KeyPair) or GetCertificate"))
		}
	}
	if o.tokenSet && o.token == "" {
		errs = append(errs, errors.New("admin: WithBearerToken got an empty token; was its environment variable or file empty?"))
	}
	return errors.Join(errs...)
}

// hasCertificate reports whether a server can find a certificate in cfg.
func hasCertificate(cfg *tls.Config) bool {
	return len(cfg.Certificates) > 0 || cfg.GetCertificate != nil || cfg.GetConfigForClient != nil
}

// listenAddr binds an address without a host (":9090") to the loopback
// interface: the endpoints reach beyond the machine only when the address
// says so ("0.0.0.0:9090", a host name or an interface's address).
func listenAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host != "" {
		return addr // net.Listen reports a malformed address
	}
	return net.JoinHostPort("127.0.0.1", port)
}

// warnIfExposed logs a warning when the server listens beyond the loopback
// interface without authenticating its clients, or sends a bearer token
// without TLS.
func warnIfExposed(log *slog.Logger, ln net.Listener, o *options) {
	tcp, ok := ln.Addr().(*net.TCPAddr)
	if !ok || tcp.IP.IsLoopback() {
		return
	}
	mutualTLS := o.tls != nil && o.tls.ClientAuth == tls.RequireAndVerifyClientCert
	switch {
	case o.token == "" && !mutualTLS:
		log.Warn("admin endpoints listen beyond loopback without authentication: whoever reaches the address can read /metrics; set a bearer token (and TLS), or bind 127.0.0.1",
			"addr", tcp.String(), "tls", o.tls != nil, "bearer_token", false)
	case o.tls == nil:
		log.Warn("admin endpoints listen beyond loopback without TLS: the bearer token travels in clear text; set TLS",
			"addr", tcp.String(), "tls", false, "bearer_token", true)
	}
}

// bearerRealm names the protected space in WWW-Authenticate.
const bearerRealm = `Bearer realm="eddy admin"`

// requireBearer wraps h so that it serves only requests that carry token.
// The comparison is of SHA-256 digests in constant time, so that neither
// the token's content nor its length shows in the response time.
func requireBearer(token string) func(http.Handler) http.Handler {
	want := sha256.Sum256([]byte(token))
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got, ok := bearerToken(r.Header.Get("Authorization"))
			if !ok {
				unauthorized(w, bearerRealm, "a bearer token is required (Authorization: Bearer <token>)")
				return
			}
			sum := sha256.Sum256([]byte(got))
			if subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
				unauthorized(w, bearerRealm+`, error="invalid_token"`, "the bearer token is not valid")
				return
			}
			h.ServeHTTP(w, r)
		})
	}
}

// bearerToken returns the token of an Authorization header of the Bearer
// scheme, whose name is case-insensitive (RFC 7235).
func bearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

func unauthorized(w http.ResponseWriter, challenge, msg string) {
	w.Header().Set("WWW-Authenticate", challenge)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = w.Write([]byte(msg + "\n"))
}
