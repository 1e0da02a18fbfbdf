package kafkabroker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// TestSASLSSLListener starts a broker JVM with a SASL_SSL listener and
// checks it: a client that trusts the CA and knows the SCRAM-SHA-512
// password creates a topic, produces and consumes; a wrong password is
// refused with SASL_AUTHENTICATION_FAILED; a client without TLS gets
// nothing; the PLAINTEXT listener still serves.
func TestSASLSSLListener(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Kafka broker; skipped with -short")
	}
	t.Setenv(EnvBrokers, "")
	begin := time.Now()
	b, err := Start(t.Context(), WithSASLSSL("eddy-test", "s3cret-Pass"), WithLogger(slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("broker with SASL_SSL ready in %v", time.Since(begin).Round(10*time.Millisecond))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last lines of the broker log:\n%s", b.LogTail(40))
		}
		if err := b.Close(); err != nil {
			t.Error(err)
		}
	})
	if b.Source() != SourceJVM {
		t.Fatalf("Source() = %q, want %q", b.Source(), SourceJVM)
	}
	sec := b.SASLSSL()
	if sec == nil || len(sec.Addrs) != 1 || sec.Mechanism != "SCRAM-SHA-512" || sec.User != "eddy-test" || sec.Password != "s3cret-Pass" {
		t.Fatalf("SASLSSL() = %+v", sec)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(sec.CAPEM) {
		t.Fatalf("CAPEM holds no certificate: %q", sec.CAPEM)
	}
	tlsCfg := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	newClient := func(pass string, opts ...kgo.Opt) *kgo.Client {
		t.Helper()
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(sec.Addrs...), kgo.DialTLSConfig(tlsCfg),
			kgo.SASL(scram.Auth{User: sec.User, Pass: pass}.AsSha512Mechanism())}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	cl := newClient(sec.Password, kgo.ConsumeTopics("secure"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "secure"); err != nil {
		t.Fatalf("create a topic over SASL_SSL: %v", err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "secure", Value: []byte("hello")}).FirstErr(); err != nil {
		t.Fatalf("produce over SASL_SSL: %v", err)
	}
	fs := cl.PollFetches(ctx)
	if err := fs.Err0(); err != nil || fs.NumRecords() != 1 || string(fs.Records()[0].Value) != "hello" {
		t.Fatalf("consume over SASL_SSL: %v, %d records", err, fs.NumRecords())
	}

	// The broker advertises the SASL_SSL listener on the SASL_SSL
	// listener, so a client that bootstraps there stays there.
	md, err := kadm.NewClient(cl).BrokerMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := md.Brokers[0]; got.Host != "127.0.0.1" || sec.Addrs[0] != fmt.Sprintf("127.0.0.1:%d", got.Port) {
		t.Errorf("the SASL_SSL listener advertises %s:%d, want %s", got.Host, got.Port, sec.Addrs[0])
	}

	wrong := newClient("wrong")
	err = wrong.Ping(ctx)
	if !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Errorf("a wrong password: Ping = %v, want SASL_AUTHENTICATION_FAILED", err)
	}

	plainToSecure, err := kgo.NewClient(kgo.SeedBrokers(sec.Addrs...), kgo.DialTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer plainToSecure.Close()
	shortCtx, shortCancel := context.WithTimeout(ctx, 3*time.Second)
	defer shortCancel()
	if err := plainToSecure.Ping(shortCtx); err == nil {
		t.Error("a client without TLS and SASL got an answer from the SASL_SSL listener")
	}

	plainCl, err := kgo.NewClient(kgo.SeedBrokers(b.Addrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer plainCl.Close()
	if err := plainCl.Ping(ctx); err != nil {
		t.Errorf("the PLAINTEXT listener: %v", err)
	}
}

func TestSASLSSLOptionErrors(t *testing.T) {
	t.Setenv(EnvBrokers, "127.0.0.1:1")
	if _, err := Start(t.Context(), WithSASLSSL("eddy", "s3cret")); !errors.Is(err, ErrSASLSSLNeedsJVM) {
		t.Errorf("Start with KAFKA_BROKERS set: %v, want ErrSASLSSLNeedsJVM", err)
	}
	t.Setenv(EnvBrokers, "")
	for _, tc := range []struct{ user, pass, want string }{
		{"", "s3cret", "user"},
		{"eddy", "", "password"},
		{"eddy", "a,b]", "password"},
		{"ed dy", "s3cret", "user"},
	} {
		_, err := Start(t.Context(), WithSASLSSL(tc.user, tc.pass))
		if err == nil || !strings.Contains(err.Error(), "WithSASLSSL "+tc.want) {
			t.Errorf("WithSASLSSL(%q, %q): %v, want an error about the %s", tc.user, tc.pass, err, tc.want)
		}
	}
}
