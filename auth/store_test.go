package auth

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"sort"
	"testing"

	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"
)

// memBackend is an in-memory Backend.
type memBackend map[string]map[string][]byte

func (m memBackend) AuxPut(b, k, v []byte) {
	if m[string(b)] == nil {
		m[string(b)] = map[string][]byte{}
	}
	m[string(b)][string(k)] = append([]byte(nil), v...)
}
func (m memBackend) AuxDelete(b, k []byte) { delete(m[string(b)], string(k)) }
func (m memBackend) AuxGet(b, k []byte) ([]byte, bool) {
	v, ok := m[string(b)][string(k)]
	return v, ok
}
func (m memBackend) AuxForEach(b []byte, fn func(k, v []byte) error) error {
	var keys []string
	for k := range m[string(b)] {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := fn([]byte(k), m[string(b)][k]); err != nil {
			return err
		}
	}
	return nil
}

type recSink struct{ assigned, invalidated []string }

func (r *recSink) Assign(token, user string)  { r.assigned = append(r.assigned, token+"="+user) }
func (r *recSink) InvalidateUser(user string) { r.invalidated = append(r.invalidated, user) }
func (r *recSink) InvalidateAll()             { r.invalidated = append(r.invalidated, "*") }

func newTestStore(t *testing.T) (*Store, memBackend, *recSink) {
	t.Helper()
	be := memBackend{}
	sink := &recSink{}
	s := NewStore(nil, sink)
	if err := s.Load(be); err != nil {
		t.Fatal(err)
	}
	return s, be, sink
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func hashed(pw string) string { return base64.StdEncoding.EncodeToString([]byte("bcrypt-of-" + pw)) }

func addUser(t *testing.T, s *Store, name string, roles ...string) {
	t.Helper()
	must(t, s.UserAdd(&pb.AuthUserAddRequest{Name: name, HashedPassword: hashed(name)}))
	for _, r := range roles {
		must(t, s.UserGrantRole(name, r))
	}
}

func TestEnableNeedsRootWithRootRole(t *testing.T) {
	s, _, _ := newTestStore(t)
	if err := s.AuthEnable(); !errors.Is(err, ErrRootUserNotExist) {
		t.Fatalf("enable without root: %v", err)
	}
	addUser(t, s, "root")
	if err := s.AuthEnable(); !errors.Is(err, ErrRootRoleNotExist) {
		t.Fatalf("enable with root lacking the root role: %v", err)
	}
	must(t, s.UserGrantRole("root", "root")) // the root role need not exist
	must(t, s.AuthEnable())
	must(t, s.AuthEnable()) // again: ignored
	if !s.Enabled() {
		t.Fatal("not enabled")
	}
	if err := s.UserDelete("root"); !errors.Is(err, ErrInvalidAuthMgmt) {
		t.Fatalf("deleting root with auth on: %v", err)
	}
	if err := s.UserRevokeRole("root", "root"); !errors.Is(err, ErrInvalidAuthMgmt) {
		t.Fatalf("revoking root's root role with auth on: %v", err)
	}
}

func TestRevisionBumpsAsEtcds(t *testing.T) {
	s, be, sink := newTestStore(t)
	if s.Revision() != 1 {
		t.Fatalf("a new store's revision is %d, etcd's is 1", s.Revision())
	}
	steps := []struct {
		name string
		do   func() error
		bump bool
	}{
		{"role add", func() error { return s.RoleAdd("r") }, true},
		{"user add", func() error { return s.UserAdd(&pb.AuthUserAddRequest{Name: "root", HashedPassword: hashed("x")}) }, true},
		{"grant role", func() error { return s.UserGrantRole("root", "root") }, true},
		{"grant same role again", func() error { return s.UserGrantRole("root", "root") }, false},
		{"grant permission", func() error {
			return s.RoleGrantPermission("r", &authpb.Permission{Key: []byte("a"), PermType: authpb.Permission_READ})
		}, true},
		{"enable", s.AuthEnable, false},
		{"disable", func() error { s.AuthDisable(); return nil }, true},
		{"failed user add", func() error { _ = s.UserAdd(&pb.AuthUserAddRequest{Name: "root"}); return nil }, false},
		{"change password", func() error {
			return s.UserChangePassword(&pb.AuthUserChangePasswordRequest{Name: "root", HashedPassword: hashed("y")})
		}, true},
	}
	for _, st := range steps {
		before := s.Revision()
		must(t, st.do())
		if got := s.Revision() > before; got != st.bump {
			t.Errorf("%s: revision %d -> %d, bump expected %v", st.name, before, s.Revision(), st.bump)
		}
	}
	rev := binary.BigEndian.Uint64(be["auth"]["authRevision"])
	if rev != s.Revision() {
		t.Errorf("authRevision in the bucket %d, store says %d", rev, s.Revision())
	}
	if len(sink.invalidated) != 2 || sink.invalidated[0] != "*" || sink.invalidated[1] != "root" {
		t.Errorf("token invalidations %v, want [* root]", sink.invalidated)
	}
}

// The buckets hold etcd 3.7's records, and a store loads them back.
func TestSchemaIsEtcds(t *testing.T) {
	s, be, _ := newTestStore(t)
	must(t, s.RoleAdd("reader"))
	must(t, s.RoleGrantPermission("reader", &authpb.Permission{Key: []byte("k"), RangeEnd: []byte("l"), PermType: authpb.Permission_READ}))
	addUser(t, s, "root", "root")
	addUser(t, s, "alice", "reader")
	must(t, s.UserAdd(&pb.AuthUserAddRequest{Name: "cert", Options: &authpb.UserAddOptions{NoPassword: true}}))
	must(t, s.AuthEnable())

	if v := be["auth"]["authEnabled"]; len(v) != 1 || v[0] != 1 {
		t.Errorf("authEnabled = %v, want [1]", v)
	}
	var u authpb.User
	must(t, proto.Unmarshal(be["authUsers"]["alice"], &u))
	if string(u.Name) != "alice" || len(u.Roles) != 1 || u.Roles[0] != "reader" || string(u.Password) != "bcrypt-of-alice" || u.Options == nil || u.Options.NoPassword {
		t.Errorf("alice's record: %v", &u)
	}
	var r authpb.Role
	must(t, proto.Unmarshal(be["authRoles"]["reader"], &r))
	if string(r.Name) != "reader" || len(r.KeyPermission) != 1 || string(r.KeyPermission[0].RangeEnd) != "l" {
		t.Errorf("reader's record: %v", &r)
	}

	s2 := NewStore(nil, nil)
	must(t, s2.Load(be))
	if !s2.Enabled() || s2.Revision() != s.Revision() {
		t.Fatalf("reloaded: enabled %v revision %d, want true %d", s2.Enabled(), s2.Revision(), s.Revision())
	}
	if got := s2.UserList(); len(got) != 3 || got[0] != "alice" || got[1] != "cert" || got[2] != "root" {
		t.Errorf("users %v", got)
	}
	if err := s2.IsRangePermitted(&Info{Username: "alice", Revision: s2.Revision()}, []byte("k1"), nil); err != nil {
		t.Errorf("alice reading k1 after reload: %v", err)
	}
	if _, _, err := s2.PasswordHash("cert"); !errors.Is(err, ErrNoPasswordUser) {
		t.Errorf("password of a no-password user: %v", err)
	}
}

func TestPermissions(t *testing.T) {
	s, _, _ := newTestStore(t)
	must(t, s.RoleAdd("r"))
	grant := func(key, end string, typ authpb.Permission_Type) {
		t.Helper()
		var e []byte
		if end != "" {
			e = []byte(end)
		}
		must(t, s.RoleGrantPermission("r", &authpb.Permission{Key: []byte(key), RangeEnd: e, PermType: typ}))
	}
	grant("key", "", authpb.Permission_READWRITE) // one key
	grant("a", "c", authpb.Permission_READ)       // [a, c)
	grant("c", "e", authpb.Permission_READ)       // [c, e): adjacent
	grant("p/", "p0", authpb.Permission_WRITE)    // the prefix p/
	grant("z", "\x00", authpb.Permission_READ)    // everything from z on
	addUser(t, s, "root", "root")
	addUser(t, s, "u", "r")
	addUser(t, s, "nobody")
	must(t, s.AuthEnable())
	rev := s.Revision()
	u := &Info{Username: "u", Revision: rev}

	cases := []struct {
		key, end string
		write    bool
		ok       bool
	}{
		{"key", "", false, true},
		{"key", "", true, true},
		{"key2", "", false, false},
		{"key", "key\x00", false, true}, // the range of just "key"
		{"b", "", false, true},
		{"b", "", true, false},
		{"a", "e", false, true}, // covered by two adjacent ranges
		{"a", "e\x00", false, false},
		{"a", "f", false, false},
		{"p/x", "", true, true},
		{"p/", "p0", true, true},
		{"p/", "p1", true, false},
		{"p/x", "", false, false},
		{"z", "\x00", false, true},  // open ended, covered
		{"y", "\x00", false, false}, // open ended, not covered
		{"zzz", "", false, true},
		{"\x00", "\x00", false, false}, // every key
	}
	for _, c := range cases {
		var end []byte
		if c.end != "" {
			end = []byte(c.end)
		}
		var err error
		if c.write {
			err = s.IsDeleteRangePermitted(u, []byte(c.key), end)
		} else {
			err = s.IsRangePermitted(u, []byte(c.key), end)
		}
		if (err == nil) != c.ok {
			t.Errorf("%q..%q write=%v: %v, want permitted=%v", c.key, c.end, c.write, err, c.ok)
		} else if err != nil && !errors.Is(err, ErrPermissionDenied) {
			t.Errorf("%q..%q: %v, want permission denied", c.key, c.end, err)
		}
	}
	if err := s.IsRangePermitted(&Info{Username: "root", Revision: rev}, []byte("\x00"), []byte("\x00")); err != nil {
		t.Errorf("root reading everything: %v", err)
	}
	if err := s.IsPutPermitted(&Info{Username: "nobody", Revision: rev}, []byte("key")); !errors.Is(err, ErrPermissionDenied) {
		t.Errorf("a user without roles writing: %v", err)
	}
	if err := s.IsPutPermitted(&Info{}, []byte("key")); !errors.Is(err, ErrUserEmpty) {
		t.Errorf("no user: %v", err)
	}
	if err := s.IsAdminPermitted(u); !errors.Is(err, ErrPermissionDenied) {
		t.Errorf("u as admin: %v", err)
	}
	if err := s.IsAdminPermitted(&Info{Username: "ghost", Revision: rev}); !errors.Is(err, ErrUserNotFound) {
		t.Errorf("unknown user as admin: %v", err)
	}

	// A change bumps the revision: a check at the old one fails.
	must(t, s.RoleRevokePermission("r", []byte("a"), []byte("c")))
	if err := s.IsRangePermitted(u, []byte("key"), nil); !errors.Is(err, ErrAuthOldRevision) {
		t.Errorf("a check at the old revision: %v", err)
	}
	u.Revision = s.Revision()
	if err := s.IsRangePermitted(u, []byte("b"), nil); !errors.Is(err, ErrPermissionDenied) {
		t.Errorf("after the revoke: %v", err)
	}
	// Deleting the role revokes it from its users.
	must(t, s.RoleDelete("r"))
	if roles, _ := s.UserGet("u"); len(roles) != 0 {
		t.Errorf("u's roles after the role's delete: %v", roles)
	}
	// With auth off everything is permitted.
	s.AuthDisable()
	if err := s.IsPutPermitted(&Info{}, []byte("key")); err != nil {
		t.Errorf("auth off: %v", err)
	}
}

func TestGrantPermissionRules(t *testing.T) {
	s, _, _ := newTestStore(t)
	must(t, s.RoleAdd("r"))
	if err := s.RoleAdd("r"); !errors.Is(err, ErrRoleAlreadyExist) {
		t.Errorf("role add twice: %v", err)
	}
	if err := s.RoleAdd(""); !errors.Is(err, ErrRoleEmpty) {
		t.Errorf("empty role: %v", err)
	}
	if err := s.RoleGrantPermission("r", nil); !errors.Is(err, ErrPermissionNotGiven) {
		t.Errorf("nil perm: %v", err)
	}
	if err := s.RoleGrantPermission("r", &authpb.Permission{Key: []byte("b"), RangeEnd: []byte("a")}); !errors.Is(err, ErrInvalidAuthMgmt) {
		t.Errorf("backwards range: %v", err)
	}
	if err := s.RoleGrantPermission("x", &authpb.Permission{Key: []byte("b")}); !errors.Is(err, ErrRoleNotFound) {
		t.Errorf("unknown role: %v", err)
	}
	must(t, s.RoleGrantPermission("r", &authpb.Permission{Key: []byte("b"), PermType: authpb.Permission_READ}))
	must(t, s.RoleGrantPermission("r", &authpb.Permission{Key: []byte("a"), PermType: authpb.Permission_READ}))
	must(t, s.RoleGrantPermission("r", &authpb.Permission{Key: []byte("b"), PermType: authpb.Permission_WRITE}))
	perms, err := s.RoleGet("r")
	must(t, err)
	if len(perms) != 2 || string(perms[0].Key) != "a" || perms[1].PermType != authpb.Permission_WRITE {
		t.Errorf("perms %v: want a then b, b updated to WRITE", perms)
	}
	if err := s.RoleRevokePermission("r", []byte("c"), nil); !errors.Is(err, ErrPermissionNotGranted) {
		t.Errorf("revoking what was not granted: %v", err)
	}
	if err := s.UserAdd(&pb.AuthUserAddRequest{}); !errors.Is(err, ErrUserEmpty) {
		t.Errorf("empty user: %v", err)
	}
	addUser(t, s, "u")
	if err := s.UserAdd(&pb.AuthUserAddRequest{Name: "u"}); !errors.Is(err, ErrUserAlreadyExist) {
		t.Errorf("user twice: %v", err)
	}
	if err := s.UserGrantRole("u", "nope"); !errors.Is(err, ErrRoleNotFound) {
		t.Errorf("granting an unknown role: %v", err)
	}
	if err := s.UserRevokeRole("u", "r"); !errors.Is(err, ErrRoleNotGranted) {
		t.Errorf("revoking a role not granted: %v", err)
	}
	if err := s.UserDelete("ghost"); !errors.Is(err, ErrUserNotFound) {
		t.Errorf("deleting an unknown user: %v", err)
	}
	root, err := s.RoleGet("root")
	if !errors.Is(err, ErrRoleNotFound) || root != nil {
		t.Errorf("root role before it exists: %v %v", root, err)
	}
	must(t, s.RoleAdd("root"))
	root, _ = s.RoleGet("root")
	if len(root) != 1 || root[0].PermType != authpb.Permission_READWRITE || string(root[0].RangeEnd) != "\x00" {
		t.Errorf("root's perms %v", root)
	}
}

func TestAuthenticateAssignsSimpleTokens(t *testing.T) {
	s, _, sink := newTestStore(t)
	addUser(t, s, "root", "root")
	if _, err := s.Authenticate("root", "abc", 7); !errors.Is(err, ErrAuthNotEnabled) {
		t.Fatalf("authenticate with auth off: %v", err)
	}
	must(t, s.AuthEnable())
	resp, err := s.Authenticate("root", "abc", 7)
	must(t, err)
	if resp.Token != "abc.7" || len(sink.assigned) != 1 || sink.assigned[0] != "abc.7=root" {
		t.Errorf("token %q, sink %v", resp.Token, sink.assigned)
	}
	resp, err = s.Authenticate("root", "", 8) // JWT: the shell signs
	must(t, err)
	if resp.Token != "" || len(sink.assigned) != 1 {
		t.Errorf("jwt: token %q, sink %v", resp.Token, sink.assigned)
	}
	if _, err := s.Authenticate("ghost", "abc", 9); !errors.Is(err, ErrAuthFailed) {
		t.Errorf("unknown user: %v", err)
	}
}

// TestLoadDropsTokensASkippedLogWould: a snapshot's database replaces the
// member's state in Load, skipping the log's requests and the tokens they
// would have dropped. A member that caught up by snapshot over a password
// change, a user's deletion (and a new user of that name) or auth off and
// on again kept the old simple tokens, each use extending its life: a
// changed password did not end the sessions on that member. Load now
// drops every token when the auth revision moved; a reload of the same
// state drops none.
func TestLoadDropsTokensASkippedLogWould(t *testing.T) {
	setup := func(s *Store) {
		addUser(t, s, "root", "root")
		addUser(t, s, "alice")
		must(t, s.AuthEnable())
	}
	for _, tc := range []struct {
		name   string
		change func(s *Store)
	}{
		{"password changed", func(s *Store) {
			must(t, s.UserChangePassword(&pb.AuthUserChangePasswordRequest{Name: "alice", HashedPassword: hashed("new")}))
		}},
		{"user deleted and added again", func(s *Store) {
			must(t, s.UserDelete("alice"))
			must(t, s.UserAdd(&pb.AuthUserAddRequest{Name: "alice", HashedPassword: hashed("someone else")}))
		}},
		{"auth disabled and enabled again", func(s *Store) {
			s.AuthDisable()
			must(t, s.AuthEnable())
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, be, sink := newTestStore(t)
			setup(s)
			leader, lbe, _ := newTestStore(t)
			setup(leader)
			tc.change(leader)

			sink.invalidated = nil
			must(t, s.Load(be)) // a restart: the same state
			if len(sink.invalidated) != 0 {
				t.Errorf("reloading the same state dropped %v", sink.invalidated)
			}
			must(t, s.Load(lbe)) // the leader's snapshot
			if len(sink.invalidated) != 1 || sink.invalidated[0] != "*" {
				t.Errorf("installing a snapshot past %s dropped %v, want every token", tc.name, sink.invalidated)
			}
		})
	}
}
