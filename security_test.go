package eddy_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/eddystream/eddy"
	"github.com/eddystream/eddy/internal/testtls"
)

func scram512(user, pass string) sasl.Mechanism {
	return scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()
}

// TestTLSAndSASLReachEveryClient runs word count exactly-once against a
// broker that accepts only TLS connections authenticated with SASL, so
// that every client eddy makes must use both to do its part: the admin
// client (topics), the group members and their transactions (phase 1),
// the standby consumer (phase 2) and the restore client (phase 3). A
// client without them stalls its phase, and the test fails naming it.
func TestTLSAndSASLReachEveryClient(t *testing.T) {
	certs := testtls.New(t)
	for _, tc := range []struct {
		name   string
		mutual bool
		mech   sasl.Mechanism
		full   bool // all three phases, or the first only
	}{
		{"SCRAM-SHA-512 over TLS", false, scram512("eddy", "s3cret"), true},
		{"SCRAM-SHA-256 over mutual TLS", true, scram.Auth{User: "eddy256", Pass: "s3cret"}.AsSha256Mechanism(), false},
		{"PLAIN over TLS", false, plain.Auth{User: "plain", Pass: "s3cret"}.AsMechanism(), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addrs := cluster(t, kfake.TLS(certs.ServerConfig(tc.mutual)), kfake.EnableSASL(),
				kfake.Superuser("SCRAM-SHA-512", "eddy", "s3cret"),
				kfake.Superuser("SCRAM-SHA-256", "eddy256", "s3cret"),
				kfake.Superuser("PLAIN", "plain", "s3cret"),
				kfake.SeedTopics(2, "lines", "counts"))
			testSecureWordCount(t, addrs, certs.ClientConfig(tc.mutual), tc.mech, tc.full)
		})
	}
}

