package kafkabroker

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// SASLSSLMechanism is the SASL mechanism of the listener WithSASLSSL adds.
const SASLSSLMechanism = "SCRAM-SHA-512"

// WithSASLSSL gives a broker JVM a SASL_SSL listener besides its PLAINTEXT
// one, with user as its only SCRAM-SHA-512 user; [Broker.SASLSSL] tells
// its address and the CA that signed its certificate. The PLAINTEXT
// listener stays, for the test's own set-up, and for the broker itself
// (inter-broker and controller traffic).
//
// The certificates are made with the JDK's keytool at each start: a CA, a
// broker key pair with a certificate the CA signed for localhost and
// 127.0.0.1, and a truststore holding the CA. The user's SCRAM credential
// is written into the metadata log when the storage is formatted
// (kafka-storage format --add-scram), so it exists before the broker
// answers. user and password may hold ASCII letters, digits, '.', '_'
// and '-'.
//
// Only a broker JVM can have the listener: with KAFKA_BROKERS set, Start
// fails with [ErrSASLSSLNeedsJVM]; with Docker available, Start runs a JVM
// all the same.
func WithSASLSSL(user, password string) Option {
	return func(c *config) { c.saslSSL = &saslSSLConfig{user: user, password: password} }
}

// ErrSASLSSLNeedsJVM is returned by Start with WithSASLSSL when
// KAFKA_BROKERS names a broker: a listener cannot be added to a broker
// someone else runs.
var ErrSASLSSLNeedsJVM = errors.New("kafkabroker: WithSASLSSL needs a broker JVM of this package's, but " + EnvBrokers + " names a running broker: unset it")

// SASLSSL is the SASL_SSL listener of a broker started WithSASLSSL.
type SASLSSL struct {
	// Addrs are its bootstrap addresses.
	Addrs []string
	// CAPEM is the certificate, PEM encoded, of the CA that signed the
	// broker's certificate: the one a client trusts.
	CAPEM []byte
	// Mechanism is SASLSSLMechanism.
	Mechanism string
	// User and Password are those given to WithSASLSSL.
	User, Password string
}

// SASLSSL returns the SASL_SSL listener of a broker started WithSASLSSL,
// or nil.
func (b *Broker) SASLSSL() *SASLSSL {
	if b.saslSSL == nil {
		return nil
	}
	s := *b.saslSSL
	s.Addrs = append([]string(nil), s.Addrs...)
	s.CAPEM = append([]byte(nil), s.CAPEM...)
	return &s
}

// saslSSLConfig is what WithSASLSSL asked for.
type saslSSLConfig struct {
	user, password string
}

