// Package tlsconf turns one side's TLS settings (the client side's or the
// peer side's, config.TLSInfo) into what the daemon serves and dials with.
// It builds on etcd's client/pkg transport.TLSInfo, so certificates are
// checked and used as etcd uses them, and adds what etcd lacks: every file
// (certificate, key, trusted CA, CRL) is read again for each new
// connection, accepted or dialed, so renewed files take effect without a
// restart; and a refused handshake is logged once per remote host and
// reason rather than for every attempt.
package tlsconf

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/config"
)

// Flags names the flags of one side, for errors.
type Flags struct {
	Cert, Key, ClientCert, ClientKey, TrustedCA, CRL string
}

// ClientFlags and PeerFlags are etcd's flag names of each side.
var (
	ClientFlags = Flags{"--cert-file", "--key-file", "--client-cert-file", "--client-key-file", "--trusted-ca-file", "--client-crl-file"}
	PeerFlags   = Flags{"--peer-cert-file", "--peer-key-file", "--peer-client-cert-file", "--peer-client-key-file", "--peer-trusted-ca-file", "--peer-crl-file"}
)

// Common are the settings both sides share.
type Common struct {
	CipherSuites           []uint16
	MinVersion, MaxVersion uint16
	SelfSignedCertValidity uint
}

// Side is one side's TLS, ready to serve and dial with. The zero value
// (and nil) means no TLS.
type Side struct {
	info  transport.TLSInfo
	flags Flags
	lg    *zap.Logger
	what  string // "client" or "peer", for logs
	once  *onceLog
}

// Enabled reports whether s has a certificate.
func (s *Side) Enabled() bool { return s != nil && !s.info.Empty() }

// New checks one side's settings and files and returns it; nil when the
// side has no TLS. With auto TLS and no certificate, a self-signed one is
// made (or reused) in autoDir for hosts, as etcd's --auto-tls does. Errors
// are one line naming the flag and the file.
func New(t config.TLSInfo, c Common, flags Flags, what, autoDir string, hosts []string, lg *zap.Logger) (*Side, error) {
	if t.Empty() && !t.AutoTLS {
		return nil, nil
	}
	var info transport.TLSInfo
	if t.Empty() {
		var err error
		info, err = transport.SelfCert(lg, autoDir, hosts, c.SelfSignedCertValidity)
		if err != nil {
			return nil, fmt.Errorf("%s auto TLS: cannot make a self-signed certificate in %s: %w", what, autoDir, err)
		}
		lg.Info("using a self-signed certificate", zap.String("side", what), zap.String("cert-file", info.CertFile))
		info.ClientCertAuth = t.ClientCertAuth
		info.TrustedCAFile = t.TrustedCAFile
	} else {
		if t.AutoTLS {
			lg.Warn("ignoring auto TLS since certs given", zap.String("side", what))
		}
		info = transport.TLSInfo{
			CertFile: t.CertFile, KeyFile: t.KeyFile,
			ClientCertFile: t.ClientCertFile, ClientKeyFile: t.ClientKeyFile,
			TrustedCAFile: t.TrustedCAFile, ClientCertAuth: t.ClientCertAuth,
		}
	}
	info.CRLFile = t.CRLFile
	info.AllowedCNs = t.AllowedCNs
	info.AllowedHostnames = t.AllowedHostnames
	info.CipherSuites = c.CipherSuites
	info.MinVersion, info.MaxVersion = c.MinVersion, c.MaxVersion
	info.Logger = nil // per-handshake configs must not log; failures are logged by Listener
	s := &Side{info: info, flags: flags, lg: lg, what: what, once: newOnceLog()}
	if err := s.check(); err != nil {
		return nil, err
	}
	if _, err := s.info.ServerConfig(); err != nil {
		return nil, fmt.Errorf("%s TLS: %w", what, err)
	}
	return s, nil
}

// check reads every file once, so a bad one stops the member at start
// with a clear line.
func (s *Side) check() error {
	if err := checkPair(s.info.CertFile, s.info.KeyFile, s.flags.Cert, s.flags.Key); err != nil {
		return err
	}
	if s.info.ClientCertFile != "" && s.info.ClientCertFile != s.info.CertFile {
		if err := checkPair(s.info.ClientCertFile, s.info.ClientKeyFile, s.flags.ClientCert, s.flags.ClientKey); err != nil {
			return err
		}
	}
	if f := s.info.TrustedCAFile; f != "" {
		if _, err := loadPool(f); err != nil {
			return fmt.Errorf("%s %q: %w", s.flags.TrustedCA, f, err)
		}
	}
	if f := s.info.CRLFile; f != "" {
		if err := checkCRL(f); err != nil {
			return fmt.Errorf("%s %q: %w", s.flags.CRL, f, err)
		}
	}
	return nil
}

