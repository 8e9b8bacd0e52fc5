package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/internal/testutil"
)

// etcd 3.7's v3 discovery: a new cluster's members find each other through
// an existing cluster. This test passes against etcd too:
// CAIRN_E2E_CAIRN=/path/to/etcd go test ./e2e -run TestDiscoveryCompat.

// discoveryFlags are the flags of a member bootstrapped through svc.
// The dial timeout (2 s by default) covers the login of --discovery-user,
// a bcrypt check on the service that takes most of a second on a busy
// machine under the race detector.
func discoveryFlags(svc *Cluster, token string) []string {
	return []string{"--discovery-endpoints", svc.Members[0].ClientURL, "--discovery-token", token, "--discovery-dial-timeout", "20s"}
}

// startDiscovered starts n members that know only the discovery service
// and the token (no --initial-cluster), and waits until they serve.
func startDiscovered(t *testing.T, svc *Cluster, n int) (*Cluster, string) {
	t.Helper()
	base := t.TempDir()
	for attempt := 0; attempt < 3; attempt++ {
		token := fmt.Sprintf("disc-%d-%d", os.Getpid(), time.Now().UnixNano())
		svc.Etcdctl(t, "put", "/_etcd/registry/"+token+"/_config/size", fmt.Sprint(n))
		c := newCluster(t, discoveryFlags(svc, token)...)
		urls := freeURLs(t, 2*n)
		for i := 0; i < n; i++ {
			name := fmt.Sprintf("d%d", i)
			dir := filepath.Join(base, fmt.Sprintf("try%d", attempt), name)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			m := c.newMember(t, name, dir, urls[2*i], urls[2*i+1])
			m.Token = "" // the discovery token is the cluster token
			c.Members = append(c.Members, m)
		}
		for _, m := range c.Members {
			if err := m.Start(); err != nil {
				t.Fatal(err)
			}
		}
		err := c.waitReadyAll()
		if err == nil {
			return c, token
		}
		if !strings.Contains(err.Error(), "address already in use") {
			t.Fatalf("discovered cluster did not become ready: %v", err)
		}
		t.Logf("port collision, retrying with other ports and a new token: %v", err)
		c.killAll()
	}
	t.Fatal("discovered cluster did not start after retries")
	return nil, ""
}

