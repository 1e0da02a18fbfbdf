package appflags

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddystream/eddy/internal/testtls"
)

var quiet = slog.New(slog.DiscardHandler)

func parse(t *testing.T, args ...string) (*Flags, error) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f := Register(fs, "app", "brokers")
	return f, fs.Parse(args)
}

// TestNoFlagTakesASecret checks that no flag takes a password or a token:
// a command line shows in ps and in shell histories.
func TestNoFlagTakesASecret(t *testing.T) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	Register(fs, "app", "brokers")
	fs.VisitAll(func(fl *flag.Flag) {
		name := strings.ToLower(fl.Name)
		for _, word := range []string{"pass", "secret", "token", "credential", "jaas"} {
			if !strings.Contains(name, word) {
				continue
			}
			if b, ok := fl.Value.(interface{ IsBoolFlag() bool }); !ok || !b.IsBoolFlag() {
				t.Errorf("flag -%s takes a value and names a secret (%q): secrets come from the environment", fl.Name, word)
			}
		}
	})
	for _, args := range [][]string{
		{"-sasl-password", "s3cret"},
		{"-sasl-pass", "s3cret"},
		{"-password", "s3cret"},
		{"-sasl-user", "eddy", "-sasl-password=s3cret"},
		{"-admin-token", "s3cret"},
		{"-admin-require-token=s3cret"},
	} {
		if _, err := parse(t, args...); err == nil {
			t.Errorf("flags %q were accepted", args)
		}
	}
}

// tlsFiles writes a CA, a client certificate and its key, and a file that
// holds no certificate, and returns their paths.
func tlsFiles(t *testing.T, certs *testtls.Set) (ca, cert, key, junk string) {
	dir := t.TempDir()
	ca, cert, key = certs.WriteFiles(t, dir)
	junk = filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return ca, cert, key, junk
}

func TestSecurityFlagErrors(t *testing.T) {
	ca, cert, key, junk := tlsFiles(t, testtls.New(t))
	missing := filepath.Join(t.TempDir(), "missing.pem")
	unset := func() { os.Unsetenv(EnvSASLPassword); os.Unsetenv(EnvAdminToken) }
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"mechanism without user", []string{"-sasl-mechanism", "SCRAM-SHA-512"}, nil, "-sasl-mechanism SCRAM-SHA-512 needs -sasl-user"},
		{"user without mechanism", []string{"-sasl-user", "eddy"}, nil, "-sasl-user given without -sasl-mechanism"},
		{"unknown mechanism", []string{"-sasl-mechanism", "GSSAPI", "-sasl-user", "eddy"}, nil, "want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"},
		{"password not set", []string{"-sasl-mechanism", "PLAIN", "-sasl-user", "eddy"}, nil, "$EDDY_SASL_PASSWORD, which is not set"},
		{"password empty", []string{"-sasl-mechanism", "PLAIN", "-sasl-user", "eddy"}, map[string]string{EnvSASLPassword: ""}, "$EDDY_SASL_PASSWORD, which is empty"},
		{"CA without -tls", []string{"-tls-ca-file", ca}, nil, "-tls-ca-file given without -tls"},
		{"server name without -tls", []string{"-tls-server-name", "kafka", "-tls-cert-file", cert}, nil, "-tls-cert-file, -tls-server-name given without -tls"},
		{"unreadable CA", []string{"-tls", "-tls-ca-file", missing}, nil, "-tls-ca-file: open " + missing},
		{"CA file without certificates", []string{"-tls", "-tls-ca-file", junk}, nil, "holds no PEM certificate"},
		{"cert without key", []string{"-tls", "-tls-cert-file", cert}, nil, "-tls-cert-file given without -tls-key-file"},
		{"key without cert", []string{"-tls", "-tls-key-file", key}, nil, "-tls-key-file given without -tls-cert-file"},
		{"cert and key that do not match", []string{"-tls", "-tls-cert-file", cert, "-tls-key-file", junk}, nil, "-tls-cert-file " + cert + " with -tls-key-file " + junk},
		{"admin token without admin", []string{"-admin-require-token"}, nil, "add -admin-addr"},
		{"admin token not set", []string{"-admin-addr", "127.0.0.1:0", "-admin-require-token"}, nil, "$EDDY_ADMIN_TOKEN, which is not set"},
		{"admin cert without key", []string{"-admin-addr", "127.0.0.1:0", "-admin-tls-cert-file", cert}, nil, "-admin-tls-cert-file given without -admin-tls-key-file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			unset()
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			f, err := parse(t, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			_, err = f.Options(quiet)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Options() = %v, want an error saying %q", err, tc.want)
			}
		})
	}
	unset()
}

// TestSecurityFlagsAuthenticate connects, with what the flags and the
// environment give, to a broker that requires mutual TLS and SASL: the
// right password in EDDY_SASL_PASSWORD gets in, a wrong one does not.
func TestSecurityFlagsAuthenticate(t *testing.T) {
	certs := testtls.New(t)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.TLS(certs.ServerConfig(true)), kfake.EnableSASL(),
		kfake.Superuser("SCRAM-SHA-512", "eddy", "s3cret"),
		kfake.Superuser("SCRAM-SHA-256", "eddy", "s3cret"),
		kfake.Superuser("PLAIN", "eddy", "s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ca, cert, key, _ := tlsFiles(t, certs)
	for _, mechanism := range []string{"PLAIN", "SCRAM-SHA-256", "scram-sha-512"} {
		for _, pass := range []string{"s3cret", "wrong"} {
			t.Setenv(EnvSASLPassword, pass)
			f, err := parse(t, "-tls", "-tls-ca-file", ca, "-tls-cert-file", cert, "-tls-key-file", key,
				"-tls-server-name", "localhost", "-sasl-mechanism", mechanism, "-sasl-user", "eddy")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Options(quiet); err != nil {
				t.Fatalf("%s: Options: %v", mechanism, err)
			}
			tlsCfg, err := f.kafkaTLS()
			if err != nil {
				t.Fatal(err)
			}
			mech, err := f.kafkaSASL()
			if err != nil {
				t.Fatal(err)
			}
			cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DialTLSConfig(tlsCfg), kgo.SASL(mech))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err = cl.Ping(ctx)
			cancel()
			cl.Close()
			if ok := err == nil; ok != (pass == "s3cret") {
				t.Errorf("%s with password %q: Ping = %v", mechanism, pass, err)
			}
		}
	}
}
