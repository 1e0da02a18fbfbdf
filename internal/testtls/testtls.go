// Package testtls makes certificates for tests: a certificate authority of
// its own, a server certificate for the loopback addresses and a client
// certificate, each signed by that CA, with TLS configurations that use
// them. Nothing outside tests should import it.
package testtls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Set is a CA with a server and a client certificate it signed.
type Set struct {
	// CAPEM is the CA's certificate, PEM encoded.
	CAPEM []byte
	// Roots holds the CA's certificate.
	Roots *x509.CertPool
	// Server is valid for localhost, 127.0.0.1 and ::1.
	Server tls.Certificate
	// Client is valid for client authentication, with the common name
	// "eddy-test-client".
	Client tls.Certificate
	// ClientCertPEM and ClientKeyPEM are Client, PEM encoded.
	ClientCertPEM, ClientKeyPEM []byte
}

// New makes a Set, valid from an hour ago for a day. It fails t on error.
func New(t testing.TB) *Set {
	t.Helper()
	caKey := newKey(t)
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "eddy test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatalf("testtls: make the CA: %v", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatalf("testtls: parse the CA: %v", err)
	}
	s := &Set{CAPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), Roots: x509.NewCertPool()}
	s.Roots.AddCert(ca)
	issue := func(serial int64, tmpl *x509.Certificate) (tls.Certificate, []byte, []byte) {
		key := newKey(t)
		tmpl.SerialNumber = big.NewInt(serial)
		tmpl.NotBefore, tmpl.NotAfter = caTmpl.NotBefore, caTmpl.NotAfter
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatalf("testtls: make a certificate: %v", err)
		}
		keyDER, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatalf("testtls: encode a key: %v", err)
		}
		certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
		keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatalf("testtls: load a certificate: %v", err)
		}
		return cert, certPEM, keyPEM
	}
	s.Server, _, _ = issue(2, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "localhost"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	s.Client, s.ClientCertPEM, s.ClientKeyPEM = issue(3, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "eddy-test-client"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	return s
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("testtls: make a key: %v", err)
	}
	return key
}

// ServerConfig serves the server certificate. With mutual, it requires a
// client certificate signed by the CA.
func (s *Set) ServerConfig(mutual bool) *tls.Config {
	c := &tls.Config{Certificates: []tls.Certificate{s.Server}, MinVersion: tls.VersionTLS12}
	if mutual {
		c.ClientAuth, c.ClientCAs = tls.RequireAndVerifyClientCert, s.Roots
	}
	return c
}

// ClientConfig trusts the CA. With mutual, it presents the client
// certificate.
func (s *Set) ClientConfig(mutual bool) *tls.Config {
	c := &tls.Config{RootCAs: s.Roots, MinVersion: tls.VersionTLS12}
	if mutual {
		c.Certificates = []tls.Certificate{s.Client}
	}
	return c
}

// WriteFiles writes the CA certificate and the client's certificate and
// key as PEM files into dir and returns their paths.
func (s *Set) WriteFiles(t testing.TB, dir string) (ca, clientCert, clientKey string) {
	t.Helper()
	ca, clientCert, clientKey = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")
	for path, data := range map[string][]byte{ca: s.CAPEM, clientCert: s.ClientCertPEM, clientKey: s.ClientKeyPEM} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatalf("testtls: %v", err)
		}
	}
	return ca, clientCert, clientKey
}
