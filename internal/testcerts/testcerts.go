// Package testcerts makes certificates for tests: a CA, server, peer and
// client certificates signed by it, expired ones, and revocation lists,
// written as PEM files in the test's temporary directory. It uses
// crypto/x509 only, and nothing it makes is checked in (so nothing
// expires in the repository).
//
//	ca := testcerts.NewCA(t)
//	srv := ca.Server(t)                 // SANs 127.0.0.1, ::1, localhost
//	cli := ca.Client(t, "alice")        // CN alice: etcd's user with --client-cert-auth
//	bad := testcerts.NewCA(t).Client(t, "alice") // from another CA
//	old := ca.Client(t, "bob", testcerts.Expired())
//	// cairn --cert-file srv.CertFile --key-file srv.KeyFile --trusted-ca-file ca.CertFile ...
//	// etcdctl --cacert ca.CertFile --cert cli.CertFile --key cli.KeyFile ...
//
// Keys are ECDSA P-256: quick to make, and every etcd tool accepts them.
package testcerts

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
	"sync/atomic"
	"testing"
	"time"
)

// serials keeps every certificate's serial number distinct within a test
// binary (a CRL names certificates by serial).
var serials atomic.Int64

// CA is a certificate authority for tests.
type CA struct {
	// CertFile is the CA certificate's PEM file: the trusted CA file of
	// servers and clients.
	CertFile string
	// Cert is the CA certificate.
	Cert *x509.Certificate

	key *ecdsa.PrivateKey
	dir string
}

// Pair is a certificate and its key, as files.
type Pair struct {
	CertFile, KeyFile string
	Cert              *x509.Certificate
}

// TLS returns the pair as a tls.Certificate.
func (p Pair) TLS(t testing.TB) tls.Certificate {
	t.Helper()
	c, err := tls.LoadX509KeyPair(p.CertFile, p.KeyFile)
	if err != nil {
		t.Fatalf("testcerts: %v", err)
	}
	return c
}

// InstallAt copies the pair's files over certFile and keyFile (each by an
// atomic rename), as an operator renewing a certificate would: a server
// reading its files per handshake sees the new pair at once.
func (p Pair) InstallAt(t testing.TB, certFile, keyFile string) {
	t.Helper()
	for _, f := range [][2]string{{p.CertFile, certFile}, {p.KeyFile, keyFile}} {
		data, err := os.ReadFile(f[0])
		if err != nil {
			t.Fatalf("testcerts: %v", err)
		}
		writeAtomic(t, f[1], data)
	}
}

// Option changes a certificate made by Server, Peer or Client.
type Option func(*x509.Certificate)

// Expired makes a certificate that expired an hour ago.
func Expired() Option {
	return func(c *x509.Certificate) {
		c.NotBefore = time.Now().Add(-48 * time.Hour)
		c.NotAfter = time.Now().Add(-time.Hour)
	}
}

// Hosts replaces the certificate's SANs: IP addresses become IP SANs,
// anything else a DNS name.
func Hosts(hosts ...string) Option {
	return func(c *x509.Certificate) {
		c.IPAddresses, c.DNSNames = nil, nil
		for _, h := range hosts {
			if ip := net.ParseIP(h); ip != nil {
				c.IPAddresses = append(c.IPAddresses, ip)
			} else {
				c.DNSNames = append(c.DNSNames, h)
			}
		}
	}
}

// CN sets the certificate's Common Name.
func CN(cn string) Option {
	return func(c *x509.Certificate) { c.Subject.CommonName = cn }
}

// NewCA makes a CA whose certificate is valid for a day.
func NewCA(t testing.TB) *CA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serials.Add(1)),
		Subject:               pkix.Name{CommonName: "cairn test CA", Organization: []string{"cairn tests"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("testcerts: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("testcerts: %v", err)
	}
	dir := t.TempDir()
	ca := &CA{Cert: cert, key: key, dir: dir, CertFile: filepath.Join(dir, "ca.pem")}
	writeAtomic(t, ca.CertFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	return ca
}

// Server makes a server certificate for 127.0.0.1, ::1 and localhost
// (CN "localhost"), usable for server authentication only.
func (ca *CA) Server(t testing.TB, opts ...Option) Pair {
	t.Helper()
	return ca.issue(t, "localhost", []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, opts)
}

// Peer makes a certificate for 127.0.0.1, ::1 and localhost with Common
// Name cn, usable for server and client authentication: what a member's
// --peer-cert-file needs, since it both serves and dials its peers (and
// what --cert-file needs when the member forwards to the leader's client
// URL with --client-cert-auth).
func (ca *CA) Peer(t testing.TB, cn string, opts ...Option) Pair {
	t.Helper()
	return ca.issue(t, cn, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, opts)
}

// Client makes a client certificate with Common Name cn (etcd's user name
// under --client-cert-auth), with no SANs, usable for client
// authentication only.
func (ca *CA) Client(t testing.TB, cn string, opts ...Option) Pair {
	t.Helper()
	return ca.issue(t, cn, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, append([]Option{Hosts()}, opts...))
}

// CRL writes a certificate revocation list signed by the CA that revokes
// the given certificates, in DER, and returns its file (etcd's
// --client-crl-file and --peer-crl-file read DER).
func (ca *CA) CRL(t testing.TB, revoked ...Pair) string {
	t.Helper()
	var entries []x509.RevocationListEntry
	for _, p := range revoked {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: p.Cert.SerialNumber, RevocationTime: time.Now().Add(-time.Minute)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:                    big.NewInt(serials.Add(1)),
		ThisUpdate:                time.Now().Add(-time.Minute),
		NextUpdate:                time.Now().Add(24 * time.Hour),
		RevokedCertificateEntries: entries,
	}, ca.Cert, ca.key)
	if err != nil {
		t.Fatalf("testcerts: %v", err)
	}
	f := filepath.Join(ca.dir, "crl-"+big.NewInt(serials.Add(1)).String()+".der")
	writeAtomic(t, f, der) // DER, as etcd reads CRL files
	return f
}

func (ca *CA) issue(t testing.TB, cn string, usage []x509.ExtKeyUsage, opts []Option) Pair {
	t.Helper()
	key := newKey(t)
	serial := serials.Add(1)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"cairn tests"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  usage,
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
		DNSNames:     []string{"localhost"},
	}
	for _, o := range opts {
		o(tmpl)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatalf("testcerts: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("testcerts: %v", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("testcerts: %v", err)
	}
	base := filepath.Join(ca.dir, "cert-"+big.NewInt(serial).String())
	p := Pair{CertFile: base + ".pem", KeyFile: base + "-key.pem", Cert: cert}
	writeAtomic(t, p.CertFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	writeAtomic(t, p.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	return p
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("testcerts: %v", err)
	}
	return key
}

// writeAtomic writes data to a temporary file beside path and renames it
// over path, so a reader sees the old or the new file, never half of one.
func writeAtomic(t testing.TB, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatalf("testcerts: %v", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatalf("testcerts: %v", err)
	}
}
