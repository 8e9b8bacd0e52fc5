package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/proc"
	"github.com/cairnkv/cairn/internal/testutil"
)

// TestTLSCompatAutoTLSAndSplitHTTP: with --auto-tls and --peer-auto-tls a
// member makes its own certificates and serves https on its client, HTTP
// (--listen-client-http-urls) and peer URLs: gRPC alone on the client
// URL, the gateway and the probes on the HTTP URL, forwarding to the
// gRPC listener over TLS. Passes against etcd 3.7.3.
func TestTLSCompatAutoTLSAndSplitHTTP(t *testing.T) {
	t.Parallel()
	insecure := &tls.Config{InsecureSkipVerify: true} // self-signed: nothing to verify against, as etcdctl --insecure-skip-tls-verify
	var m *Member
	var httpURL string
	for attempt := 0; ; attempt++ {
		urls := freeURLs(t, 3)
		httpURL = toHTTPS(urls[2])
		c := newCluster(t, "--listen-client-http-urls", httpURL, "--auto-tls", "--peer-auto-tls")
		m = c.newMember(t, "m0", t.TempDir(), toHTTPS(urls[0]), toHTTPS(urls[1]))
		m.InitialCluster = proc.InitialCluster(m.Peer())
		c.Members = []*Member{m}
		if !startListening(t, m, attempt) {
			continue
		}
		break
	}
	testutil.Eventually(t, readyTimeout, "healthy on the https --listen-client-http-urls", func() (bool, string) {
		err := proc.HealthTLS(ctx(t), httpURL, insecure)
		return err == nil, fmt.Sprint(err)
	})
	cli := tlsClient(t, insecure, m.ClientURL)
	if _, err := cli.Put(ctx(t), "k", "auto"); err != nil {
		t.Fatalf("put over auto TLS: %v", err)
	}
	tr := &http.Transport{TLSClientConfig: insecure.Clone()}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: requestTimeout}).Post(httpURL+"/v3/kv/range", "application/json", strings.NewReader(`{"key":"aw=="}`))
	if err != nil {
		t.Fatalf("gateway on the https HTTP URL: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"value":"YXV0bw=="`) {
		t.Fatalf("gateway range: %s %s", resp.Status, body)
	}
	if r := m.etcdctl(t, "--insecure-skip-tls-verify", "--insecure-transport=false", "get", "k", "--print-value-only"); r.Code != 0 || strings.TrimSpace(r.Stdout) != "auto" {
		t.Fatalf("etcdctl over auto TLS: %+v", r)
	}
	// The client URL serves gRPC only: no /health there.
	c2, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := proc.HealthTLS(c2, m.ClientURL, insecure); err == nil {
		t.Error("/health answered on the gRPC-only client URL")
	}
}

// etcdctl runs etcdctl against m alone.
func (m *Member) etcdctl(t *testing.T, args ...string) ctlResult {
	t.Helper()
	return (&Cluster{}).etcdctlAt(t, []string{m.ClientURL}, "", args...)
}
