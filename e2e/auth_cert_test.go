package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/proc"
	"github.com/cairnkv/cairn/internal/testcerts"
)

// TestAuthCompatClientCertCommonName: with --client-cert-auth, a request
// over TLS without a token is made by the user its verified client
// certificate names (a user without a password included); a token still
// wins over the certificate. Against etcd too.
func TestAuthCompatClientCertCommonName(t *testing.T) {
	t.Parallel()
	ca := testcerts.NewCA(t)
	srv := ca.Server(t)
	var c *Cluster
	var tlsURL string
	for attempt := 0; ; attempt++ {
		urls := freeURLs(t, 3)
		httpURL, peerURL := urls[0], urls[1]
		tlsURL = "https://" + strings.TrimPrefix(urls[2], "http://")
		c = newCluster(t,
			"--listen-client-urls", httpURL+","+tlsURL, "--advertise-client-urls", httpURL+","+tlsURL,
			"--cert-file", srv.CertFile, "--key-file", srv.KeyFile, "--client-cert-auth", "--trusted-ca-file", ca.CertFile)
		m := c.newMember(t, "m0", t.TempDir(), httpURL, peerURL)
		c.Members = append(c.Members, m)
		m.InitialCluster = proc.InitialCluster(m.Peer())
		if err := m.Start(); err != nil {
			t.Fatal(err)
		}
		err := c.waitReadyAll()
		if err == nil {
			break
		}
		c.killAll()
		if attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			t.Fatalf("member did not become ready: %v", err)
		}
	}
	authSetup(t, c)
	root := userClient(t, c, "root", "rootpw")
	if _, err := root.UserAddWithOptions(ctx(t), "certonly", "", &clientv3.UserAddOptions{NoPassword: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.UserGrantRole(ctx(t), "certonly", "app"); err != nil {
		t.Fatal(err)
	}

	caPEM, err := os.ReadFile(ca.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	certClient := func(cn, user, pw string) *clientv3.Client {
		t.Helper()
		pair := ca.Client(t, cn)
		cli, err := clientv3.New(clientv3.Config{
			Endpoints: []string{tlsURL}, DialTimeout: 5 * time.Second, Logger: zap.NewNop(),
			TLS:      &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair.TLS(t)}},
			Username: user, Password: pw,
		})
		if err != nil {
			t.Fatalf("TLS client %s: %v", cn, err)
		}
		t.Cleanup(func() { cli.Close() })
		return cli
	}
	for _, cn := range []string{"certonly", "alice"} {
		cli := certClient(cn, "", "")
		if _, err := cli.Put(ctx(t), "app/"+cn, "v"); err != nil {
			t.Errorf("%s by certificate writing app/%s: %v", cn, cn, err)
		}
		if _, err := cli.Put(ctx(t), "other", "v"); rpctypes.Error(err) != rpctypes.ErrPermissionDenied {
			t.Errorf("%s by certificate writing other: %v, want permission denied", cn, err)
		}
		if _, err := cli.Compact(ctx(t), 1); rpctypes.Error(err) != rpctypes.ErrPermissionDenied {
			t.Errorf("%s by certificate compacting: %v, want permission denied", cn, err)
		}
	}
	if _, err := certClient("nobody", "", "").Get(ctx(t), "app/x"); rpctypes.Error(err) != rpctypes.ErrPermissionDenied {
		t.Errorf("a certificate naming no user: %v, want permission denied", err)
	}
	if _, err := certClient("certonly", "root", "rootpw").Put(ctx(t), "other", "v"); err != nil {
		t.Errorf("a token over a certificate (root's over certonly's): %v", err)
	}
	if _, err := c.Client(t).Get(ctx(t), "app/x"); rpctypes.Error(err) != rpctypes.ErrUserEmpty {
		t.Errorf("plain HTTP, no token: %v, want user name is empty", err)
	}
	// etcdctl with --cert/--key/--cacert.
	pair := ca.Client(t, "certonly")
	r := c.etcdctlAt(t, []string{tlsURL}, "", "--cacert", ca.CertFile, "--cert", pair.CertFile, "--key", pair.KeyFile, "put", "app/ctl", "v")
	if r.Code != 0 || r.Stdout != "OK\n" {
		t.Errorf("etcdctl --cert as certonly: exit %d %q %s", r.Code, r.Stdout, lastLine(r.Stderr))
	}
	r = c.etcdctlAt(t, []string{tlsURL}, "", "--cacert", ca.CertFile, "--cert", pair.CertFile, "--key", pair.KeyFile, "user", "list")
	if r.Code != 1 || lastLine(r.Stderr) != "Error: etcdserver: permission denied" {
		t.Errorf("etcdctl --cert as certonly listing users: exit %d %q", r.Code, lastLine(r.Stderr))
	}
}
