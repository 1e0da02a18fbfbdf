package appflags

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/eddystream/eddy"
)

// Secrets come from the environment, never from flags: a command line is
// visible to every user of the machine (ps, /proc) and lands in shell
// histories.
const (
	// EnvSASLPassword holds the password of -sasl-user.
	EnvSASLPassword = "EDDY_SASL_PASSWORD"
	// EnvAdminToken holds the bearer token that -admin-require-token
	// requires on /metrics.
	EnvAdminToken = "EDDY_ADMIN_TOKEN"
)

// securityFlags are the flags for TLS and SASL to the brokers and for the
// admin endpoints' TLS and token.
type securityFlags struct {
	TLS               bool
	TLSCAFile         string
	TLSCertFile       string
	TLSKeyFile        string
	TLSServerName     string
	SASLMechanism     string
	SASLUser          string
	AdminTLSCertFile  string
	AdminTLSKeyFile   string
	AdminRequireToken bool
}

func (s *securityFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&s.TLS, "tls", false, "connect to the brokers with TLS (Kafka: security.protocol=SSL, or SASL_SSL with -sasl-mechanism)")
	fs.StringVar(&s.TLSCAFile, "tls-ca-file", "", "PEM file of the CA certificates that sign the brokers' certificates (default: the system's; Kafka: ssl.truststore.location)")
	fs.StringVar(&s.TLSCertFile, "tls-cert-file", "", "PEM file of this client's certificate, for brokers that require one (mutual TLS; Kafka: ssl.keystore.location)")
	fs.StringVar(&s.TLSKeyFile, "tls-key-file", "", "PEM file of the private key of -tls-cert-file")
	fs.StringVar(&s.TLSServerName, "tls-server-name", "", "the name the brokers' certificates must carry (default: the host of each broker address)")
	fs.StringVar(&s.SASLMechanism, "sasl-mechanism", "", "authenticate to the brokers with SASL: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, as -sasl-user with the password in $"+EnvSASLPassword+" (Kafka: sasl.mechanism)")
	fs.StringVar(&s.SASLUser, "sasl-user", "", "the SASL user name; the password is read from $"+EnvSASLPassword+", never from a flag")
	fs.StringVar(&s.AdminTLSCertFile, "admin-tls-cert-file", "", "serve the admin endpoints over HTTPS with this PEM certificate")
	fs.StringVar(&s.AdminTLSKeyFile, "admin-tls-key-file", "", "PEM file of the private key of -admin-tls-cert-file")
	fs.BoolVar(&s.AdminRequireToken, "admin-require-token", false, "require the bearer token in $"+EnvAdminToken+" on /metrics (the probes stay open)")
}

// Secured reports whether a flag asks for TLS or SASL to the brokers.
func (s *securityFlags) Secured() bool {
	return s.TLS || s.SASLMechanism != ""
}

// securityOptions returns the eddy options of the security flags, reading
// the files they name and the secrets from the environment.
func (s *securityFlags) securityOptions(log *slog.Logger, adminAddr string) ([]eddy.Option, error) {
	var opts []eddy.Option
	tlsCfg, err := s.kafkaTLS()
	if err != nil {
		return nil, err
	}
	if tlsCfg != nil {
		opts = append(opts, eddy.TLS(tlsCfg))
	}
	mech, err := s.kafkaSASL()
	if err != nil {
		return nil, err
	}
	if mech != nil {
		if tlsCfg == nil && mech.Name() == "PLAIN" {
			log.Warn("SASL PLAIN without -tls sends the password in clear text")
		}
		opts = append(opts, eddy.SASL(mech))
	}
	admin, err := s.adminOptions(adminAddr)
	if err != nil {
		return nil, err
	}
	return append(opts, admin...), nil
}

