package e2e

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"
	"google.golang.org/grpc/metadata"
)

// authSetup makes root (password rootpw) and a user alice (alicepw) with
// the role app: read-write on the prefixes app/, /lock/ and /elect/, read
// on the key shared; then enables auth. It returns root's client.
func authSetup(t *testing.T, c *Cluster) *clientv3.Client {
	t.Helper()
	cli := c.Client(t)
	grant := func(key, end string, typ clientv3.PermissionType) func() error {
		return func() error { _, err := cli.RoleGrantPermission(ctx(t), "app", key, end, typ); return err }
	}
	steps := []func() error{
		func() error { _, err := cli.UserAdd(ctx(t), "root", "rootpw"); return err },
		func() error { _, err := cli.UserGrantRole(ctx(t), "root", "root"); return err },
		func() error { _, err := cli.RoleAdd(ctx(t), "app"); return err },
		grant("app/", clientv3.GetPrefixRangeEnd("app/"), clientv3.PermissionType(clientv3.PermReadWrite)),
		grant("/lock/", clientv3.GetPrefixRangeEnd("/lock/"), clientv3.PermissionType(clientv3.PermReadWrite)),
		grant("/elect/", clientv3.GetPrefixRangeEnd("/elect/"), clientv3.PermissionType(clientv3.PermReadWrite)),
		grant("shared", "", clientv3.PermissionType(clientv3.PermRead)),
		func() error { _, err := cli.UserAdd(ctx(t), "alice", "alicepw"); return err },
		func() error { _, err := cli.UserGrantRole(ctx(t), "alice", "app"); return err },
		func() error { _, err := cli.Put(ctx(t), "shared", "s"); return err },
		func() error { _, err := cli.AuthEnable(ctx(t)); return err },
	}
	for i, s := range steps {
		if err := s(); err != nil {
			t.Fatalf("setup step %d: %v", i, err)
		}
	}
	return userClient(t, c, "root", "rootpw", c.Members...)
}

func userClient(t *testing.T, c *Cluster, user, pw string, members ...*Member) *clientv3.Client {
	t.Helper()
	if len(members) == 0 {
		members = c.Members
	}
	var eps []string
	for _, m := range members {
		eps = append(eps, m.ClientURL)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop(), Username: user, Password: pw})
	if err != nil {
		t.Fatalf("clientv3.New as %s: %v", user, err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) && (err == nil || err.Error() != want.Error()) {
		t.Errorf("%s: %v, want %v", what, err, want)
	}
}

