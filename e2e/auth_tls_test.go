package e2e

import (
	"fmt"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/testcerts"
)

// TestAuthMTLSClusterWithUsersAndCertificates is issue #11's "done when":
// three members with mTLS on their client and peer ports and auth on;
// clientv3 and etcdctl work on every member with a password user and
// with a certificate user, unauthorized requests get etcd's errors, and
// it goes on after the leader is killed.
func TestAuthMTLSClusterWithUsersAndCertificates(t *testing.T) {
	t.Parallel()
	tc := startTLSCluster(t, 3, tlsOptions{clientTLS: true, clientMTLS: true, peerTLS: true, peerMTLS: true})
	tc.useTLSClients(t) // their certificate's CN is root: the root user once auth is on
	setup := tc.MemberClient(t, tc.Members[0])
	for i, step := range []func() error{
		func() error { _, err := setup.UserAdd(ctx(t), "root", "rootpw"); return err },
		func() error { _, err := setup.UserGrantRole(ctx(t), "root", "root"); return err },
		func() error { _, err := setup.RoleAdd(ctx(t), "app"); return err },
		func() error {
			_, err := setup.RoleGrantPermission(ctx(t), "app", "app/", clientv3.GetPrefixRangeEnd("app/"), clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
		func() error { _, err := setup.UserAdd(ctx(t), "alice", "alicepw"); return err },
		func() error { _, err := setup.UserGrantRole(ctx(t), "alice", "app"); return err },
		func() error {
			_, err := setup.UserAddWithOptions(ctx(t), "certonly", "", &clientv3.UserAddOptions{NoPassword: true})
			return err
		},
		func() error { _, err := setup.UserGrantRole(ctx(t), "certonly", "app"); return err },
		func() error {
			_, err := setup.UserAddWithOptions(ctx(t), "idle", "", &clientv3.UserAddOptions{NoPassword: true})
			return err
		},
		func() error { _, err := setup.AuthEnable(ctx(t)); return err },
	} {
		if err := step(); err != nil {
			t.Fatalf("setup step %d: %v", i, err)
		}
	}
	certonly := tc.ca.Client(t, "certonly")
	anyCert := tc.ca.Client(t, "nobody") // mTLS wants a certificate; the token names the user
	aliceAt := func(m *Member) *clientv3.Client {
		t.Helper()
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{m.ClientURL}, DialTimeout: 5 * time.Second, Logger: zap.NewNop(),
			TLS: tc.clientConfig(t, &anyCert), Username: "alice", Password: "alicepw"})
		if err != nil {
			t.Fatalf("alice's login at %s: %v", m.Name, err)
		}
		t.Cleanup(func() { cli.Close() })
		return cli
	}
	for _, m := range tc.Members {
		for who, cli := range map[string]*clientv3.Client{
			"certonly (certificate)": tlsClient(t, tc.clientConfig(t, &certonly), m.ClientURL),
			"alice (password)":       aliceAt(m),
		} {
			if _, err := cli.Put(ctx(t), "app/"+m.Name, who); err != nil {
				t.Errorf("%s writing app/%s on %s: %v", who, m.Name, m.Name, err)
			}
			if _, err := cli.Get(ctx(t), "other"); rpctypes.Error(err) != rpctypes.ErrPermissionDenied {
				t.Errorf("%s reading other on %s: %v, want permission denied", who, m.Name, err)
			}
			if _, err := cli.MemberAdd(ctx(t), []string{"https://127.0.0.1:1"}); rpctypes.Error(err) != rpctypes.ErrPermissionDenied {
				t.Errorf("%s adding a member on %s: %v, want permission denied", who, m.Name, err)
			}
		}
		if _, err := tlsClient(t, tc.clientConfig(t, &anyCert), m.ClientURL).Get(ctx(t), "app/x"); rpctypes.Error(err) != rpctypes.ErrPermissionDenied {
			t.Errorf("a certificate naming no user on %s: %v, want permission denied", m.Name, err)
		}
		if _, err := tc.MemberClient(t, m).Put(ctx(t), "other", "root"); err != nil {
			t.Errorf("root (certificate) writing other on %s: %v", m.Name, err)
		}
		r := m.etcdctl(t, "--cacert", tc.ca.CertFile, "--cert", certonly.CertFile, "--key", certonly.KeyFile, "put", "app/ctl-"+m.Name, "v")
		if r.Code != 0 || r.Stdout != "OK\n" {
			t.Errorf("etcdctl --cert as certonly on %s: exit %d %q %s", m.Name, r.Code, r.Stdout, lastLine(r.Stderr))
		}
		r = m.etcdctl(t, "--cacert", tc.ca.CertFile, "--cert", anyCert.CertFile, "--key", anyCert.KeyFile, "--user", "alice:alicepw", "get", "app/ctl-"+m.Name, "--print-value-only")
		if r.Code != 0 || r.Stdout != "v\n" {
			t.Errorf("etcdctl --user alice on %s: exit %d %q %s", m.Name, r.Code, r.Stdout, lastLine(r.Stderr))
		}
		r = m.etcdctl(t, "--cacert", tc.ca.CertFile, "--cert", certonly.CertFile, "--key", certonly.KeyFile, "user", "list")
		if r.Code != 1 || lastLine(r.Stderr) != "Error: etcdserver: permission denied" {
			t.Errorf("etcdctl user list as certonly on %s: exit %d %q", m.Name, r.Code, lastLine(r.Stderr))
		}
	}

	// Through a follower, alice's lease with a key of hers is kept alive
	// (forwarded to the leader with her token).
	lead := tc.waitLeader(t, tc.Members, -1)
	follower := tc.Members[(lead+1)%3]
	fa := aliceAt(follower)
	l, err := fa.Grant(ctx(t), 30)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fa.Put(ctx(t), "app/leased", "v", clientv3.WithLease(l.ID)); err != nil {
		t.Fatal(err)
	}
	if ka, err := fa.KeepAliveOnce(ctx(t), l.ID); err != nil || ka.TTL <= 0 {
		t.Errorf("alice's keep-alive through follower %s: %v %v", follower.Name, ka, err)
	}
	// So is certonly's, known by its certificate alone: the follower
	// checks the certificate and forwards over the peer port, so the
	// leader never takes the follower's own certificate for the caller.
	fc := tlsClient(t, tc.clientConfig(t, &certonly), follower.ClientURL)
	cl, err := fc.Grant(ctx(t), 30)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fc.Put(ctx(t), "app/cert-leased", "v", clientv3.WithLease(cl.ID)); err != nil {
		t.Fatal(err)
	}
	if ka, err := fc.KeepAliveOnce(ctx(t), cl.ID); err != nil || ka.TTL <= 0 {
		t.Errorf("certonly's keep-alive through follower %s: %v %v", follower.Name, ka, err)
	}
	if ttl, err := fc.TimeToLive(ctx(t), cl.ID, clientv3.WithAttachedKeys()); err != nil || ttl.TTL <= 0 || len(ttl.Keys) != 1 || string(ttl.Keys[0]) != "app/cert-leased" {
		t.Errorf("certonly's time-to-live with keys through follower %s: %v %v", follower.Name, ttl, err)
	}
	// A certificate user who may not write the lease's key is refused
	// by the follower, with etcd's error, and so is a certificate
	// naming no user.
	idleCert := tc.ca.Client(t, "idle")
	for who, cert := range map[string]*testcerts.Pair{"idle": &idleCert, "nobody": &anyCert} {
		cli := tlsClient(t, tc.clientConfig(t, cert), follower.ClientURL)
		if ka, err := cli.KeepAliveOnce(ctx(t), cl.ID); rpctypes.Error(err) != rpctypes.ErrPermissionDenied {
			t.Errorf("%s's keep-alive of certonly's lease through follower %s: %v %v, want permission denied", who, follower.Name, ka, err)
		}
		if ttl, err := cli.TimeToLive(ctx(t), cl.ID, clientv3.WithAttachedKeys()); rpctypes.Error(err) != rpctypes.ErrPermissionDenied {
			t.Errorf("%s's time-to-live with keys of certonly's lease through follower %s: %v %v, want permission denied", who, follower.Name, ttl, err)
		}
	}

	// The leader is killed: the others elect another and go on serving
	// both kinds of user.
	tc.Members[lead].Kill(t)
	rest := []*Member{tc.Members[(lead+1)%3], tc.Members[(lead+2)%3]}
	tc.waitLeader(t, rest, lead)
	for _, m := range rest {
		cert := tlsClient(t, tc.clientConfig(t, &certonly), m.ClientURL)
		pw := aliceAt(m)
		eventually(t, readyTimeout, fmt.Sprintf("writes on %s after the leader's kill", m.Name), func() (bool, string) {
			_, err1 := cert.Put(ctx(t), "app/after-"+m.Name, "c")
			_, err2 := pw.Put(ctx(t), "app/after-"+m.Name, "p")
			return err1 == nil && err2 == nil, fmt.Sprintf("certificate user: %v, password user: %v", err1, err2)
		})
	}
}
