package testcerts

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func pool(t *testing.T, ca *CA) *x509.CertPool {
	p := x509.NewCertPool()
	data, err := os.ReadFile(ca.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	if !p.AppendCertsFromPEM(data) {
		t.Fatal("CA file holds no certificate")
	}
	return p
}

func TestCertificatesVerifyAgainstTheirCAOnly(t *testing.T) {
	ca, other := NewCA(t), NewCA(t)
	srv := ca.Server(t)
	cli := ca.Client(t, "alice")
	peer := ca.Peer(t, "m1")
	for _, c := range []struct {
		name  string
		p     Pair
		usage x509.ExtKeyUsage
		host  string
	}{
		{"server", srv, x509.ExtKeyUsageServerAuth, "127.0.0.1"},
		{"server by name", srv, x509.ExtKeyUsageServerAuth, "localhost"},
		{"client", cli, x509.ExtKeyUsageClientAuth, ""},
		{"peer as server", peer, x509.ExtKeyUsageServerAuth, "::1"},
		{"peer as client", peer, x509.ExtKeyUsageClientAuth, ""},
	} {
		opts := x509.VerifyOptions{Roots: pool(t, ca), DNSName: c.host, KeyUsages: []x509.ExtKeyUsage{c.usage}}
		if _, err := c.p.Cert.Verify(opts); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		opts.Roots = pool(t, other)
		if _, err := c.p.Cert.Verify(opts); err == nil {
			t.Errorf("%s: verified against another CA", c.name)
		}
		c.p.TLS(t) // the key matches
	}
	if cli.Cert.Subject.CommonName != "alice" || len(cli.Cert.IPAddresses)+len(cli.Cert.DNSNames) != 0 {
		t.Errorf("client cert: CN %q, SANs %v %v", cli.Cert.Subject.CommonName, cli.Cert.IPAddresses, cli.Cert.DNSNames)
	}
	if _, err := cli.Cert.Verify(x509.VerifyOptions{Roots: pool(t, ca), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
		t.Error("a client certificate verified for server authentication")
	}
}

func TestExpiredAndHosts(t *testing.T) {
	ca := NewCA(t)
	old := ca.Server(t, Expired())
	_, err := old.Cert.Verify(x509.VerifyOptions{Roots: pool(t, ca)})
	if err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired cert verified: %v", err)
	}
	p := ca.Server(t, Hosts("10.0.0.1", "node1.example"), CN("node1"))
	if len(p.Cert.IPAddresses) != 1 || p.Cert.DNSNames[0] != "node1.example" || p.Cert.Subject.CommonName != "node1" {
		t.Errorf("SANs %v %v, CN %q", p.Cert.IPAddresses, p.Cert.DNSNames, p.Cert.Subject.CommonName)
	}
}

func TestCRLRevokesTheNamedCertificates(t *testing.T) {
	ca := NewCA(t)
	a, b := ca.Client(t, "a"), ca.Client(t, "b")
	data, err := os.ReadFile(ca.CRL(t, a))
	if err != nil {
		t.Fatal(err)
	}
	crl, err := x509.ParseRevocationList(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := crl.CheckSignatureFrom(ca.Cert); err != nil {
		t.Fatal(err)
	}
	if len(crl.RevokedCertificateEntries) != 1 || crl.RevokedCertificateEntries[0].SerialNumber.Cmp(a.Cert.SerialNumber) != 0 ||
		a.Cert.SerialNumber.Cmp(b.Cert.SerialNumber) == 0 {
		t.Fatalf("revoked %v, want only %v", crl.RevokedCertificateEntries, a.Cert.SerialNumber)
	}
}

func TestInstallAtReplacesFiles(t *testing.T) {
	ca := NewCA(t)
	first, second := ca.Server(t), ca.Server(t)
	dir := t.TempDir()
	cf, kf := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	first.InstallAt(t, cf, kf)
	second.InstallAt(t, cf, kf)
	c, err := tls.LoadX509KeyPair(cf, kf)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(c.Certificate[0])
	if leaf.SerialNumber.Cmp(second.Cert.SerialNumber) != 0 {
		t.Fatalf("installed serial %v, want %v", leaf.SerialNumber, second.Cert.SerialNumber)
	}
}