// checkSASLSSL validates WithSASLSSL's arguments and that a JVM can be
// started for it.
func (c config) checkSASLSSL() error {
	if c.saslSSL == nil {
		return nil
	}
	for what, v := range map[string]string{"user": c.saslSSL.user, "password": c.saslSSL.password} {
		if v == "" || strings.IndexFunc(v, func(r rune) bool {
			return !(r == '.' || r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
		}) >= 0 {
			return fmt.Errorf("kafkabroker: WithSASLSSL %s %q: use ASCII letters, digits, '.', '_' and '-' (kafka-storage --add-scram parses it)", what, v)
		}
	}
	if strings.TrimSpace(os.Getenv(EnvBrokers)) != "" {
		return ErrSASLSSLNeedsJVM
	}
	return nil
}

// storePassword is the password of the keystores. It protects files in
// the broker's temporary directory, removed by Close, and need not be
// secret from anyone who can read that directory.
func storePassword() string {
	var b [12]byte
	rand.Read(b[:]) // never fails (crypto/rand documents it)
	return hex.EncodeToString(b[:])
}

// setUp makes the certificates in dir, adds the SASL_SSL listener on a
// free loopback port to settings, and returns the settings, the arguments
// that add the SCRAM user at format, and the listener's description.
func (s *saslSSLConfig) setUp(ctx context.Context, java, dir string, taken listenerPorts, settings []setting, log *slog.Logger) ([]setting, []string, *SASLSSL, error) {
	begin := time.Now()
	port, err := freeLoopbackPortBut(taken.broker, taken.controller)
	if err != nil {
		return nil, nil, nil, err
	}
	keytool, err := findKeytool(java)
	if err != nil {
		return nil, nil, nil, err
	}
	var (
		tlsDir     = filepath.Join(dir, "tls")
		caStore    = filepath.Join(tlsDir, "ca.p12")
		caPEM      = filepath.Join(tlsDir, "ca.pem")
		keystore   = filepath.Join(tlsDir, "broker.p12")
		csr        = filepath.Join(tlsDir, "broker.csr")
		signed     = filepath.Join(tlsDir, "broker.pem")
		truststore = filepath.Join(tlsDir, "truststore.p12")
		pass       = storePassword()
	)
	if err := os.MkdirAll(tlsDir, 0o700); err != nil {
		return nil, nil, nil, fmt.Errorf("kafkabroker: create the certificate directory: %w", err)
	}
	// Elliptic-curve keys: generated at once, where RSA keys take a
	// second each on a busy machine.
	steps := [][]string{
		{"-genkeypair", "-alias", "ca", "-keyalg", "EC", "-groupname", "secp256r1", "-dname", "CN=eddy kafkabroker test CA",
			"-ext", "bc:c", "-validity", "7", "-keystore", caStore, "-storetype", "PKCS12", "-storepass", pass},
		{"-exportcert", "-rfc", "-alias", "ca", "-keystore", caStore, "-storepass", pass, "-file", caPEM},
		{"-genkeypair", "-alias", "broker", "-keyalg", "EC", "-groupname", "secp256r1", "-dname", "CN=localhost",
			"-validity", "7", "-keystore", keystore, "-storetype", "PKCS12", "-storepass", pass},
		{"-certreq", "-alias", "broker", "-keystore", keystore, "-storepass", pass, "-file", csr},
		{"-gencert", "-rfc", "-alias", "ca", "-keystore", caStore, "-storepass", pass, "-infile", csr, "-outfile", signed,
			"-ext", "SAN=dns:localhost,ip:127.0.0.1", "-ext", "EKU=serverAuth", "-validity", "7"},
		// The CA first, so that keytool can chain the signed reply to it.
		{"-importcert", "-noprompt", "-alias", "ca", "-file", caPEM, "-keystore", keystore, "-storepass", pass},
		{"-importcert", "-alias", "broker", "-file", signed, "-keystore", keystore, "-storepass", pass},
		{"-importcert", "-noprompt", "-alias", "ca", "-file", caPEM, "-keystore", truststore, "-storetype", "PKCS12", "-storepass", pass},
	}
	for _, args := range steps {
		// keytool passes -J flags to its JVM: start fast, stay small.
		cmd := exec.CommandContext(ctx, keytool, append([]string{"-J-Xmx64m", "-J-XX:+UseSerialGC", "-J-XX:TieredStopAtLevel=1"}, args...)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.SysProcAttr = childProcAttr()
		cmd.WaitDelay = 5 * time.Second
		if err := cmd.Run(); err != nil {
			return nil, nil, nil, fmt.Errorf("kafkabroker: keytool %s: %w\n%s", args[0], err, lastLines(out.String(), 10))
		}
	}
	ca, err := os.ReadFile(caPEM)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("kafkabroker: read the CA certificate keytool wrote: %w", err)
	}
	log.Debug("made the SASL_SSL certificates with keytool", "dir", tlsDir, "took", time.Since(begin).Round(10*time.Millisecond))

	listener := fmt.Sprintf("SASL_SSL://127.0.0.1:%d", port)
	settings = appendToSetting(settings, "listeners", ","+listener)
	settings = appendToSetting(settings, "advertised.listeners", ","+listener)
	settings = appendToSetting(settings, "listener.security.protocol.map", ",SASL_SSL:SASL_SSL")
	settings = append(settings,
		setting{"sasl.enabled.mechanisms", SASLSSLMechanism, "the SASL_SSL listener takes SCRAM-SHA-512 only"},
		setting{"listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config", "org.apache.kafka.common.security.scram.ScramLoginModule required;",
			"the broker side of SCRAM needs a login module; the credentials are in the metadata log (kafka-storage format --add-scram)"},
		setting{"ssl.keystore.type", "PKCS12", "keytool's default store type"},
		setting{"ssl.keystore.location", keystore, "the broker's key and the certificate the test CA signed for localhost and 127.0.0.1"},
		setting{"ssl.keystore.password", pass, "a random password for a file in the broker's temporary directory"},
		setting{"ssl.key.password", pass, "a PKCS12 key has the store's password"},
		setting{"ssl.truststore.type", "PKCS12", "keytool's default store type"},
		setting{"ssl.truststore.location", truststore, "the test CA, for client certificates should a test require them"},
		setting{"ssl.truststore.password", pass, "as the keystore's"},
		setting{"ssl.client.auth", "none", "clients authenticate with SCRAM, not certificates"},
	)
	scramUser := fmt.Sprintf("%s=[name=%s,password=%s]", SASLSSLMechanism, s.user, s.password)
	return settings, []string{"--add-scram", scramUser}, &SASLSSL{
		Addrs:     []string{net.JoinHostPort("127.0.0.1", strconv.Itoa(port))},
		CAPEM:     ca,
		Mechanism: SASLSSLMechanism,
		User:      s.user,
		Password:  s.password,
	}, nil
}

// appendToSetting appends suffix to the value of the setting named key.
func appendToSetting(settings []setting, key, suffix string) []setting {
	out := append([]setting(nil), settings...)
	for i := range out {
		if out[i].key == key {
			out[i].value += suffix
		}
	}
	return out
}

// findKeytool returns the keytool next to java (after following links,
// as /usr/bin/java is one), else the one on PATH.
func findKeytool(java string) (string, error) {
	if real, err := filepath.EvalSymlinks(java); err == nil {
		keytool := filepath.Join(filepath.Dir(real), "keytool")
		if _, err := os.Stat(keytool); err == nil {
			return keytool, nil
		}
	}
	keytool, err := exec.LookPath("keytool")
	if err != nil {
		return "", fmt.Errorf("kafkabroker: WithSASLSSL makes certificates with the JDK's keytool, which is neither next to %s nor on PATH: install a JDK (apt-get install openjdk-17-jdk-headless): %w", java, err)
	}
	return keytool, nil
}

// freeLoopbackPortBut returns a loopback port that is free now and is
// none of taken.
func freeLoopbackPortBut(taken ...int) (int, error) {
	for range 10 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("kafkabroker: find a free loopback port for the SASL_SSL listener: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !slices.Contains(taken, port) {
			return port, nil
		}
	}
	return 0, errors.New("kafkabroker: find a free loopback port for the SASL_SSL listener: the system keeps handing out the ports already taken")
}