// TestAuthClientv3Permissions: what a user with a role may and may not do
// through clientv3, with etcd's errors, on every service.
func TestAuthClientv3Permissions(t *testing.T) {
	t.Parallel()
	c := NewCluster(t, 1)
	root := authSetup(t, c)
	alice := userClient(t, c, "alice", "alicepw")
	anon := c.Client(t)

	if _, err := alice.Put(ctx(t), "app/1", "v"); err != nil {
		t.Fatalf("alice writing app/1: %v", err)
	}
	if r, err := alice.Get(ctx(t), "app/", clientv3.WithPrefix()); err != nil || len(r.Kvs) != 1 {
		t.Fatalf("alice reading app/: %v %v", r, err)
	}
	if _, err := alice.Get(ctx(t), "shared"); err != nil {
		t.Errorf("alice reading shared: %v", err)
	}
	wantErr(t, "alice writing shared", func() error { _, err := alice.Put(ctx(t), "shared", "x"); return err }(), rpctypes.ErrPermissionDenied)
	wantErr(t, "alice reading everything", func() error { _, err := alice.Get(ctx(t), "", clientv3.WithPrefix()); return err }(), rpctypes.ErrPermissionDenied)
	wantErr(t, "alice deleting shared", func() error { _, err := alice.Delete(ctx(t), "shared"); return err }(), rpctypes.ErrPermissionDenied)
	// A txn: its compares and every op, nested ones too.
	_, err := alice.Txn(ctx(t)).If(clientv3.Compare(clientv3.Value("shared"), "=", "s")).
		Then(clientv3.OpTxn(nil, []clientv3.Op{clientv3.OpPut("app/2", "v")}, []clientv3.Op{clientv3.OpPut("other", "v")})).Commit()
	wantErr(t, "a txn with a nested put of other", err, rpctypes.ErrPermissionDenied)
	if _, err := alice.Txn(ctx(t)).If(clientv3.Compare(clientv3.Value("shared"), "=", "s")).Then(clientv3.OpPut("app/2", "v")).Else(clientv3.OpGet("shared")).Commit(); err != nil {
		t.Errorf("a txn within alice's permissions: %v", err)
	}
	wantErr(t, "a read-only txn comparing a key alice may not read", func() error {
		_, err := alice.Txn(ctx(t)).If(clientv3.Compare(clientv3.Version("other"), "=", 0)).Then(clientv3.OpGet("app/1")).Commit()
		return err
	}(), rpctypes.ErrPermissionDenied)

	// Root only.
	wantErr(t, "alice compacting", func() error { _, err := alice.Compact(ctx(t), 1); return err }(), rpctypes.ErrPermissionDenied)
	wantErr(t, "alice hashing", func() error { _, err := alice.HashKV(ctx(t), c.Members[0].ClientURL, 0); return err }(), rpctypes.ErrPermissionDenied)
	wantErr(t, "alice defragmenting", func() error { _, err := alice.Defragment(ctx(t), c.Members[0].ClientURL); return err }(), rpctypes.ErrPermissionDenied)
	wantErr(t, "alice adding a member", func() error { _, err := alice.MemberAdd(ctx(t), []string{"http://127.0.0.1:1"}); return err }(), rpctypes.ErrPermissionDenied)
	wantErr(t, "alice listing users", func() error { _, err := alice.UserList(ctx(t)); return err }(), rpctypes.ErrPermissionDenied)
	wantErr(t, "alice adding a role", func() error { _, err := alice.RoleAdd(ctx(t), "x"); return err }(), rpctypes.ErrPermissionDenied)
	if _, err := alice.Status(ctx(t), c.Members[0].ClientURL); err != nil {
		t.Errorf("alice asking status: %v", err)
	}
	if _, err := alice.MemberList(ctx(t)); err != nil {
		t.Errorf("alice listing members: %v", err)
	}
	if _, err := root.Compact(ctx(t), 1); err != nil {
		t.Errorf("root compacting: %v", err)
	}
	if _, err := root.HashKV(ctx(t), c.Members[0].ClientURL, 0); err != nil {
		t.Errorf("root hashing: %v", err)
	}

	// Without credentials: etcd's "user name is empty".
	wantErr(t, "no user reading", func() error { _, err := anon.Get(ctx(t), "app/1"); return err }(), rpctypes.ErrUserEmpty)
	wantErr(t, "no user status", func() error { _, err := anon.Status(ctx(t), c.Members[0].ClientURL); return err }(), rpctypes.ErrUserEmpty)
	wantErr(t, "no user granting a lease", func() error { _, err := anon.Grant(ctx(t), 60); return err }(), rpctypes.ErrUserEmpty)
	// A bad password, an unknown token.
	if _, err := clientv3.New(clientv3.Config{Endpoints: c.ClientURLs(), DialTimeout: 5 * time.Second, Logger: zap.NewNop(), Username: "alice", Password: "nope"}); !errors.Is(err, rpctypes.ErrAuthFailed) {
		t.Errorf("a bad password: %v", err)
	}
	kv := pb.NewKVClient(anon.ActiveConnection())
	_, err = kv.Range(metadata.AppendToOutgoingContext(ctx(t), rpctypes.TokenFieldNameGRPC, "bogus.1"), &pb.RangeRequest{Key: []byte("app/1")})
	wantErr(t, "an unknown token", rpctypes.Error(err), rpctypes.ErrInvalidAuthToken)

	// Watches are checked at creation.
	wctx, cancel := clientv3.WithRequireLeader(ctx(t)), func() {}
	defer cancel()
	wr := <-alice.Watch(wctx, "other")
	if !wr.Canceled || wr.Err() == nil || !strings.Contains(wr.Err().Error(), "etcdserver: permission denied") {
		t.Errorf("alice watching other: canceled %v err %v", wr.Canceled, wr.Err())
	}
	wch := alice.Watch(wctx, "app/", clientv3.WithPrefix(), clientv3.WithRev(1))
	wr = <-wch
	if wr.Canceled || wr.Err() != nil || len(wr.Events) == 0 {
		t.Errorf("alice watching app/: %+v %v", wr, wr.Err())
	}

	// Leases: revoking, or asking the TTL of, a lease whose keys alice may
	// not write (read) is refused.
	l, err := alice.Grant(ctx(t), 60)
	if err != nil {
		t.Fatalf("alice granting a lease: %v", err)
	}
	if _, err := root.Put(ctx(t), "other", "v", clientv3.WithLease(l.ID)); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "alice asking the TTL of a lease holding other", func() error { _, err := alice.TimeToLive(ctx(t), l.ID, clientv3.WithAttachedKeys()); return err }(), rpctypes.ErrPermissionDenied)
	wantErr(t, "alice keeping alive a lease holding other", func() error { _, err := alice.KeepAliveOnce(ctx(t), l.ID); return err }(), rpctypes.ErrPermissionDenied)
	wantErr(t, "alice revoking a lease holding other", func() error { _, err := alice.Revoke(ctx(t), l.ID); return err }(), rpctypes.ErrPermissionDenied)
	wantErr(t, "alice listing leases, one holding other", func() error { _, err := alice.Leases(ctx(t)); return err }(), rpctypes.ErrPermissionDenied)
	if ls, err := root.Leases(ctx(t)); err != nil || len(ls.Leases) != 1 {
		t.Errorf("root listing leases: %v %v", ls, err)
	}
	if _, err := root.Revoke(ctx(t), l.ID); err != nil {
		t.Errorf("root revoking: %v", err)
	}

	// A role change reaches alice at once.
	if _, err := root.RoleRevokePermission(ctx(t), "app", "app/", clientv3.GetPrefixRangeEnd("app/")); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "alice writing app/1 after the revoke", func() error { _, err := alice.Put(ctx(t), "app/1", "v"); return err }(), rpctypes.ErrPermissionDenied)
}