func testSecureWordCount(t *testing.T, addrs []string, tlsCfg *tls.Config, mech sasl.Mechanism, full bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	security := []eddy.Option{eddy.TLS(tlsCfg), eddy.SASL(mech)}
	clientOpts := []kgo.Opt{kgo.SeedBrokers(addrs...), kgo.DialTLSConfig(tlsCfg), kgo.SASL(mech)}
	cl, err := kgo.NewClient(clientOpts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	consumer, err := kgo.NewClient(append(clientOpts, kgo.ConsumeTopics("counts"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	want, got := map[string]int64{}, map[string]int64{}
	next := 0
	produce := func(n int) {
		t.Helper()
		var recs []*kgo.Record
		for range n {
			line := fmt.Sprintf("w%d w%d", next%7, next%13)
			for _, w := range strings.Fields(line) {
				want[w]++
			}
			recs = append(recs, &kgo.Record{Topic: "lines", Key: []byte(fmt.Sprint(next)), Value: []byte(line)})
			next++
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	start := func(name string, reg *prometheus.Registry, opts ...eddy.Option) (*eddy.App, chan error) {
		opts = append(append([]eddy.Option{eddy.ProcessingGuarantee(eddy.ExactlyOnce), eddy.MetricsRegistry(reg)}, security...), opts...)
		app := newApp(t, wordCount(t, "lines", "counts"), addrs, "secure", opts...)
		errc := make(chan error, 1)
		go func() { errc <- app.Run(ctx) }()
		return app, errc
	}
	stop := func(name string, app *eddy.App, errc chan error) {
		t.Helper()
		if err := app.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; err != nil {
			t.Fatalf("%s: Run: %v", name, err)
		}
	}
	waitFor := func(phase string, cond func() (bool, string)) {
		t.Helper()
		for {
			ok, state := cond()
			if ok {
				return
			}
			if ctx.Err() != nil {
				t.Fatalf("%s: %s", phase, state)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// Phase 1: the admin client creates the internal topics; the group
	// member consumes, produces and commits transactions.
	produce(100)
	regA := prometheus.NewRegistry()
	a, errA := start("A", regA, eddy.NumStandbyReplicas(1))
	readCounts(t, ctx, consumer, got, want)
	if !full {
		stop("A", a, errA)
		return
	}

	// Phase 2: B joins with a standby of A's stateful tasks; its standby
	// consumer replays their changelogs. The admin client lists the
	// changelogs' ends, so a standby that cannot fetch shows a lag of its
	// whole changelog: at least a record and a commit marker. One that
	// replays shows a lag of at most the last commit marker, which a
	// consumer does not see (docs/architecture.md).
	regB := prometheus.NewRegistry()
	b, errB := start("B", regB, eddy.NumStandbyReplicas(1))
	waitFor("B's standbys do not catch up", func() (bool, string) {
		standbys, _ := gauge(t, regB, "eddy_tasks", map[string]string{"state": "standby"})
		lag, series := gauge(t, regB, "eddy_standby_lag_records", nil)
		return standbys > 0 && series == int(standbys) && lag <= standbys,
			fmt.Sprintf("%v standby tasks, lag %v over %d series", standbys, lag, series)
	})
	stop("B", b, errB)
	stop("A", a, errA)

	// Phase 3: C starts on an empty state directory; its restore client
	// rebuilds the counts from the changelogs before it counts more.
	regC := prometheus.NewRegistry()
	c, errC := start("C", regC)
	produce(50)
	readCounts(t, ctx, consumer, got, want)
	restored, _ := gauge(t, regC, "eddy_restored_records_total", nil)
	if restored == 0 {
		t.Errorf("C restored no changelog record")
	}
	stop("C", c, errC)
}

// TestUntrustedBrokerFailsRun checks that a broker certificate the TLS
// config does not trust ends Run at once with the verification error,
// rather than retrying. (A wrong SASL password is tested against a real
// broker in e2e: kfake closes the connection where Kafka answers
// SASL_AUTHENTICATION_FAILED.)
func TestUntrustedBrokerFailsRun(t *testing.T) {
	certs := testtls.New(t)
	addrs := cluster(t, kfake.TLS(certs.ServerConfig(false)), kfake.SeedTopics(1, "in", "out"))
	other := testtls.New(t) // a CA that did not sign the broker's certificate
	app := newApp(t, wordCount(t, "in", "out"), addrs, "untrusted", eddy.TLS(other.ClientConfig(false)))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	err := app.Run(ctx)
	took := time.Since(start)
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Fatalf("Run = %v, want an x509.UnknownAuthorityError", err)
	}
	if took > 10*time.Second {
		t.Errorf("Run took %v to fail, want a few seconds at most", took)
	}
	t.Logf("Run failed after %v: %v", took.Round(time.Millisecond), err)
}

func TestInvalidSecurityOptions(t *testing.T) {
	top := wordCount(t, "in", "out")
	cert := testtls.New(t).Server
	for name, tc := range map[string]struct {
		opts []eddy.Option
		want string
	}{
		"nil TLS":              {[]eddy.Option{eddy.TLS(nil)}, "TLS needs a *tls.Config"},
		"nil SASL":             {[]eddy.Option{eddy.SASL(nil)}, "SASL needs a mechanism"},
		"nil admin TLS":        {[]eddy.Option{eddy.AdminAddr(":0"), eddy.AdminTLS(nil)}, "AdminTLS needs a *tls.Config"},
		"admin TLS, no cert":   {[]eddy.Option{eddy.AdminAddr(":0"), eddy.AdminTLS(&tls.Config{})}, "has no certificate"},
		"empty admin token":    {[]eddy.Option{eddy.AdminAddr(":0"), eddy.AdminBearerToken("")}, "empty token"},
		"admin TLS, no addr":   {[]eddy.Option{eddy.AdminTLS(&tls.Config{Certificates: []tls.Certificate{cert}})}, "only with AdminAddr"},
		"admin token, no addr": {[]eddy.Option{eddy.AdminBearerToken("t")}, "only with AdminAddr"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := eddy.New(top, append([]eddy.Option{eddy.ApplicationID("a")}, tc.opts...)...)
			if !errors.Is(err, eddy.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrInvalidConfig mentioning %q", err, tc.want)
			}
		})
	}
}

// TestAdminTLSAndBearerToken checks that the App's admin server takes
// AdminTLS and AdminBearerToken: HTTPS only, /metrics behind the token,
// the probes open.
func TestAdminTLSAndBearerToken(t *testing.T) {
	certs := testtls.New(t)
	addrs := cluster(t, kfake.SeedTopics(1, "in", "out"))
	app := newApp(t, wordCount(t, "in", "out"), addrs, "admin-secure", eddy.AdminAddr("127.0.0.1:0"),
		eddy.AdminTLS(certs.ServerConfig(false)), eddy.AdminBearerToken("s3cret"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- app.Run(ctx) }()
	defer func() {
		if err := app.Close(); err != nil {
			t.Error(err)
		}
		if err := <-errc; err != nil {
			t.Error(err)
		}
	}()
	addr := app.AdminAddr()
	for addr == "" {
		if ctx.Err() != nil {
			t.Fatal("the admin server did not start")
		}
		time.Sleep(10 * time.Millisecond)
		addr = app.AdminAddr()
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, TLSClientConfig: certs.ClientConfig(false)}, Timeout: 10 * time.Second}
	for _, tc := range []struct {
		path, token string
		code        int
	}{
		{"/metrics", "", http.StatusUnauthorized},
		{"/metrics", "wrong", http.StatusUnauthorized},
		{"/metrics", "s3cret", http.StatusOK},
		{"/healthz", "", http.StatusOK},
	} {
		req, err := http.NewRequestWithContext(ctx, "GET", "https://"+addr+tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", tc.path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Errorf("GET %s with token %q = %d, want %d", tc.path, tc.token, resp.StatusCode, tc.code)
		}
	}
}
