package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/eddystream/eddy"
	"github.com/eddystream/eddy/internal/kafkabroker"
	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/topology"
)

// envSASLPassword is where the examples read the SASL password
// (appflags.EnvSASLPassword, which an internal package keeps from here).
const envSASLPassword = "EDDY_SASL_PASSWORD"

// TestWordCountOverSASLSSL runs the word-count example exactly-once
// against a broker of its own whose client listener is SASL_SSL with
// SCRAM-SHA-512 (the suite's shared broker is PLAINTEXT): the example
// trusts the broker's CA from -tls-ca-file and reads its password from
// EDDY_SASL_PASSWORD. Then a wrong password must fail fast, both for an
// App run in this process and for the example.
func TestWordCountOverSASLSSL(t *testing.T) {
	begin := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const user, password = "eddy-wordcount", "wc-Secret-42"
	b, err := kafkabroker.Start(ctx, kafkabroker.WithSASLSSL(user, password),
		kafkabroker.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, nil))))
	if errors.Is(err, kafkabroker.ErrSASLSSLNeedsJVM) {
		t.Skipf("%v (this test runs a broker of its own)", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("SASL_SSL broker log tail:\n%s", b.LogTail(40))
		}
		if err := b.Close(); err != nil {
			t.Error(err)
		}
	})
	sec := b.SASLSSL()
	t.Logf("SASL_SSL broker at %v ready after %.1fs", sec.Addrs, time.Since(begin).Seconds())
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, sec.CAPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(sec.CAPEM) {
		t.Fatal("the broker's CA PEM holds no certificate")
	}
	tlsCfg := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	secureClient := func(pass string, opts ...kgo.Opt) *kgo.Client {
		t.Helper()
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(sec.Addrs...), kgo.DialTLSConfig(tlsCfg),
			kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha512Mechanism())}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl
	}

	// The test's own set-up goes over SASL_SSL too.
	name := uniqueName(t)
	app, input, output := "wc-"+name, name+"-lines", name+"-counts"
	cl := secureClient(password)
	created, err := kadm.NewClient(cl).CreateTopics(ctx, 3, 1, nil, input, output)
	if err == nil {
		err = created.Error()
	}
	if err != nil {
		t.Fatalf("create topics over SASL_SSL: %v", err)
	}
	want := map[string]int64{}
	rng := rand.New(rand.NewPCG(7, 42))
	var recs []*kgo.Record
	for i := range 500 {
		words := make([]string, 3+rng.IntN(8))
		for j := range words {
			words[j] = vocabulary[rng.IntN(len(vocabulary))]
			want[words[j]]++
		}
		recs = append(recs, &kgo.Record{Topic: input, Key: []byte(fmt.Sprint(i)), Value: []byte(strings.Join(words, " "))})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce over SASL_SSL: %v", err)
	}

	secureArgs := []string{"-brokers", strings.Join(sec.Addrs, ","), "-tls", "-tls-ca-file", caFile,
		"-sasl-mechanism", sec.Mechanism, "-sasl-user", user}
	// The example inherits the environment: the password goes there, and
	// the later -brokers overrides the shared broker's that start passes.
	t.Setenv(envSASLPassword, password)
	p := start(t, "wordcount-sasl-ssl", "wordcount", append(secureArgs, "-app", app, "-input", input, "-output", output,
		"-state-dir", t.TempDir(), "-guarantee", "exactly-once", "-commit-interval", "100ms", "-session-timeout", "6s")...)
	countBegin := time.Now()
	consumer := secureClient(password, kgo.ConsumeTopics(output), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	got := map[string]int64{}
	for !maps.Equal(got, want) {
		pollCtx, pollCancel := context.WithTimeout(ctx, time.Second)
		fs := consumer.PollFetches(pollCtx)
		pollCancel()
		select {
		case <-p.done:
			t.Fatalf("the example exited early: %v\n%s", p.err, tail(p.out.String(), 30))
		default:
		}
		if ctx.Err() != nil {
			t.Fatalf("counts over SASL_SSL = %v, want %v", got, want)
		}
		fs.EachRecord(func(r *kgo.Record) {
			n, err := serde.Int64().Deserialize(output, r.Value)
			if err != nil {
				t.Fatalf("%s-%d@%d: %v", r.Topic, r.Partition, r.Offset, err)
			}
			got[string(r.Key)] = n
		})
	}
	var words int64
	for _, n := range want {
		words += n
	}
	t.Logf("exactly-once over SASL_SSL: %d lines, %d words (%d distinct) counted exactly in %.1fs",
		len(recs), words, len(want), time.Since(countBegin).Seconds())
	p.stop()

	// A wrong password: an App in this process ...
	top, err := wordCountTopology(input, output)
	if err != nil {
		t.Fatal(err)
	}
	bad, err := eddy.New(top, eddy.ApplicationID(app+"-wrong"), eddy.Brokers(sec.Addrs...), eddy.StateDir(t.TempDir()),
		eddy.TLS(tlsCfg), eddy.SASL(scram.Auth{User: user, Pass: "not-" + password}.AsSha512Mechanism()),
		eddy.Logger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, runCancel := context.WithTimeout(ctx, 30*time.Second)
	defer runCancel()
	runBegin := time.Now()
	err = bad.Run(runCtx)
	took := time.Since(runBegin)
	t.Logf("a wrong password ended Run after %v: %v", took.Round(time.Millisecond), err)
	if !errors.Is(err, kerr.SaslAuthenticationFailed) || !strings.Contains(err.Error(), "SASL") {
		t.Errorf("Run with a wrong password = %v, want an error matching kerr.SaslAuthenticationFailed", err)
	}
	if took > 5*time.Second {
		t.Errorf("Run took %v to fail with a wrong password, want a few seconds at most", took)
	}

	// ... and the example, which must exit with the error.
	t.Setenv(envSASLPassword, "not-"+password)
	exampleBegin := time.Now()
	wrongProc := start(t, "wordcount-wrong-password", "wordcount", append(secureArgs, "-app", app+"-wrong",
		"-input", input, "-output", output, "-state-dir", t.TempDir())...)
	err = wrongProc.wait(30 * time.Second)
	took = time.Since(exampleBegin)
	lastLine := tail(wrongProc.out.String(), 1)
	t.Logf("a wrong password ended the example after %v: %s", took.Round(time.Millisecond), lastLine)
	if err == nil || !strings.Contains(lastLine, "SASL_AUTHENTICATION_FAILED") {
		t.Errorf("the example with a wrong password exited with %v, last line %q; want a failure naming SASL_AUTHENTICATION_FAILED", err, lastLine)
	}
	if took > 10*time.Second {
		t.Errorf("the example took %v to fail with a wrong password, want a few seconds at most", took)
	}
}

// wordCountTopology is the example's word count, for an App run in the
// test process.
func wordCountTopology(input, output string) (*topology.Topology, error) {
	b := topology.NewBuilder()
	lines := topology.Source(b, input, serde.String(), serde.String())
	topology.FlatMap(lines, func(_ string, line string) []topology.KeyValue[string, string] {
		var out []topology.KeyValue[string, string]
		for _, w := range strings.Fields(line) {
			out = append(out, topology.KV(w, w))
		}
		return out
	}).GroupByKey().Count(topology.StoreName("counts")).ToStream().To(output)
	return b.Build()
}
