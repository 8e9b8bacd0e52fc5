package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// With -tls the members serve clients and peers over mutual TLS with
// certificates made for the run from a fresh CA (in the run folder's tls/):
// each member m<i> has a peer certificate with Common Name m<i> and a
// client-port certificate; the runner's clients present a client
// certificate. The peer proxies cannot read X-Cairn-From inside TLS, so
// each terminates the sender's TLS (requiring a certificate of the run's
// CA), reads the sender from the decrypted stream and dials the member
// with TLS again, presenting the sender's own peer certificate: the member
// sees the same certificate it would see without the proxy, and the
// peer port's checks (client-cert-auth, the sender's membership) all run.
type runTLS struct {
	dir    string
	caFile string
	pool   *x509.CertPool
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	serial int64

	// peer[i] and server[i] are member i's peer and client-port pairs.
	peer, server []certPair
	// client is the runner's clients' certificate; proxy the proxies'
	// own (presented to the senders, and to a member when the sender is
	// not known).
	client, proxy certPair
}

type certPair struct {
	certFile, keyFile string
	cert              tls.Certificate
}

// clientCN is the Common Name of the runner's client certificate. It is
// no user: with -auth the clients log in as root with a password, so the
// tokens, not the certificate, carry their identity.
const clientCN = "chaos-client"

// newRunTLS makes the CA and every certificate of an n-member run in dir.
func newRunTLS(dir string, n int) (*runTLS, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "cairn chaos CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	rt := &runTLS{dir: dir, caFile: filepath.Join(dir, "ca.pem"), pool: x509.NewCertPool(), ca: ca, caKey: key, serial: 1}
	rt.pool.AddCert(ca)
	if err := os.WriteFile(rt.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return nil, err
	}
	both := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("m%d", i)
		p, err := rt.issue(name+"-peer", name, both)
		if err != nil {
			return nil, err
		}
		// The client port's certificate serves clients and is the
		// one a member presents when it forwards to the leader's
		// client URL.
		s, err := rt.issue(name+"-server", name, both)
		if err != nil {
			return nil, err
		}
		rt.peer = append(rt.peer, p)
		rt.server = append(rt.server, s)
	}
	if rt.client, err = rt.issue("client", clientCN, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}); err != nil {
		return nil, err
	}
	if rt.proxy, err = rt.issue("proxy", "chaos-proxy", both); err != nil {
		return nil, err
	}
	return rt, nil
}

// issue makes a certificate for 127.0.0.1 with Common Name cn, written to
// <file>.pem and <file>-key.pem.
func (rt *runTLS) issue(file, cn string, usage []x509.ExtKeyUsage) (certPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return certPair{}, err
	}
	rt.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(rt.serial),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(7 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  usage,
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, rt.ca, &key.PublicKey, rt.caKey)
	if err != nil {
		return certPair{}, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return certPair{}, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	p := certPair{certFile: filepath.Join(rt.dir, file+".pem"), keyFile: filepath.Join(rt.dir, file+"-key.pem")}
	if err := os.WriteFile(p.certFile, certPEM, 0o600); err != nil {
		return certPair{}, err
	}
	if err := os.WriteFile(p.keyFile, keyPEM, 0o600); err != nil {
		return certPair{}, err
	}
	if p.cert, err = tls.X509KeyPair(certPEM, keyPEM); err != nil {
		return certPair{}, err
	}
	return p, nil
}

// memberFlags are member i's TLS flags: client and peer TLS, both
// requiring certificates of the run's CA.
func (rt *runTLS) memberFlags(i int) []string {
	return []string{
		"--cert-file", rt.server[i].certFile, "--key-file", rt.server[i].keyFile,
		"--trusted-ca-file", rt.caFile, "--client-cert-auth",
		"--peer-cert-file", rt.peer[i].certFile, "--peer-key-file", rt.peer[i].keyFile,
		"--peer-trusted-ca-file", rt.caFile, "--peer-client-cert-auth",
	}
}

// clientConfig is the runner's clients' TLS.
func (rt *runTLS) clientConfig() *tls.Config {
	return &tls.Config{RootCAs: rt.pool, Certificates: []tls.Certificate{rt.client.cert}, MinVersion: tls.VersionTLS12}
}

// proxyServer is what a proxy presents to the senders: its certificate,
// and a certificate of the run's CA required of them. HTTP/1.1 only, as
// the members' peer transport speaks.
func (rt *runTLS) proxyServer() *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{rt.proxy.cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    rt.pool,
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"http/1.1"},
	}
}

// proxyDial is the TLS a proxy dials a member with on behalf of sender
// from (-1: unknown, the proxy's own certificate).
func (rt *runTLS) proxyDial(from int) *tls.Config {
	cert := rt.proxy.cert
	if from >= 0 && from < len(rt.peer) {
		cert = rt.peer[from].cert
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      rt.pool,
		ServerName:   "127.0.0.1",
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"http/1.1"},
	}
}
