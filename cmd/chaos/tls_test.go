package main

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"strconv"
	"testing"
	"time"
)

// tlsEchoBackend is a member's peer listener with mutual TLS: it requires
// a certificate of the run's CA, reads an HTTP request head, sends the
// Common Name of the certificate it was shown, then echoes every byte.
func tlsEchoBackend(t *testing.T, rt *runTLS) string {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{rt.peer[1].cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    rt.pool,
	})
	if err != nil {
		t.Fatal(err)
	}
	return serveConns(t, l, func(c net.Conn) {
		tc := c.(*tls.Conn)
		br := bufio.NewReader(tc)
		if _, _, err := readHead(br); err != nil {
			return
		}
		cn := tc.ConnectionState().PeerCertificates[0].Subject.CommonName
		if _, err := io.WriteString(tc, cn+"\n"); err != nil {
			return
		}
		_, _ = io.Copy(tc, br)
	})
}

// TestTLSProxyTerminatesAndReoriginates: through a -tls proxy a sender's
// stream reaches the member over TLS with the sender's own certificate,
// its link can still be cut by sender, and a sender without a
// certificate of the run's CA is refused.
func TestTLSProxyTerminatesAndReoriginates(t *testing.T) {
	rt, err := newRunTLS(t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	nw := NewNetwork(3, func(id uint64) int {
		if id >= 100 && id < 103 {
			return int(id - 100)
		}
		return -1
	})
	nw.tls = rt
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := nw.NewProxy(1, l, tlsEchoBackend(t, rt))
	t.Cleanup(func() {
		p.Close()
		nw.Close()
	})

	dial := func(from int, cert *tls.Certificate) (*tls.Conn, *bufio.Reader, error) {
		cfg := &tls.Config{RootCAs: rt.pool, ServerName: "127.0.0.1"}
		if cert != nil {
			cfg.Certificates = []tls.Certificate{*cert}
		}
		c, err := tls.Dial("tcp", p.Addr(), cfg)
		if err != nil {
			return nil, nil, err
		}
		t.Cleanup(func() { c.Close() })
		head := "POST /raft/stream HTTP/1.1\r\nHost: x\r\nX-Cairn-From: " + strconv.FormatUint(uint64(from+100), 16) + "\r\n\r\n"
		if _, err := io.WriteString(c, head); err != nil {
			return nil, nil, err
		}
		return c, bufio.NewReader(c), nil
	}

	c, br, err := dial(0, &rt.peer[0].cert)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	cn, err := br.ReadString('\n')
	if err != nil || cn != "m0\n" {
		t.Fatalf("the member saw certificate %q (%v), want m0's", cn, err)
	}
	if _, err := io.WriteString(c, "ping"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("round trip = %q, %v; want ping", buf, err)
	}

	// The link m0→m1 is cut by sender, inside TLS: silence.
	nw.Set(0, 1, LinkBlackhole, 0)
	c2, br2, err := dial(0, &rt.peer[0].cert)
	if err != nil {
		t.Fatal(err)
	}
	_ = c2.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if got, err := br2.ReadString('\n'); !isTimeout(err) {
		t.Fatalf("through a blackhole: got %q, %v; want silence", got, err)
	}
	// m2→m1 is still up.
	c3, br3, err := dial(2, &rt.peer[2].cert)
	if err != nil {
		t.Fatal(err)
	}
	_ = c3.SetReadDeadline(time.Now().Add(5 * time.Second))
	if cn, err := br3.ReadString('\n'); err != nil || cn != "m2\n" {
		t.Fatalf("m2→m1: the member saw %q (%v), want m2's certificate", cn, err)
	}

	// No client certificate: the proxy refuses the handshake.
	if c4, br4, err := dial(2, nil); err == nil {
		_ = c4.SetReadDeadline(time.Now().Add(5 * time.Second))
		if got, err := br4.ReadString('\n'); err == nil {
			t.Fatalf("a sender without a certificate got through: %q", got)
		}
	}
}