func checkPair(cert, key, certFlag, keyFlag string) error {
	for _, f := range [][2]string{{certFlag, cert}, {keyFlag, key}} {
		if _, err := os.ReadFile(f[1]); err != nil {
			return fmt.Errorf("%s: %w", f[0], err) // "open PATH: ...", as etcd says it
		}
	}
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return fmt.Errorf("%s %q and %s %q are not a certificate and its key: %w", certFlag, cert, keyFlag, key, err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return fmt.Errorf("%s %q: %w", certFlag, cert, err)
	}
	if now := time.Now(); now.After(leaf.NotAfter) {
		return fmt.Errorf("%s %q: the certificate expired on %s", certFlag, cert, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// loadPool reads the PEM certificates of a CA file; a file holding none is
// an error (etcd would silently trust nothing).
func loadPool(f string) (*x509.CertPool, error) {
	data, err := os.ReadFile(f)
	if err != nil {
		return nil, fmt.Errorf("cannot read the file: %w", unwrapPath(err))
	}
	pool := x509.NewCertPool()
	n := 0
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("bad certificate in the file: %w", err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, errors.New("the file holds no PEM certificate")
	}
	return pool, nil
}

func checkCRL(f string) error {
	data, err := os.ReadFile(f)
	if err != nil {
		return fmt.Errorf("cannot read the file: %w", unwrapPath(err))
	}
	if b, _ := pem.Decode(data); b != nil {
		// etcd reads DER only, and would refuse every certificate.
		return errors.New("the certificate revocation list is PEM; give it in DER (openssl crl -in crl.pem -outform DER -out crl.der)")
	}
	if _, err := x509.ParseRevocationList(data); err != nil {
		return fmt.Errorf("not a certificate revocation list in DER: %w", err)
	}
	return nil
}

// ServerConfig is the configuration to accept connections with. Each
// handshake reads the certificate, key, trusted CA and CRL files again,
// and sessions are not resumed.
// NextProtos offers h2 (HTTP/1.1 clients still connect).
func (s *Side) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2", "http/1.1"},
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			c, err := s.info.ServerConfig()
			if err != nil {
				return nil, err
			}
			c.NextProtos = []string{"h2", "http/1.1"}
			// No resumption: every connection is verified against the
			// files as they are now (a resumed session would keep a
			// certificate the renewed CA or CRL no longer accepts).
			c.SessionTicketsDisabled = true
			s.info.ConfigureCRLVerification(c)
			return c, nil
		},
	}
}

// ClientConfig is a configuration for dialing a server at host (a name or
// an IP address, the server's certificate must be valid for it). It reads
// the certificate, key and trusted CA files as they are now: build one per
// connection (DialContext does) to follow renewed files.
func (s *Side) ClientConfig(host string) (*tls.Config, error) {
	c, err := s.info.ClientConfig()
	if err != nil {
		return nil, err
	}
	if c.ServerName == "" {
		c.ServerName = host
	}
	return c, nil
}

// DialContext dials addr over TCP and handshakes TLS with a fresh
// ClientConfig, for http.Transport.DialTLSContext.
func (s *Side) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	cfg, err := s.ClientConfig(host)
	if err != nil {
		return nil, err
	}
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}, Config: cfg}
	return d.DialContext(ctx, network, addr)
}

// AutoDir is where etcd keeps a member's self-signed certificates.
func AutoDir(dataDir, what string) string { return filepath.Join(dataDir, "fixtures", what) }

// onceLog remembers which (host, reason) pairs were logged.
type onceLog struct {
	mu   sync.Mutex
	seen map[string]bool
}

func newOnceLog() *onceLog { return &onceLog{seen: map[string]bool{}} }

// first reports whether key is new; the memory is bounded (it forgets all
// after 4096 keys, so a long-lived member logs again, rarely).
func (o *onceLog) first(key string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.seen[key] {
		return false
	}
	if len(o.seen) >= 4096 {
		clear(o.seen)
	}
	o.seen[key] = true
	return true
}
