package e2e

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/cairnkv/cairn/internal/proc"
	"github.com/cairnkv/cairn/internal/testcerts"
)

// With --client-cert-auth the JSON gateway dials the member's gRPC side
// presenting the member's own certificate (--cert-file); in these tests
// its Common Name is root. That name must never be the user of a gateway
// request. A member recognises the gateway's requests by their
// grpcgateway-accept metadata, which grpc-gateway derives from the HTTP
// Accept header only: a request without one (Go's net/http, curl -H
// 'Accept:') was served as root.

// startGatewayCertMember starts one member, auth set up (authSetup),
// whose certificate is srv, with a plain and an https client URL: the
// gateway on the https one dials it with srv. With splitHTTP the HTTP
// side is on a plain --listen-client-http-urls of its own, whose gateway
// dials the https gRPC URL with srv. It returns the https URL and the
// URL of the gateway.
func startGatewayCertMember(t *testing.T, ca *testcerts.CA, srv testcerts.Pair, splitHTTP bool) (tlsURL, gwURL string) {
	t.Helper()
	for attempt := 0; ; attempt++ {
		urls := freeURLs(t, 4)
		httpURL, peerURL := urls[0], urls[1]
		tlsURL = "https://" + strings.TrimPrefix(urls[2], "http://")
		gwURL, healthURL := tlsURL, httpURL
		args := []string{"--listen-client-urls", tlsURL + "," + httpURL, "--advertise-client-urls", httpURL + "," + tlsURL,
			"--cert-file", srv.CertFile, "--key-file", srv.KeyFile, "--client-cert-auth", "--trusted-ca-file", ca.CertFile}
		if splitHTTP {
			gwURL, healthURL = urls[3], urls[3]
			args = append(args, "--listen-client-http-urls", gwURL)
		}
		c := newCluster(t, args...)
		m := c.newMember(t, "m0", t.TempDir(), httpURL, peerURL)
		c.Members = append(c.Members, m)
		m.InitialCluster = proc.InitialCluster(m.Peer())
		if !startListening(t, m, attempt) {
			continue
		}
		eventually(t, readyTimeout, "healthy on the HTTP URL", func() (bool, string) {
			err := proc.Health(ctx(t), healthURL)
			return err == nil, fmt.Sprint(err)
		})
		authSetup(t, c)
		return tlsURL, gwURL
	}
}

// gatewayPost posts body to base+path with cli and the headers hdr (and
// none other than net/http's own: no Accept).
func gatewayPost(t *testing.T, cli *http.Client, base, path, body string, hdr map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx(t), http.MethodPost, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := cli.Do(req)
	if err != nil {
		t.Fatalf("POST %s%s: %v", base, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestAuthCompatGatewayRefusesCertificatesWithCommonName: over TLS, a
// gateway request made with a client certificate that has a Common Name
// is refused with etcd's 400 while certificates name users, with or
// without an Accept header. Cairn served it, without an Accept header, as
// the member's certificate's user (root). Against etcd too.
func TestAuthCompatGatewayRefusesCertificatesWithCommonName(t *testing.T) {
	t.Parallel()
	ca := testcerts.NewCA(t)
	tlsURL, _ := startGatewayCertMember(t, ca, ca.Peer(t, "root"), false)
	caPEM, err := os.ReadFile(ca.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	nobody := ca.Client(t, "nobody")
	cli := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{nobody.TLS(t)}}}}
	t.Cleanup(cli.CloseIdleConnections)
	for _, hdr := range []map[string]string{nil, {"Accept": "*/*"}} {
		// "other" is a key only root may write.
		for _, path := range []string{"/v3/kv/put", "/v3/auth/user/list", "/v3/auth/authenticate"} {
			code, body := gatewayPost(t, cli, tlsURL, path, `{"key":"b3RoZXI=","value":"dg==","name":"root","password":"rootpw"}`, hdr)
			if code != 400 || !strings.Contains(body, "CommonName of client sending a request against gateway will be ignored and not used as expected") {
				t.Errorf("https with a certificate naming no user (headers %v): %s: %d %s, want etcd's 400", hdr, path, code, body)
			}
		}
	}
}

// TestAuthGatewayNeverActsAsItsOwnCertificate: a plain
// --listen-client-http-urls gateway forwards to the https gRPC URL with
// the member's certificate; a request without a token and without an
// Accept header, unary or a watch, is made by no user, and a token still
// works. etcd 3.7.3 serves such a request as the certificate's user, here
// root, to anyone who can reach the port, whenever its gateway dials the
// https client URL (it picks one of the client URLs at random): not a
// Compat test.
func TestAuthGatewayNeverActsAsItsOwnCertificate(t *testing.T) {
	t.Parallel()
	ca := testcerts.NewCA(t)
	_, gwURL := startGatewayCertMember(t, ca, ca.Peer(t, "root"), true)
	for _, path := range []string{"/v3/kv/put", "/v3/auth/user/list"} {
		if code, body := gatewayPost(t, http.DefaultClient, gwURL, path, `{"key":"b3RoZXI=","value":"dg=="}`, nil); code != 400 || !strings.Contains(body, "etcdserver: user name is empty") {
			t.Errorf("no token, no Accept header: %s: %d %s, want 400 user name is empty", path, code, body)
		}
	}
	// A watch through the gateway (a stream) is refused too.
	req, err := http.NewRequestWithContext(ctx(t), http.MethodPost, gwURL+"/v3/watch", strings.NewReader(`{"create_request":{"key":"b3RoZXI="}}`))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	first, err := bufio.NewReader(resp.Body).ReadString('\n')
	resp.Body.Close()
	if err != nil || !strings.Contains(first, `"canceled":true`) || !strings.Contains(first, "etcdserver: user name is empty") {
		t.Errorf("no token, no Accept header: watch other: %q %v, want canceled: user name is empty", first, err)
	}
	code, body := gatewayPost(t, http.DefaultClient, gwURL, "/v3/auth/authenticate", `{"name":"root","password":"rootpw"}`, nil)
	tok := between(body, `"token":"`, `"`)
	if code != 200 || tok == "" {
		t.Fatalf("authenticate as root: %d %s", code, body)
	}
	if code, body := gatewayPost(t, http.DefaultClient, gwURL, "/v3/kv/put", `{"key":"b3RoZXI=","value":"dg=="}`, map[string]string{"Authorization": tok}); code != 200 {
		t.Errorf("put other with root's token: %d %s", code, body)
	}
}

// between is the text of s after the first before and up to the next after.
func between(s, before, after string) string {
	_, rest, ok := strings.Cut(s, before)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, after)
	return v
}
