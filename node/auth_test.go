package node

import (
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cairnkv/cairn/auth"
	"github.com/cairnkv/cairn/clock"
	"github.com/cairnkv/cairn/vfs"
)

type tokenLog struct{ assigned []string }

func (l *tokenLog) Assign(token, user string) { l.assigned = append(l.assigned, token+"="+user) }
func (l *tokenLog) InvalidateUser(string)     {}
func (l *tokenLog) InvalidateAll()            {}

func authTestConfig(t *testing.T, sink auth.TokenSink) Config {
	urls := []string{"http://m0"}
	m := Member{ID: MemberID(urls, "auth"), Name: "m0", PeerURLs: urls}
	return Config{
		Name: "m0", ID: m.ID, ClusterToken: "auth", InitialMembers: []Member{m},
		DataDir: t.TempDir(), WALFS: vfs.NewMem(), WALSegmentSize: 256 << 10, Transport: dropTransport{},
		Clock: clock.NewFake(time.Unix(100, 0)), BackendNoSync: true, ElectionTicks: 10, AuthTokens: sink,
	}
}

func startAuthCore(t *testing.T, cfg Config) *Core {
	t.Helper()
	c, err := NewCore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if n := ticksToLead(t, c, 30); n > 30 {
		t.Fatal("no leader")
	}
	return c
}

// applyReq proposes r and processes until it is applied.
func applyReq(t *testing.T, c *Core, r *pb.InternalRaftRequest) Result {
	t.Helper()
	var res *Result
	if _, err := c.Propose(r, func(x Result) { res = &x }); err != nil {
		t.Fatal(err)
	}
	for i := 0; res == nil && i < 100; i++ {
		if err := c.Process(); err != nil {
			t.Fatal(err)
		}
	}
	if res == nil {
		t.Fatal("request not applied")
	}
	return *res
}

func asUser(c *Core, user string) *pb.RequestHeader {
	return &pb.RequestHeader{Username: user, AuthRevision: c.Auth().Revision()}
}

func hashedPW(s string) string { return base64.StdEncoding.EncodeToString([]byte("hash:" + s)) }

func mustApply(t *testing.T, c *Core, r *pb.InternalRaftRequest) Result {
	t.Helper()
	res := applyReq(t, c, r)
	if res.Err != nil {
		t.Fatalf("%v: %v", r, res.Err)
	}
	return res
}

// setupAuth makes root, a role "r" that may write under "a/" and read
// "b", a user "u" with it, and enables auth.
func setupAuth(t *testing.T, c *Core) {
	t.Helper()
	for _, r := range []*pb.InternalRaftRequest{
		{AuthUserAdd: &pb.AuthUserAddRequest{Name: "root", HashedPassword: hashedPW("rootpw")}},
		{AuthUserGrantRole: &pb.AuthUserGrantRoleRequest{User: "root", Role: "root"}},
		{AuthRoleAdd: &pb.AuthRoleAddRequest{Name: "r"}},
		{AuthRoleGrantPermission: &pb.AuthRoleGrantPermissionRequest{Name: "r", Perm: &authpb.Permission{Key: []byte("a/"), RangeEnd: []byte("a0"), PermType: authpb.Permission_WRITE}}},
		{AuthRoleGrantPermission: &pb.AuthRoleGrantPermissionRequest{Name: "r", Perm: &authpb.Permission{Key: []byte("b"), PermType: authpb.Permission_READ}}},
		{AuthUserAdd: &pb.AuthUserAddRequest{Name: "u", HashedPassword: hashedPW("upw")}},
		{AuthUserGrantRole: &pb.AuthUserGrantRoleRequest{User: "u", Role: "r"}},
	} {
		mustApply(t, c, r)
	}
	if res := applyReq(t, c, &pb.InternalRaftRequest{AuthEnable: &pb.AuthEnableRequest{}}); res.Err != nil {
		t.Fatal(res.Err)
	}
}

