package etcdcompat

import (
	"errors"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/snapshot"
	"go.uber.org/zap"
)

// authState is what a root user sees of the auth state.
type authState struct {
	Enabled  bool
	Revision uint64
	Users    map[string][]string // user -> roles
	Roles    map[string][]string // role -> permissions, printed
}

func rootClient(t *testing.T, s *server) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{s.ClientURL}, DialTimeout: 10 * time.Second, Logger: zap.NewNop(), Username: "root", Password: "rootpw"})
	if err != nil {
		t.Fatalf("root client of %s: %v", s, err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// writeAuth makes users (one without a password), roles with key, range
// and prefix permissions, and turns auth on.
func writeAuth(t *testing.T, s *server) {
	t.Helper()
	ctx, cli := opCtx(t), s.cli
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	must(cli.UserAdd(ctx, "root", "rootpw"))
	must(cli.UserGrantRole(ctx, "root", "root"))
	must(cli.RoleAdd(ctx, "app"))
	must(cli.RoleGrantPermission(ctx, "app", "app/", clientv3.GetPrefixRangeEnd("app/"), clientv3.PermissionType(clientv3.PermReadWrite)))
	must(cli.RoleGrantPermission(ctx, "app", "config", "", clientv3.PermissionType(clientv3.PermRead)))
	must(cli.RoleGrantPermission(ctx, "app", "a", "c", clientv3.PermissionType(clientv3.PermWrite)))
	must(cli.RoleAdd(ctx, "ops"))
	must(cli.UserAdd(ctx, "alice", "alicepw"))
	must(cli.UserGrantRole(ctx, "alice", "app"))
	must(cli.UserGrantRole(ctx, "alice", "ops"))
	must(cli.UserAddWithOptions(ctx, "certonly", "", &clientv3.UserAddOptions{NoPassword: true}))
	must(cli.Put(ctx, "config", "c"))
	must(cli.AuthEnable(ctx))
}

func captureAuth(t *testing.T, s *server) authState {
	t.Helper()
	ctx, cli := opCtx(t), rootClient(t, s)
	st := authState{Users: map[string][]string{}, Roles: map[string][]string{}}
	as, err := cli.AuthStatus(ctx)
	if err != nil {
		t.Fatalf("%s: auth status: %v", s, err)
	}
	st.Enabled, st.Revision = as.Enabled, as.AuthRevision
	ul, err := cli.UserList(ctx)
	if err != nil {
		t.Fatalf("%s: user list: %v", s, err)
	}
	for _, u := range ul.Users {
		ug, err := cli.UserGet(ctx, u)
		if err != nil {
			t.Fatalf("%s: user get %s: %v", s, u, err)
		}
		st.Users[u] = append([]string{}, ug.Roles...)
	}
	rl, err := cli.RoleList(ctx)
	if err != nil {
		t.Fatalf("%s: role list: %v", s, err)
	}
	for _, r := range rl.Roles {
		rg, err := cli.RoleGet(ctx, r)
		if err != nil {
			t.Fatalf("%s: role get %s: %v", s, r, err)
		}
		perms := []string{}
		for _, p := range rg.Perm {
			perms = append(perms, p.String())
		}
		sort.Strings(perms)
		st.Roles[r] = perms
	}
	return st
}

// checkLogins: the passwords (bcrypt hashes in the file) still work, and
// the permissions are enforced.
func checkLogins(t *testing.T, s *server) {
	t.Helper()
	ctx := opCtx(t)
	alice, err := clientv3.New(clientv3.Config{Endpoints: []string{s.ClientURL}, DialTimeout: 10 * time.Second, Logger: zap.NewNop(), Username: "alice", Password: "alicepw"})
	if err != nil {
		t.Fatalf("%s: alice's login: %v", s, err)
	}
	defer alice.Close()
	if _, err := alice.Put(ctx, "app/x", "v"); err != nil {
		t.Errorf("%s: alice writing app/x: %v", s, err)
	}
	if _, err := alice.Put(ctx, "config", "v"); !errors.Is(err, rpctypes.ErrPermissionDenied) {
		t.Errorf("%s: alice writing config: %v, want permission denied", s, err)
	}
	if _, err := s.cli.Get(ctx, "config"); !errors.Is(err, rpctypes.ErrUserEmpty) {
		t.Errorf("%s: a read without a user: %v, want user name is empty", s, err)
	}
	if _, err := clientv3.New(clientv3.Config{Endpoints: []string{s.ClientURL}, DialTimeout: 10 * time.Second, Logger: zap.NewNop(), Username: "alice", Password: "wrong"}); !errors.Is(err, rpctypes.ErrAuthFailed) {
		t.Errorf("%s: a wrong password: %v", s, err)
	}
}

// authSnapshot saves a snapshot as root.
func authSnapshot(t *testing.T, s *server) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), string(s.kind)+"-auth.db")
	if _, err := snapshot.SaveWithVersion(opCtx(t), zap.NewNop(), clientv3.Config{
		Endpoints: []string{s.ClientURL}, DialTimeout: 10 * time.Second, Username: "root", Password: "rootpw",
	}, path); err != nil {
		t.Fatalf("snapshot of %s: %v", s, err)
	}
	return path
}

// Users, roles, permissions, the auth revision and whether auth is on go
// from Cairn through a snapshot into etcd 3.7.3 and back, in etcd's
// schema: the same users log in with the same passwords and get the same
// permissions at each step.
func TestAuthRoundTripCairnEtcdCairn(t *testing.T) {
	orig := startNew(t, cairnKind, "c1")
	writeAuth(t, orig)
	want := captureAuth(t, orig)
	if !want.Enabled || len(want.Users) != 3 || len(want.Roles) != 2 {
		t.Fatalf("Cairn's auth state: %+v", want)
	}
	checkLogins(t, orig)

	etcd := startRestored(t, etcdKind, "r1", authSnapshot(t, orig))
	if diff := cmp.Diff(want, captureAuth(t, etcd)); diff != "" {
		t.Errorf("etcd restored from Cairn's snapshot (-Cairn +etcd):\n%s", diff)
	}
	checkLogins(t, etcd)

	back := startRestored(t, cairnKind, "r2", authSnapshot(t, etcd))
	if diff := cmp.Diff(want, captureAuth(t, back)); diff != "" {
		t.Errorf("Cairn restored from etcd's snapshot (-original +back):\n%s", diff)
	}
	checkLogins(t, back)
}

// The other way first: etcd's users, made by etcd, in Cairn.
func TestAuthEtcdSnapshotIntoCairn(t *testing.T) {
	src := startNew(t, etcdKind, "e1")
	writeAuth(t, src)
	want := captureAuth(t, src)
	dst := startRestored(t, cairnKind, "r1", authSnapshot(t, src))
	if diff := cmp.Diff(want, captureAuth(t, dst)); diff != "" {
		t.Errorf("Cairn restored from etcd's snapshot (-etcd +Cairn):\n%s", diff)
	}
	checkLogins(t, dst)
}