func TestDiscoveryCompat(t *testing.T) {
	svc := NewCluster(t, 1)
	c, token := startDiscovered(t, svc, 3)

	// One cluster: every member lists the same three members and answers
	// with the same cluster ID; a write through one is read through another.
	var want string
	var clusterID uint64
	for _, m := range c.Members {
		ml, err := c.MemberClient(t, m).MemberList(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, mm := range ml.Members {
			names = append(names, fmt.Sprintf("%s=%s", mm.Name, strings.Join(mm.PeerURLs, ",")))
		}
		slices.Sort(names)
		got := fmt.Sprint(names)
		if want == "" {
			want, clusterID = got, ml.Header.ClusterId
		}
		if got != want || ml.Header.ClusterId != clusterID || len(names) != 3 {
			t.Fatalf("member %s lists %s in cluster %x; member %s lists %s in cluster %x",
				m.Name, got, ml.Header.ClusterId, c.Members[0].Name, want, clusterID)
		}
	}
	for _, m := range c.Members {
		if !strings.Contains(want, m.Name+"="+m.PeerURL) {
			t.Fatalf("member list %s lacks %s=%s", want, m.Name, m.PeerURL)
		}
	}
	if _, err := c.MemberClient(t, c.Members[0]).Put(ctx(t), "k", "v"); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "the write read through another member", func() (bool, string) {
		resp, err := c.MemberClient(t, c.Members[2]).Get(ctx(t), "k", clientv3.WithSerializable())
		if err != nil {
			return false, err.Error()
		}
		return len(resp.Kvs) == 1 && string(resp.Kvs[0].Value) == "v", fmt.Sprint(resp.Kvs)
	})
	// The registrations are etcd's: one key per member, its ID in hex,
	// valued name=peer URL.
	regs := svc.Etcdctl(t, "get", "--prefix", "/_etcd/registry/"+token+"/members/")
	for _, m := range c.Members {
		st, err := c.MemberClient(t, m).Status(ctx(t), m.ClientURL)
		if err != nil {
			t.Fatal(err)
		}
		key := fmt.Sprintf("/_etcd/registry/%s/members/%x\n%s=%s\n", token, st.Header.MemberId, m.Name, m.PeerURL)
		if !strings.Contains(regs, key) {
			t.Fatalf("registrations %q lack %q", regs, key)
		}
	}
	// A restarted member ignores discovery: it has its WAL.
	m := c.Members[1]
	stopCompat(t, m)
	m.Restart(t)
	m.WaitReady(t)

	// A fourth member finds the cluster full; a token without a size, or
	// with a bad one, is refused at once.
	token2 := fmt.Sprintf("nosize-%d", time.Now().UnixNano())
	token3 := fmt.Sprintf("badsize-%d", time.Now().UnixNano())
	svc.Etcdctl(t, "put", "/_etcd/registry/"+token3+"/_config/size", "three")
	for _, tc := range []struct {
		token, want string
	}{
		{token, "failed to join discovery cluster (discovery: cluster is full)"},
		{token2, "failed to join discovery cluster (discovery: size key not found)"},
		{token3, "failed to join discovery cluster (discovery: size key is bad)"},
	} {
		dir := t.TempDir()
		urls := freeURLs(t, 2)
		r := runCairn(t, dir, append([]string{"--name", "late", "--data-dir", filepath.Join(dir, "data"),
			"--listen-client-urls", urls[0], "--advertise-client-urls", urls[0],
			"--listen-peer-urls", urls[1], "--initial-advertise-peer-urls", urls[1], "--log-outputs", "stderr"},
			discoveryFlags(svc, tc.token)...)...)
		if r.Code == 0 || !strings.Contains(r.Stderr, tc.want) || !strings.Contains(r.Stderr, "do not reuse discovery token; generate a new one to bootstrap a cluster") {
			t.Fatalf("a member with token %s: exit %d, want a failure saying %q\nstderr:\n%s", tc.token, r.Code, tc.want, r.Stderr)
		}
	}
	// The fourth member did not register: the cluster still has three.
	if n := strings.Count(svc.Etcdctl(t, "get", "--prefix", "--keys-only", "/_etcd/registry/"+token+"/members/"), "/members/"); n != 3 {
		t.Fatalf("%d registrations after the refused member, want 3", n)
	}
}

// The flags etcd checks before anything else, with its words.
func TestDiscoveryFlagsCompat(t *testing.T) {
	dir := t.TempDir()
	urls := freeURLs(t, 2)
	base := []string{"--name", "x", "--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", urls[0], "--advertise-client-urls", urls[0],
		"--listen-peer-urls", urls[1], "--initial-advertise-peer-urls", urls[1], "--log-outputs", "stderr"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--discovery-token", "t"}, "both --discovery-token and --discovery-endpoints must be set"},
		{[]string{"--discovery-endpoints", "127.0.0.1:1"}, "both --discovery-token and --discovery-endpoints must be set"},
		{[]string{"--discovery-endpoints", "127.0.0.1:1,", "--discovery-token", "t"}, "--discovery-endpoints must not contain empty endpoints"},
		{[]string{"--discovery-endpoints", "127.0.0.1:1", "--discovery-token", "t", "--initial-cluster", "x=" + urls[1]},
			`multiple discovery or bootstrap flags are set. Choose one of "initial-cluster", "discovery-endpoints" or "discovery-srv"`},
	} {
		r := runCairn(t, dir, append(append([]string{}, base...), tc.args...)...)
		if out := strings.ReplaceAll(r.Stdout+r.Stderr, `\"`, `"`); r.Code == 0 || !strings.Contains(out, tc.want) {
			t.Fatalf("%v: exit %d, want a failure saying %q\nstderr:\n%s", tc.args, r.Code, tc.want, r.Stdout+r.Stderr)
		}
	}
}