func TestAuthApplyChecksEveryRequest(t *testing.T) {
	sink := &tokenLog{}
	c := startAuthCore(t, authTestConfig(t, sink))
	defer c.Close()
	setupAuth(t, c)

	put := func(h *pb.RequestHeader, key string) error {
		return applyReq(t, c, &pb.InternalRaftRequest{Header: h, Put: &pb.PutRequest{Key: []byte(key), Value: []byte("v")}}).Err
	}
	if err := put(asUser(c, "u"), "a/1"); err != nil {
		t.Errorf("u writing a/1: %v", err)
	}
	if err := put(asUser(c, "u"), "b"); !errors.Is(err, auth.ErrPermissionDenied) {
		t.Errorf("u writing b (read only): %v", err)
	}
	if err := put(nil, "a/1"); !errors.Is(err, auth.ErrUserEmpty) {
		t.Errorf("no user: %v", err)
	}
	if err := put(asUser(c, "root"), "anything"); err != nil {
		t.Errorf("root: %v", err)
	}
	// Checked at an older revision: refused at apply, as etcd does.
	old := asUser(c, "u")
	mustApply(t, c, &pb.InternalRaftRequest{Header: asUser(c, "root"), AuthRoleAdd: &pb.AuthRoleAddRequest{Name: "other"}})
	if err := put(old, "a/1"); !errors.Is(err, auth.ErrAuthOldRevision) {
		t.Errorf("a put checked at an old revision: %v", err)
	}
	// Txns: every compare and op, nested ones too.
	txn := &pb.TxnRequest{
		Compare: []*pb.Compare{{Key: []byte("b"), Target: pb.Compare_VERSION}},
		Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestTxn{RequestTxn: &pb.TxnRequest{
			Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("a/2")}}}},
			Failure: []*pb.RequestOp{{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: []byte("c")}}}},
		}}}},
	}
	if res := applyReq(t, c, &pb.InternalRaftRequest{Header: asUser(c, "u"), Txn: txn}); !errors.Is(res.Err, auth.ErrPermissionDenied) {
		t.Errorf("a txn with a nested delete of c: %v", res.Err)
	}
	txn.Success[0].GetRequestTxn().Failure = nil
	if res := applyReq(t, c, &pb.InternalRaftRequest{Header: asUser(c, "u"), Txn: txn}); res.Err != nil {
		t.Errorf("a txn within u's permissions: %v", res.Err)
	}
	// Admin requests need root; user get is allowed for oneself.
	if res := applyReq(t, c, &pb.InternalRaftRequest{Header: asUser(c, "u"), AuthUserList: &pb.AuthUserListRequest{}}); !errors.Is(res.Err, auth.ErrPermissionDenied) {
		t.Errorf("u listing users: %v", res.Err)
	}
	if res := applyReq(t, c, &pb.InternalRaftRequest{Header: asUser(c, "u"), AuthUserGet: &pb.AuthUserGetRequest{Name: "u"}}); res.Err != nil {
		t.Errorf("u getting itself: %v", res.Err)
	} else if roles := res.Resp.(*pb.AuthUserGetResponse).Roles; len(roles) != 1 || roles[0] != "r" {
		t.Errorf("u's roles %v", roles)
	}
	if res := applyReq(t, c, &pb.InternalRaftRequest{Header: asUser(c, "u"), AuthUserGet: &pb.AuthUserGetRequest{Name: "root"}}); !errors.Is(res.Err, auth.ErrPermissionDenied) {
		t.Errorf("u getting root: %v", res.Err)
	}
	if res := applyReq(t, c, &pb.InternalRaftRequest{Header: asUser(c, "u"), AuthRoleGet: &pb.AuthRoleGetRequest{Role: "r"}}); res.Err != nil {
		t.Errorf("u getting its own role: %v", res.Err)
	}
	// A lease with a key u may not write: u may not revoke it.
	mustApply(t, c, &pb.InternalRaftRequest{LeaseGrant: &pb.LeaseGrantRequest{ID: 7, TTL: 60}})
	mustApply(t, c, &pb.InternalRaftRequest{Header: asUser(c, "root"), Put: &pb.PutRequest{Key: []byte("z"), Lease: 7}})
	if res := applyReq(t, c, &pb.InternalRaftRequest{Header: asUser(c, "u"), LeaseRevoke: &pb.LeaseRevokeRequest{ID: 7}}); !errors.Is(res.Err, auth.ErrPermissionDenied) {
		t.Errorf("u revoking a lease holding z: %v", res.Err)
	}
	// Simple tokens are prefix.index, told to the sink on every member.
	res := mustApply(t, c, &pb.InternalRaftRequest{Authenticate: &pb.InternalAuthenticateRequest{Name: "u", SimpleToken: "prefix"}})
	tok := res.Resp.(*pb.AuthenticateResponse).Token
	if want := "prefix." + itoa(res.Index); tok != want || len(sink.assigned) != 1 || sink.assigned[0] != want+"=u" {
		t.Errorf("token %q (want %q), sink %v", tok, want, sink.assigned)
	}
	st := mustApply(t, c, &pb.InternalRaftRequest{AuthStatus: &pb.AuthStatusRequest{}}).Resp.(*pb.AuthStatusResponse)
	if !st.Enabled || st.AuthRevision != c.Auth().Revision() {
		t.Errorf("status %v", st)
	}
}

func itoa(n uint64) string {
	b := []byte{}
	for {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
		if n == 0 {
			return string(b)
		}
	}
}

// The auth state is in the database: a restarted member enforces it.
func TestAuthSurvivesRestart(t *testing.T) {
	cfg := authTestConfig(t, nil)
	c := startAuthCore(t, cfg)
	setupAuth(t, c)
	rev := c.Auth().Revision()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c = startAuthCore(t, cfg)
	defer c.Close()
	if !c.Auth().Enabled() || c.Auth().Revision() != rev {
		t.Fatalf("after restart: enabled %v revision %d, want true %d", c.Auth().Enabled(), c.Auth().Revision(), rev)
	}
	res := applyReq(t, c, &pb.InternalRaftRequest{Header: asUser(c, "u"), Put: &pb.PutRequest{Key: []byte("b")}})
	if !errors.Is(res.Err, auth.ErrPermissionDenied) {
		t.Errorf("u writing b after restart: %v", res.Err)
	}
}
