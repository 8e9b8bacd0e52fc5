package e2e

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/testcerts"
	"github.com/cairnkv/cairn/internal/testutil"
)

// probeTLS connects to addr with cfg, sends an HTTP/1.1 request and
// reads the first line of the answer: nil when the server took the
// connection (whatever the status), the handshake's or the read's error
// when it refused it. A client certificate refused after the handshake
// (a revoked one, with TLS 1.3) shows as an error on the read.
func probeTLS(cfg *tls.Config, addr string) (tls.ConnectionState, error) {
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 3 * time.Second}, Config: cfg}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer c.Close()
	tc := c.(*tls.Conn)
	_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(tc, "GET /health HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", addr); err != nil {
		return tc.ConnectionState(), err
	}
	line, err := bufio.NewReader(tc).ReadString('\n')
	if err != nil {
		return tc.ConnectionState(), err
	}
	if !strings.HasPrefix(line, "HTTP/1.1 ") {
		return tc.ConnectionState(), fmt.Errorf("not an HTTP answer: %q", line)
	}
	return tc.ConnectionState(), nil
}

func hostOf(u string) string { return u[strings.Index(u, "://")+3:] }

// TestTLSCompatCRLFiles: with --client-crl-file and --peer-crl-file, a
// client or peer certificate the CRL revokes is refused on that port, and
// a CRL replaced on disk is used for the next connection, without a
// restart; a certificate it does not revoke goes on working. Passes
// against etcd 3.7.3.
func TestTLSCompatCRLFiles(t *testing.T) {
	t.Parallel()
	ca := testcerts.NewCA(t)
	dir := t.TempDir()
	clientCRL, peerCRL := filepath.Join(dir, "client-crl.der"), filepath.Join(dir, "peer-crl.der")
	empty := readFile(t, ca.CRL(t))
	writeFile(t, clientCRL, empty)
	writeFile(t, peerCRL, empty)
	tc := startTLSCluster(t, 1, tlsOptions{clientTLS: true, clientMTLS: true, peerTLS: true, peerMTLS: true, ca: ca,
		extra: []string{"--client-crl-file", clientCRL, "--peer-crl-file", peerCRL}})
	m := tc.Members[0]
	good := tc.clientConfig(t, &tc.user)
	doomed := ca.Client(t, "root")
	doomedCfg := tc.clientConfig(t, &doomed)
	goodPeer := tc.clientConfig(t, &tc.certs[0])
	doomedPeerPair := ca.Peer(t, "m9")
	doomedPeer := tc.clientConfig(t, &doomedPeerPair)
	clientAddr, peerAddr := hostOf(m.ClientURL), hostOf(m.PeerURL)

	// Nothing revoked yet: every certificate is taken.
	if err := getOnce(t, doomedCfg, m.ClientURL); err != nil {
		t.Fatalf("a client certificate not yet revoked: %v", err)
	}
	for name, cfg := range map[string]*tls.Config{"peer": goodPeer, "peer to be revoked": doomedPeer} {
		if _, err := probeTLS(cfg, peerAddr); err != nil {
			t.Fatalf("%s certificate on the peer port, nothing revoked: %v", name, err)
		}
	}

	// The client CRL now revokes one client certificate: it is refused
	// on the client port from the next connection on, without a restart.
	writeFile(t, clientCRL, readFile(t, ca.CRL(t, doomed)))
	testutil.Eventually(t, requestTimeout, "the revoked client certificate refused", func() (bool, string) {
		err := getOnce(t, doomedCfg, m.ClientURL)
		return err != nil, fmt.Sprintf("get with the revoked certificate: %v", err)
	})
	if _, err := probeTLS(doomedCfg, clientAddr); err == nil {
		t.Error("the revoked client certificate got an HTTP answer on the client port")
	}
	if err := getOnce(t, good, m.ClientURL); err != nil {
		t.Errorf("a client certificate the CRL does not revoke: %v", err)
	}
	// The client CRL is not the peer port's: the same serial there...
	if _, err := probeTLS(doomedPeer, peerAddr); err != nil {
		t.Errorf("a peer certificate revoked by the client CRL only: %v", err)
	}

	// The peer CRL now revokes a peer certificate: refused on the peer
	// port, without a restart; the member's own goes on.
	writeFile(t, peerCRL, readFile(t, ca.CRL(t, doomedPeerPair)))
	testutil.Eventually(t, requestTimeout, "the revoked peer certificate refused", func() (bool, string) {
		_, err := probeTLS(doomedPeer, peerAddr)
		return err != nil, fmt.Sprintf("peer port with the revoked certificate: %v", err)
	})
	if _, err := probeTLS(goodPeer, peerAddr); err != nil {
		t.Errorf("a peer certificate the peer CRL does not revoke: %v", err)
	}

	// An empty CRL again: the client certificate is taken again.
	writeFile(t, clientCRL, empty)
	testutil.Eventually(t, requestTimeout, "the unrevoked client certificate taken again", func() (bool, string) {
		err := getOnce(t, doomedCfg, m.ClientURL)
		return err == nil, fmt.Sprintf("get: %v", err)
	})
}