// A discovery service with auth on: the members authenticate with
// --discovery-user and --discovery-password.
func TestDiscoveryAuthCompat(t *testing.T) {
	svc := NewCluster(t, 1)
	svc.Etcdctl(t, "user", "add", "root", "--new-user-password", "rootpw")
	svc.Etcdctl(t, "user", "add", "disc", "--new-user-password", "discpw")
	svc.Etcdctl(t, "role", "add", "disc")
	svc.Etcdctl(t, "role", "grant-permission", "disc", "--prefix=true", "readwrite", "/_etcd/registry/")
	svc.Etcdctl(t, "user", "grant-role", "disc", "disc")
	svc.Etcdctl(t, "auth", "enable")

	token := fmt.Sprintf("auth-%d", time.Now().UnixNano())
	svc.Etcdctl(t, "--user", "root:rootpw", "put", "/_etcd/registry/"+token+"/_config/size", "1")
	dir := t.TempDir()
	c := newCluster(t, append(discoveryFlags(svc, token), "--discovery-user", "disc", "--discovery-password", "discpw")...)
	urls := freeURLs(t, 2)
	m := c.newMember(t, "a0", dir, urls[0], urls[1])
	m.Token = ""
	c.Members = append(c.Members, m)
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	m.WaitReady(t)
	regs := svc.Etcdctl(t, "--user", "root:rootpw", "get", "--prefix", "/_etcd/registry/"+token+"/members/")
	if !strings.Contains(regs, "a0="+m.PeerURL) {
		t.Fatalf("registrations %q lack a0", regs)
	}

	// A wrong password is refused by the service: the member does not start.
	token2 := fmt.Sprintf("authbad-%d", time.Now().UnixNano())
	svc.Etcdctl(t, "--user", "root:rootpw", "put", "/_etcd/registry/"+token2+"/_config/size", "1")
	dir2 := t.TempDir()
	urls = freeURLs(t, 2)
	cmdArgs := append([]string{"--name", "bad", "--data-dir", filepath.Join(dir2, "data"),
		"--listen-client-urls", urls[0], "--advertise-client-urls", urls[0],
		"--listen-peer-urls", urls[1], "--initial-advertise-peer-urls", urls[1], "--log-outputs", "stderr"},
		append(discoveryFlags(svc, token2), "--discovery-user", "disc", "--discovery-password", "wrong")...)
	r := runCairn(t, dir2, cmdArgs...)
	if out := r.Stdout + r.Stderr; r.Code == 0 || !strings.Contains(out, "authentication failed, invalid user ID or password") {
		t.Fatalf("a wrong discovery password: exit %d\n%s", r.Code, out)
	}
}

// A discovery service over client mTLS: the members dial it with
// --discovery-cacert, --discovery-cert and --discovery-key.
func TestDiscoveryTLSCompat(t *testing.T) {
	svc := startTLSCluster(t, 1, tlsOptions{clientTLS: true, clientMTLS: true})
	token := fmt.Sprintf("tls-%d", time.Now().UnixNano())
	cli := tlsClient(t, svc.clientConfig(t, &svc.user), svc.Members[0].ClientURL)
	if _, err := cli.Put(ctx(t), "/_etcd/registry/"+token+"/_config/size", "1"); err != nil {
		t.Fatal(err)
	}
	cert := svc.ca.Client(t, "discovery")
	c := newCluster(t, "--discovery-endpoints", svc.Members[0].ClientURL, "--discovery-token", token,
		"--discovery-insecure-transport=false", "--discovery-cacert", svc.ca.CertFile,
		"--discovery-cert", cert.CertFile, "--discovery-key", cert.KeyFile)
	urls := freeURLs(t, 2)
	m := c.newMember(t, "t0", t.TempDir(), urls[0], urls[1])
	m.Token = ""
	c.Members = append(c.Members, m)
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	m.WaitReady(t)
	resp, err := cli.Get(ctx(t), "/_etcd/registry/"+token+"/members/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "t0="+m.PeerURL {
		t.Fatalf("registrations %v, want t0=%s", resp.Kvs, m.PeerURL)
	}
}