// TestAuthConcurrency: clientv3's concurrency package (sessions, mutexes,
// elections) works for a user allowed on its prefixes.
func TestAuthConcurrency(t *testing.T) {
	t.Parallel()
	c := NewCluster(t, 1)
	authSetup(t, c)
	a := userClient(t, c, "alice", "alicepw")
	b := userClient(t, c, "alice", "alicepw")
	sa, err := concurrency.NewSession(a, concurrency.WithTTL(10))
	if err != nil {
		t.Fatal(err)
	}
	defer sa.Close()
	sb, err := concurrency.NewSession(b, concurrency.WithTTL(10))
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	ma, mb := concurrency.NewMutex(sa, "/lock/x"), concurrency.NewMutex(sb, "/lock/x")
	if err := ma.Lock(ctx(t)); err != nil {
		t.Fatalf("lock: %v", err)
	}
	if err := mb.TryLock(ctx(t)); !errors.Is(err, concurrency.ErrLocked) {
		t.Errorf("second lock: %v, want ErrLocked", err)
	}
	if err := ma.Unlock(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := mb.Lock(ctx(t)); err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	e := concurrency.NewElection(sa, "/elect/x")
	if err := e.Campaign(ctx(t), "a"); err != nil {
		t.Fatalf("campaign: %v", err)
	}
	l, err := concurrency.NewElection(sb, "/elect/x").Leader(ctx(t))
	if err != nil || string(l.Kvs[0].Value) != "a" {
		t.Fatalf("leader: %v %v", l, err)
	}
	// Elsewhere the session's keys are refused.
	if err := concurrency.NewMutex(sa, "/forbidden/").Lock(ctx(t)); !errors.Is(err, rpctypes.ErrPermissionDenied) {
		t.Errorf("a lock outside alice's prefixes: %v", err)
	}
}

// TestAuthGateway: the JSON gateway's /v3/auth/authenticate gives a token
// that the Authorization header carries.
func TestAuthGateway(t *testing.T) {
	t.Parallel()
	c := NewCluster(t, 1)
	authSetup(t, c)
	m := c.Members[0]
	code, body := httpDo(t, m, http.MethodPost, "/v3/auth/authenticate", `{"name":"alice","password":"alicepw"}`)
	var ar struct{ Token string }
	if err := json.Unmarshal([]byte(body), &ar); code != 200 || err != nil || ar.Token == "" {
		t.Fatalf("authenticate: %d %s", code, body)
	}
	do := func(path, body, token string) (int, string) {
		req, err := http.NewRequestWithContext(ctx(t), http.MethodPost, m.ClientURL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := do("/v3/kv/put", `{"key":"YXBwL2c=","value":"dg=="}`, ar.Token); code != 200 {
		t.Errorf("put app/g with the token: %d %s", code, body)
	}
	if code, body := do("/v3/kv/range", `{"key":"YXBwL2c="}`, ar.Token); code != 200 || !strings.Contains(body, `"value":"dg=="`) {
		t.Errorf("range app/g with the token: %d %s", code, body)
	}
	if code, body := do("/v3/kv/put", `{"key":"b3RoZXI=","value":"dg=="}`, ar.Token); code != 403 || !strings.Contains(body, "etcdserver: permission denied") {
		t.Errorf("put other with the token: %d %s", code, body)
	}
	if code, body := do("/v3/kv/range", `{"key":"YXBwL2c="}`, ""); code != 400 || !strings.Contains(body, "etcdserver: user name is empty") {
		t.Errorf("range without a token: %d %s", code, body)
	}
	if code, body := do("/v3/kv/range", `{"key":"YXBwL2c="}`, "bogus.1"); code != 401 || !strings.Contains(body, "etcdserver: invalid auth token") {
		t.Errorf("range with a bad token: %d %s", code, body)
	}
	code, body = httpDo(t, m, http.MethodPost, "/v3/auth/authenticate", `{"name":"alice","password":"no"}`)
	if code != 400 || !strings.Contains(body, "etcdserver: authentication failed, invalid user ID or password") {
		t.Errorf("authenticate with a bad password: %d %s", code, body)
	}
}

// TestAuthTokenFromOneMemberOnAnother: a simple token is assigned through
// raft, so every member of a 3-member cluster honours it.
func TestAuthTokenFromOneMemberOnAnother(t *testing.T) {
	t.Parallel()
	c := NewCluster(t, 3)
	authSetup(t, c)
	tok, err := pb.NewAuthClient(c.MemberClient(t, c.Members[0]).ActiveConnection()).Authenticate(ctx(t), &pb.AuthenticateRequest{Name: "alice", Password: "alicepw"})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range c.Members {
		kv := pb.NewKVClient(c.MemberClient(t, m).ActiveConnection())
		mctx := metadata.AppendToOutgoingContext(ctx(t), rpctypes.TokenFieldNameGRPC, tok.Token)
		if _, err := kv.Put(mctx, &pb.PutRequest{Key: []byte("app/" + m.Name), Value: []byte("v")}); err != nil {
			t.Errorf("put with %s's token on %s: %v", c.Members[0].Name, m.Name, err)
		}
		if _, err := kv.Range(mctx, &pb.RangeRequest{Key: []byte("app/" + m.Name), Serializable: true}); err != nil {
			t.Errorf("serializable range on %s: %v", m.Name, err)
		}
		if _, err := kv.Put(mctx, &pb.PutRequest{Key: []byte("shared"), Value: []byte("v")}); rpctypes.Error(err) != rpctypes.ErrPermissionDenied {
			t.Errorf("put of shared on %s: %v", m.Name, err)
		}
	}
	// Lease time-to-live and keep-alives forwarded to the leader carry
	// the caller's token.
	for _, m := range c.Members {
		cli := userClient(t, c, "alice", "alicepw", m)
		l, err := cli.Grant(ctx(t), 60)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cli.Put(ctx(t), "app/l", "v", clientv3.WithLease(l.ID)); err != nil {
			t.Fatal(err)
		}
		if _, err := cli.TimeToLive(ctx(t), l.ID, clientv3.WithAttachedKeys()); err != nil {
			t.Errorf("time-to-live on %s: %v", m.Name, err)
		}
		if _, err := cli.KeepAliveOnce(ctx(t), l.ID); err != nil {
			t.Errorf("keep-alive on %s: %v", m.Name, err)
		}
	}
}

// TestAuthJWT: --auth-token jwt signs tokens carrying the auth revision;
// a token older than a change of permissions is refused with etcd's
// "revision of auth store is old", and clientv3 logs in again by itself.
func TestAuthJWT(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	priv, pub := filepath.Join(dir, "jwt.key"), filepath.Join(dir, "jwt.pub")
	if err := os.WriteFile(priv, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	c := NewClusterArgs(t, 3, "--auth-token", "jwt,pub-key="+pub+",priv-key="+priv+",sign-method=RS256,ttl=10m")
	root := authSetup(t, c)
	tok, err := pb.NewAuthClient(c.MemberClient(t, c.Members[0]).ActiveConnection()).Authenticate(ctx(t), &pb.AuthenticateRequest{Name: "alice", Password: "alicepw"})
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(tok.Token, "."); n != 2 {
		t.Fatalf("token %q is not a JWT", tok.Token)
	}
	kv2 := pb.NewKVClient(c.MemberClient(t, c.Members[2]).ActiveConnection())
	mctx := metadata.AppendToOutgoingContext(ctx(t), rpctypes.TokenFieldNameGRPC, tok.Token)
	if _, err := kv2.Put(mctx, &pb.PutRequest{Key: []byte("app/j"), Value: []byte("v")}); err != nil {
		t.Fatalf("put with the JWT on another member: %v", err)
	}
	alice := userClient(t, c, "alice", "alicepw")
	if _, err := alice.Get(ctx(t), "app/j"); err != nil {
		t.Fatal(err)
	}
	if _, err := root.RoleGrantPermission(ctx(t), "app", "more", "", clientv3.PermissionType(clientv3.PermRead)); err != nil {
		t.Fatal(err)
	}
	if _, err := kv2.Range(mctx, &pb.RangeRequest{Key: []byte("app/j")}); rpctypes.Error(err) != rpctypes.ErrAuthOldRevision {
		t.Errorf("range with a JWT from before the grant: %v, want %v", err, rpctypes.ErrAuthOldRevision)
	}
	if _, err := alice.Get(ctx(t), "more"); err != nil {
		t.Errorf("clientv3 after the grant (it logs in again): %v", err)
	}
}

// TestAuthPasswordsNeverInClearText: with debug logging, a user's
// passwords reach neither the member's log, nor its WAL, nor its
// database (which holds etcd's bcrypt hashes).
func TestAuthPasswordsNeverInClearText(t *testing.T) {
	t.Parallel()
	c := NewClusterArgs(t, 1, "--log-level", "debug")
	cli := c.Client(t)
	const pw1, pw2 = "Clear-Text-Secret-One", "Clear-Text-Secret-Two"
	if _, err := cli.UserAdd(ctx(t), "root", pw1); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.UserGrantRole(ctx(t), "root", "root"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.AuthEnable(ctx(t)); err != nil {
		t.Fatal(err)
	}
	root := userClient(t, c, "root", pw1)
	if _, err := root.UserChangePassword(ctx(t), "root", pw2); err != nil {
		t.Fatal(err)
	}
	if _, err := clientv3.New(clientv3.Config{Endpoints: c.ClientURLs(), DialTimeout: 5 * time.Second, Logger: zap.NewNop(), Username: "root", Password: pw1}); !errors.Is(err, rpctypes.ErrAuthFailed) {
		t.Errorf("the old password after the change: %v", err)
	}
	if _, err := userClient(t, c, "root", pw2).Get(ctx(t), "k"); err != nil {
		t.Errorf("the new password: %v", err)
	}
	m := c.Members[0]
	m.Stop(t)
	files := []string{m.LogPath}
	err := filepath.Walk(m.DataDir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 3 {
		t.Fatalf("only %v to look into", files)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, pw := range []string{pw1, pw2} {
			if strings.Contains(string(b), pw) {
				t.Errorf("%s holds a password in clear text", f)
			}
		}
	}
}
