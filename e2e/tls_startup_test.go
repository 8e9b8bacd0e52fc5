package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairnkv/cairn/internal/proc"
	"github.com/cairnkv/cairn/internal/testcerts"
)

// tlsStartArgs are the flags of a one-member cluster on free ports, with
// https client and/or peer URLs.
func tlsStartArgs(t *testing.T, httpsClient, httpsPeer bool) []string {
	t.Helper()
	urls := freeURLs(t, 2)
	client, peer := urls[0], urls[1]
	if httpsClient {
		client = toHTTPS(client)
	}
	if httpsPeer {
		peer = toHTTPS(peer)
	}
	return []string{"--data-dir", filepath.Join(t.TempDir(), "data"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", "default=" + peer}
}

// TestTLSCompatStartupErrors: a member asked for TLS it cannot serve
// stops at once with etcd's words: an https URL without a certificate,
// a certificate file that does not exist. Passes against etcd 3.7.3.
func TestTLSCompatStartupErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name                   string
		httpsClient, httpsPeer bool
		extra                  []string
		want                   string
	}{
		{"https client URL without a certificate", true, false, nil,
			"TLS key/cert (--cert-file, --key-file) must be provided for client url https://127.0.0.1:"},
		{"https peer URL without a certificate", false, true, nil,
			"KeyFile and CertFile are not presented"},
		{"missing certificate file", true, false, []string{"--cert-file", "/nonexistent/server.pem", "--key-file", "/nonexistent/server-key.pem"},
			"open /nonexistent/server.pem: no such file or directory"},
	} {
		args := append(tlsStartArgs(t, tc.httpsClient, tc.httpsPeer), tc.extra...)
		out, err := runToExit(t, exec.Command(cairnBin(t), args...))
		if err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("%s: %v\n%s\nwant a failure saying %q", tc.name, err, proc.Tail(out, 5), tc.want)
		}
	}
}

// TestTLSStartupErrors: a key that does not match its certificate, an
// expired certificate, a trusted CA file holding no certificate and a
// CRL file that is not one stop the member at start with one line naming
// the flag and the file (etcd starts with an empty CA pool, refusing
// every client later, or fails at the first handshake).
func TestTLSStartupErrors(t *testing.T) {
	t.Parallel()
	ca := testcerts.NewCA(t)
	a, b := ca.Peer(t, "a"), ca.Peer(t, "b")
	old := ca.Peer(t, "old", testcerts.Expired())
	empty := filepath.Join(t.TempDir(), "empty-ca.pem")
	if err := os.WriteFile(empty, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		extra []string
		want  string
	}{
		{"mismatched key", []string{"--cert-file", a.CertFile, "--key-file", b.KeyFile},
			`--cert-file "` + a.CertFile + `" and --key-file "` + b.KeyFile + `" are not a certificate and its key: tls: private key does not match public key`},
		{"expired certificate", []string{"--cert-file", old.CertFile, "--key-file", old.KeyFile},
			`--cert-file "` + old.CertFile + `": the certificate expired on `},
		{"CA file without certificates", []string{"--cert-file", a.CertFile, "--key-file", a.KeyFile, "--trusted-ca-file", empty},
			`--trusted-ca-file "` + empty + `": the file holds no PEM certificate`},
		{"bad CRL", []string{"--cert-file", a.CertFile, "--key-file", a.KeyFile, "--client-crl-file", empty},
			`--client-crl-file "` + empty + `": not a certificate revocation list`},
		{"peer key missing", []string{"--peer-cert-file", a.CertFile, "--peer-key-file", "/nonexistent/k.pem"},
			`--peer-key-file: open /nonexistent/k.pem: no such file or directory`},
	} {
		peer := strings.HasPrefix(tc.extra[0], "--peer-")
		res := runCairn(t, t.TempDir(), append(tlsStartArgs(t, !peer, peer), tc.extra...)...)
		lines := strings.Split(strings.TrimSpace(res.Stderr), "\n")
		last := lines[len(lines)-1]
		if res.Code == 0 || !strings.HasPrefix(last, "cairn: ") || !strings.Contains(last, tc.want) {
			t.Errorf("%s: exit %d, last line %q\nwant a line with %q", tc.name, res.Code, last, tc.want)
		}
	}
}