// TestTLSCompatCipherSuitesAndVersions: --cipher-suites and
// --tls-max-version hold the client and peer ports to TLS 1.2 with the
// listed suites; a client offering only another suite, or only TLS 1.3,
// is refused. With --tls-min-version TLS1.3 a TLS 1.2 client is refused
// and a TLS 1.3 one served. Every client presents a good certificate
// (with a trusted CA file a port asks for one, as etcd's), so only the
// version or suite decides. Passes against etcd 3.7.3.
func TestTLSCompatCipherSuitesAndVersions(t *testing.T) {
	t.Parallel()
	ca := testcerts.NewCA(t)
	allowed := []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305}
	var names []string
	for _, s := range allowed {
		names = append(names, tls.CipherSuiteName(s))
	}
	t.Run("suites and max version", func(t *testing.T) {
		t.Parallel()
		tc := startTLSCluster(t, 1, tlsOptions{clientTLS: true, peerTLS: true, ca: ca,
			extra: []string{"--cipher-suites", strings.Join(names, ","), "--tls-max-version", "TLS1.2"}})
		m := tc.Members[0]
		for port, addr := range map[string]string{"client": hostOf(m.ClientURL), "peer": hostOf(m.PeerURL)} {
			cfg := tc.clientConfig(t, &tc.user)
			st, err := probeTLS(cfg, addr)
			if err != nil {
				t.Errorf("%s port, a default client: %v", port, err)
			} else if st.Version != tls.VersionTLS12 || (st.CipherSuite != allowed[0] && st.CipherSuite != allowed[1]) {
				t.Errorf("%s port negotiated %s with %s, want TLS 1.2 with one of %v", port, tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite), names)
			}
			other := tc.clientConfig(t, &tc.user)
			other.MaxVersion = tls.VersionTLS12
			other.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}
			if st, err := probeTLS(other, addr); err == nil {
				t.Errorf("%s port served a client offering only %s: negotiated %s", port, tls.CipherSuiteName(other.CipherSuites[0]), tls.CipherSuiteName(st.CipherSuite))
			}
			only13 := tc.clientConfig(t, &tc.user)
			only13.MinVersion = tls.VersionTLS13
			if _, err := probeTLS(only13, addr); err == nil {
				t.Errorf("%s port served a TLS 1.3-only client with --tls-max-version TLS1.2", port)
			}
		}
		// clientv3 gets on with one of the suites.
		if err := getOnce(t, tc.clientConfig(t, &tc.user), m.ClientURL); err != nil {
			t.Errorf("clientv3 with the listed suites: %v", err)
		}
	})
	t.Run("min version", func(t *testing.T) {
		t.Parallel()
		tc := startTLSCluster(t, 1, tlsOptions{clientTLS: true, peerTLS: true, ca: ca, extra: []string{"--tls-min-version", "TLS1.3"}})
		m := tc.Members[0]
		for port, addr := range map[string]string{"client": hostOf(m.ClientURL), "peer": hostOf(m.PeerURL)} {
			st, err := probeTLS(tc.clientConfig(t, &tc.user), addr)
			if err != nil || st.Version != tls.VersionTLS13 {
				t.Errorf("%s port, a default client: %s, %v; want TLS 1.3", port, tls.VersionName(st.Version), err)
			}
			only12 := tc.clientConfig(t, &tc.user)
			only12.MaxVersion = tls.VersionTLS12
			if _, err := probeTLS(only12, addr); err == nil {
				t.Errorf("%s port served a TLS 1.2 client with --tls-min-version TLS1.3", port)
			}
		}
		old := tc.clientConfig(t, &tc.user)
		old.MaxVersion = tls.VersionTLS12
		if err := getOnce(t, old, m.ClientURL); err == nil {
			t.Error("clientv3 limited to TLS 1.2 was served with --tls-min-version TLS1.3")
		}
		code, _, err := httpsGet(t, tc.clientConfig(t, &tc.user), m.ClientURL+"/health")
		if err != nil || code != http.StatusOK {
			t.Errorf("/health over TLS 1.3: %d %v", code, err)
		}
	})
}