// kafkaTLS returns the TLS configuration of the -tls flags, or nil
// without -tls.
func (s *securityFlags) kafkaTLS() (*tls.Config, error) {
	if !s.TLS {
		var set []string
		for name, v := range map[string]string{"-tls-ca-file": s.TLSCAFile, "-tls-cert-file": s.TLSCertFile, "-tls-key-file": s.TLSKeyFile, "-tls-server-name": s.TLSServerName} {
			if v != "" {
				set = append(set, name)
			}
		}
		if len(set) > 0 {
			slices.Sort(set)
			return nil, fmt.Errorf("%s given without -tls: add -tls to connect with TLS", strings.Join(set, ", "))
		}
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: s.TLSServerName}
	if s.TLSCAFile != "" {
		pem, err := os.ReadFile(s.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("-tls-ca-file: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("-tls-ca-file %s holds no PEM certificate", s.TLSCAFile)
		}
	}
	cert, err := keyPair("-tls-cert-file", s.TLSCertFile, "-tls-key-file", s.TLSKeyFile)
	if err != nil {
		return nil, err
	}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return cfg, nil
}

// kafkaSASL returns the mechanism of the -sasl flags, or nil without them.
func (s *securityFlags) kafkaSASL() (sasl.Mechanism, error) {
	if s.SASLMechanism == "" {
		if s.SASLUser != "" {
			return nil, errors.New("-sasl-user given without -sasl-mechanism: add -sasl-mechanism PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
		}
		return nil, nil
	}
	mechanism := strings.ToUpper(s.SASLMechanism)
	switch mechanism {
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
	default:
		return nil, fmt.Errorf("-sasl-mechanism %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", s.SASLMechanism)
	}
	if s.SASLUser == "" {
		return nil, fmt.Errorf("-sasl-mechanism %s needs -sasl-user", mechanism)
	}
	pass, err := secretFromEnv(EnvSASLPassword, "the password of -sasl-user "+s.SASLUser)
	if err != nil {
		return nil, err
	}
	switch mechanism {
	case "PLAIN":
		return plain.Auth{User: s.SASLUser, Pass: pass}.AsMechanism(), nil
	case "SCRAM-SHA-256":
		return scram.Auth{User: s.SASLUser, Pass: pass}.AsSha256Mechanism(), nil
	default:
		return scram.Auth{User: s.SASLUser, Pass: pass}.AsSha512Mechanism(), nil
	}
}

// adminOptions returns the options of the -admin-tls and -admin-require
// flags.
func (s *securityFlags) adminOptions(adminAddr string) ([]eddy.Option, error) {
	if adminAddr == "" && (s.AdminTLSCertFile != "" || s.AdminTLSKeyFile != "" || s.AdminRequireToken) {
		return nil, errors.New("-admin-tls-cert-file, -admin-tls-key-file and -admin-require-token protect the admin endpoints: add -admin-addr")
	}
	var opts []eddy.Option
	cert, err := keyPair("-admin-tls-cert-file", s.AdminTLSCertFile, "-admin-tls-key-file", s.AdminTLSKeyFile)
	if err != nil {
		return nil, err
	}
	if cert != nil {
		opts = append(opts, eddy.AdminTLS(&tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{*cert}}))
	}
	if s.AdminRequireToken {
		token, err := secretFromEnv(EnvAdminToken, "the bearer token of -admin-require-token")
		if err != nil {
			return nil, err
		}
		opts = append(opts, eddy.AdminBearerToken(token))
	}
	return opts, nil
}

// keyPair loads a certificate and its key, both or neither given.
func keyPair(certFlag, certFile, keyFlag, keyFile string) (*tls.Certificate, error) {
	switch {
	case certFile == "" && keyFile == "":
		return nil, nil
	case certFile == "":
		return nil, fmt.Errorf("%s given without %s", keyFlag, certFlag)
	case keyFile == "":
		return nil, fmt.Errorf("%s given without %s", certFlag, keyFlag)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("%s %s with %s %s: %w", certFlag, certFile, keyFlag, keyFile, err)
	}
	return &cert, nil
}

// secretFromEnv returns the value of the environment variable name, which
// must be set and not empty.
func secretFromEnv(name, what string) (string, error) {
	v, ok := os.LookupEnv(name)
	switch {
	case !ok:
		return "", fmt.Errorf("%s is read from $%s, which is not set", what, name)
	case v == "":
		return "", fmt.Errorf("%s is read from $%s, which is empty", what, name)
	}
	return v, nil
}
