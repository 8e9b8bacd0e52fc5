package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/cairnkv/cairn/config"
	"github.com/cairnkv/cairn/internal/testcerts"
	"github.com/cairnkv/cairn/internal/testutil"
)

// serve accepts on side's TLS listener and writes "ok" on every
// connection; it returns the address.
func serve(t *testing.T, side *Side) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tl := side.Listener(l)
	t.Cleanup(func() { tl.Close() })
	go func() {
		for {
			c, err := tl.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, "ok")
			c.Close()
		}
	}()
	return l.Addr().String()
}

// dial connects with cert and reads the server's "ok"; TLS 1.3 reports a
// refused client certificate only at the first read.
func dial(t *testing.T, ca *testcerts.CA, cert *testcerts.Pair, addr string) error {
	t.Helper()
	pool := x509.NewCertPool()
	data, _ := os.ReadFile(ca.CertFile)
	pool.AppendCertsFromPEM(data)
	cfg := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{cert.TLS(t)}
	}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		return err
	}
	if string(b) != "ok" {
		return io.ErrUnexpectedEOF
	}
	return nil
}

func newSide(t *testing.T, info config.TLSInfo, lg *zap.Logger) *Side {
	t.Helper()
	s, err := New(info, Common{}, ClientFlags, "client", t.TempDir(), []string{"127.0.0.1:0"}, lg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestListenerRefusesRevokedAndUnknownCertsOnce: a revoked certificate
// (CRL), one of another CA and none are refused; each refusal is warned
// once per host and reason, later ones at debug level.
func TestListenerRefusesRevokedAndUnknownCertsOnce(t *testing.T) {
	ca := testcerts.NewCA(t)
	srv := ca.Server(t)
	good, revoked := ca.Client(t, "good"), ca.Client(t, "revoked")
	core, logs := observer.New(zapcore.DebugLevel)
	side := newSide(t, config.TLSInfo{CertFile: srv.CertFile, KeyFile: srv.KeyFile, TrustedCAFile: ca.CertFile,
		ClientCertAuth: true, CRLFile: ca.CRL(t, revoked)}, zap.New(core))
	addr := serve(t, side)
	if err := dial(t, ca, &good, addr); err != nil {
		t.Fatalf("good certificate: %v", err)
	}
	other := testcerts.NewCA(t).Client(t, "good")
	for range 3 {
		for name, cert := range map[string]*testcerts.Pair{"revoked": &revoked, "other CA": &other, "none": nil} {
			if err := dial(t, ca, cert, addr); err == nil {
				t.Fatalf("%s: accepted", name)
			}
		}
	}
	// The listener logs on its own goroutines.
	testutil.Eventually(t, 10*time.Second, "a log entry for each of the 9 refused handshakes", func() (bool, string) {
		n := logs.FilterMessageSnippet("rejected connection").Len()
		return n >= 9, fmt.Sprintf("%d entries", n)
	})
	warns := logs.FilterMessageSnippet("rejected connection").FilterLevelExact(zapcore.WarnLevel).All()
	if len(warns) != 3 {
		t.Fatalf("%d warnings, want one per reason (3)", len(warns))
	}
	var reasons []string
	for _, w := range warns {
		reasons = append(reasons, w.ContextMap()["error"].(string))
	}
	if all := strings.Join(reasons, "\n"); !strings.Contains(all, "revoked") || !strings.Contains(all, "unknown authority") {
		t.Errorf("reasons:\n%s", all)
	}
}

// TestAutoTLSMakesAndReusesACertificate: --auto-tls makes a self-signed
// certificate in its directory and reuses it at the next start.
func TestAutoTLSMakesAndReusesACertificate(t *testing.T) {
	dir := t.TempDir()
	s1, err := New(config.TLSInfo{AutoTLS: true}, Common{SelfSignedCertValidity: 1}, ClientFlags, "client", dir, []string{"127.0.0.1:2379"}, zap.NewNop())
	if err != nil || !s1.Enabled() {
		t.Fatalf("auto TLS: %v", err)
	}
	before, err := os.ReadFile(s1.info.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := New(config.TLSInfo{AutoTLS: true}, Common{SelfSignedCertValidity: 1}, ClientFlags, "client", dir, []string{"127.0.0.1:2379"}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(s2.info.CertFile)
	if string(before) != string(after) {
		t.Error("a second start made a new certificate")
	}
	cfg, err := s2.ClientConfig("127.0.0.1")
	if err != nil || !cfg.InsecureSkipVerify {
		t.Errorf("a self-signed side's client config must skip verification, as etcd's: %v", err)
	}
	if s, err := New(config.TLSInfo{}, Common{}, ClientFlags, "client", dir, nil, zap.NewNop()); s != nil || err != nil || s.Enabled() {
		t.Errorf("no TLS: %v %v", s, err)
	}
}

// TestListenerAllowedHostname: with --client-cert-allowed-hostname only
// client certificates valid for one of the names are accepted.
func TestListenerAllowedHostname(t *testing.T) {
	ca := testcerts.NewCA(t)
	srv := ca.Server(t)
	side := newSide(t, config.TLSInfo{CertFile: srv.CertFile, KeyFile: srv.KeyFile, TrustedCAFile: ca.CertFile,
		ClientCertAuth: true, AllowedHostnames: []string{"app.example", "ops.example"}}, zap.NewNop())
	addr := serve(t, side)
	ok := ca.Client(t, "anyone", testcerts.Hosts("ops.example"))
	bad := ca.Client(t, "anyone", testcerts.Hosts("other.example"))
	if err := dial(t, ca, &ok, addr); err != nil {
		t.Fatalf("allowed host name: %v", err)
	}
	if err := dial(t, ca, &bad, addr); err == nil {
		t.Fatal("a certificate for another host name was accepted")
	}
}
