package auth

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"sort"
	"sync"

	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

// etcd 3.7's schema (server/storage/schema/bucket.go).
var (
	BucketAuth       = []byte("auth")
	BucketUsers      = []byte("authUsers")
	BucketRoles      = []byte("authRoles")
	KeyAuthEnabled   = []byte("authEnabled")
	KeyAuthRevision  = []byte("authRevision")
	valueAuthEnabled = []byte{1}
	valueAuthOff     = []byte{0}
)

const (
	// RootUser and RootRole are etcd's administrator user and role.
	RootUser = "root"
	RootRole = "root"
)

// rootPerm is what RoleGet shows for the root role: every key, read and
// write, as etcd shows it.
func rootPerm() *authpb.Permission {
	return &authpb.Permission{PermType: authpb.Permission_READWRITE, Key: []byte{}, RangeEnd: []byte{0}}
}

// Backend persists the auth state: the MVCC store's auxiliary buckets,
// written in the open batch with the consistent index.
type Backend interface {
	AuxPut(bucket, key, value []byte)
	AuxDelete(bucket, key []byte)
	AuxGet(bucket, key []byte) ([]byte, bool)
	AuxForEach(bucket []byte, fn func(k, v []byte) error) error
}

// TokenSink learns, on every member, the simple tokens assigned at apply
// and what invalidates them. The shell keeps the tokens with their TTL on
// its own clock. Calls come from the core's goroutine and must not block.
type TokenSink interface {
	// Assign records a simple token of user.
	Assign(token, user string)
	// InvalidateUser drops user's tokens (deleted, or a new password).
	InvalidateUser(user string)
	// InvalidateAll drops every token (auth disabled).
	InvalidateAll()
}

// Info is who a request is made by and the auth revision it was checked
// at; the zero value is no user (etcd's AuthInfo).
type Info struct {
	Username string
	Revision uint64
}

var marshalOpts = proto.MarshalOptions{Deterministic: true}

// Store is the auth state. See the package comment for who may call what.
type Store struct {
	mu       sync.RWMutex
	be       Backend
	lg       *zap.Logger
	sink     TokenSink
	enabled  bool
	revision uint64
	users    map[string]*authpb.User
	roles    map[string]*authpb.Role
	perms    map[string]*userPerms // every user's merged permissions
}

// NewStore returns an empty store; Load fills it. sink may be nil.
func NewStore(lg *zap.Logger, sink TokenSink) *Store {
	if lg == nil {
		lg = zap.NewNop()
	}
	return &Store{lg: lg, sink: sink, users: map[string]*authpb.User{}, roles: map[string]*authpb.Role{}, perms: map[string]*userPerms{}}
}

// Load (re)reads the state from be, as at start or after a snapshot's
// database replaced the member's. As etcd does at start, an auth revision
// of 0 becomes 1 (written in be's open batch).
func (s *Store) Load(be Backend) error {
	users := map[string]*authpb.User{}
	roles := map[string]*authpb.Role{}
	err := be.AuxForEach(BucketUsers, func(k, v []byte) error {
		u := &authpb.User{}
		if err := proto.Unmarshal(v, u); err != nil {
			return fmt.Errorf("auth: bad user record %q: %w", k, err)
		}
		users[string(u.Name)] = u
		return nil
	})
	if err != nil {
		return err
	}
	err = be.AuxForEach(BucketRoles, func(k, v []byte) error {
		r := &authpb.Role{}
		if err := proto.Unmarshal(v, r); err != nil {
			return fmt.Errorf("auth: bad role record %q: %w", k, err)
		}
		roles[string(r.Name)] = r
		return nil
	})
	if err != nil {
		return err
	}
	enabled := false
	if v, ok := be.AuxGet(BucketAuth, KeyAuthEnabled); ok && bytes.Equal(v, valueAuthEnabled) {
		enabled = true
	}
	var rev uint64
	if v, ok := be.AuxGet(BucketAuth, KeyAuthRevision); ok && len(v) == 8 {
		rev = binary.BigEndian.Uint64(v)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	reload, oldRev := s.be != nil, s.revision
	s.be, s.users, s.roles, s.enabled, s.revision = be, users, roles, enabled, rev
	if s.revision == 0 {
		s.commitRevision()
	}
	s.refreshPerms()
	// A snapshot skipped the log's changes, and the tokens they dropped
	// (a new password, a deleted user, auth off): when the revision moved,
	// every token goes, and clients log in again.
	if reload && s.revision != oldRev && s.sink != nil {
		s.sink.InvalidateAll()
	}
	return nil
}

// Enabled tells whether auth is on.
func (s *Store) Enabled() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.enabled
}

// Revision is the auth revision: it grows with every change of users,
// roles or permissions, and when auth is disabled.
func (s *Store) Revision() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.revision
}

// commitRevision bumps the revision and writes it (s.mu held).
func (s *Store) commitRevision() {
	s.revision++
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, s.revision)
	s.be.AuxPut(BucketAuth, KeyAuthRevision, b)
}

func (s *Store) putUser(u *authpb.User) {
	b, err := marshalOpts.Marshal(u)
	if err != nil {
		panic(fmt.Sprintf("auth: encoding user: %v", err)) // plain fields always encode
	}
	s.users[string(u.Name)] = u
	s.be.AuxPut(BucketUsers, u.Name, b)
}

func (s *Store) putRole(r *authpb.Role) {
	b, err := marshalOpts.Marshal(r)
	if err != nil {
		panic(fmt.Sprintf("auth: encoding role: %v", err))
	}
	s.roles[string(r.Name)] = r
	s.be.AuxPut(BucketRoles, r.Name, b)
}

func hasRootRole(u *authpb.User) bool {
	i := sort.SearchStrings(u.Roles, RootRole)
	return i < len(u.Roles) && u.Roles[i] == RootRole
}

// AuthEnable turns auth on; the user root must exist and have the role
// root. Enabling it again is a no-op.
func (s *Store) AuthEnable() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.enabled {
		s.lg.Info("authentication is already enabled; ignored auth enable request")
		return nil
	}
	u := s.users[RootUser]
	if u == nil {
		return ErrRootUserNotExist
	}
	if !hasRootRole(u) {
		return ErrRootRoleNotExist
	}
	s.be.AuxPut(BucketAuth, KeyAuthEnabled, valueAuthEnabled)
	s.enabled = true
	s.lg.Info("enabled authentication")
	return nil
}

// AuthDisable turns auth off and bumps the revision; every token is
// dropped.
func (s *Store) AuthDisable() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.enabled {
		return
	}
	s.be.AuxPut(BucketAuth, KeyAuthEnabled, valueAuthOff)
	s.commitRevision()
	s.enabled = false
	if s.sink != nil {
		s.sink.InvalidateAll()
	}
	s.lg.Info("disabled authentication")
}

// Authenticate is the replicated half of a login: the shell has checked
// the password against revision checkedRev. With a simple-token prefix the
// token is prefix.index, known to every member through the sink; with
// none (JWT) the shell makes the token.
func (s *Store) Authenticate(name, simpleTokenPrefix string, index uint64) (*pb.AuthenticateResponse, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if !s.enabled {
		return nil, ErrAuthNotEnabled
	}
	u := s.users[name]
	if u == nil || u.Options.GetNoPassword() {
		return nil, ErrAuthFailed
	}
	resp := &pb.AuthenticateResponse{}
	if simpleTokenPrefix != "" {
		resp.Token = fmt.Sprintf("%s.%d", simpleTokenPrefix, index)
		if s.sink != nil {
			s.sink.Assign(resp.Token, name)
		}
	}
	return resp, nil
}

// PasswordHash returns user name's bcrypt hash and the revision it was
// read at, for the shell's password check (etcd's CheckPassword without
// the bcrypt, which the core does not do).
func (s *Store) PasswordHash(name string) ([]byte, uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if !s.enabled {
		return nil, 0, ErrAuthNotEnabled
	}
	u := s.users[name]
	if u == nil {
		return nil, 0, ErrAuthFailed
	}
	if u.Options.GetNoPassword() {
		return nil, 0, ErrNoPasswordUser
	}
	return append([]byte(nil), u.Password...), s.revision, nil
}

// password is the stored form of a request's password: the shell hashed
// it before proposing (hashed is base64 bcrypt, as etcd 3.5+ proposes). A
// clear-text password in the log (etcd before 3.5) cannot be hashed here
// deterministically; such a user gets no usable password.
func (s *Store) password(name, clear, hashed string) ([]byte, error) {
	if clear != "" && hashed == "" {
		s.lg.Warn("a clear-text password in the log was not stored; set it again", zap.String("user-name", name))
		return nil, nil
	}
	b, err := base64.StdEncoding.DecodeString(hashed)
	if err != nil {
		return nil, ErrNoPasswordUser
	}
	return b, nil
}

// UserAdd adds a user.
func (s *Store) UserAdd(r *pb.AuthUserAddRequest) error {
	if r.GetName() == "" {
		return ErrUserEmpty
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.users[r.GetName()] != nil {
		return ErrUserAlreadyExist
	}
	opts := r.GetOptions()
	if opts == nil {
		opts = &authpb.UserAddOptions{}
	}
	var pw []byte
	if !opts.GetNoPassword() {
		var err error
		if pw, err = s.password(r.GetName(), r.GetPassword(), r.GetHashedPassword()); err != nil {
			return err
		}
	}
	s.putUser(&authpb.User{Name: []byte(r.GetName()), Password: pw, Options: proto.Clone(opts).(*authpb.UserAddOptions)})
	s.commitRevision()
	s.refreshPerms()
	s.lg.Info("added a user", zap.String("user-name", r.GetName()))
	return nil
}

// UserDelete deletes a user; root cannot be deleted while auth is on.
func (s *Store) UserDelete(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.enabled && name == RootUser {
		return ErrInvalidAuthMgmt
	}
	if s.users[name] == nil {
		return ErrUserNotFound
	}
	delete(s.users, name)
	s.be.AuxDelete(BucketUsers, []byte(name))
	s.commitRevision()
	s.refreshPerms()
	if s.sink != nil {
		s.sink.InvalidateUser(name)
	}
	s.lg.Info("deleted a user", zap.String("user-name", name))
	return nil
}

// UserChangePassword sets a user's password (a no-password user keeps
// none) and drops the user's tokens.
func (s *Store) UserChangePassword(r *pb.AuthUserChangePasswordRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[r.GetName()]
	if u == nil {
		return ErrUserNotFound
	}
	var pw []byte
	if !u.Options.GetNoPassword() {
		var err error
		if pw, err = s.password(r.GetName(), r.GetPassword(), r.GetHashedPassword()); err != nil {
			return err
		}
	}
	s.putUser(&authpb.User{Name: u.Name, Roles: u.Roles, Password: pw, Options: u.Options})
	s.commitRevision()
	s.refreshPerms()
	if s.sink != nil {
		s.sink.InvalidateUser(r.GetName())
	}
	s.lg.Info("changed a password of a user", zap.String("user-name", r.GetName()))
	return nil
}

// UserGrantRole grants a role (root need not exist as a role).
func (s *Store) UserGrantRole(user, role string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[user]
	if u == nil {
		return ErrUserNotFound
	}
	if role != RootRole && s.roles[role] == nil {
		return ErrRoleNotFound
	}
	i := sort.SearchStrings(u.Roles, role)
	if i < len(u.Roles) && u.Roles[i] == role {
		s.lg.Warn("ignored grant role request to a user", zap.String("user-name", user), zap.String("duplicate-role-name", role))
		return nil
	}
	nu := proto.Clone(u).(*authpb.User)
	nu.Roles = append(nu.Roles, role)
	sort.Strings(nu.Roles)
	s.putUser(nu)
	s.commitRevision()
	s.refreshPerms()
	s.lg.Info("granted a role to a user", zap.String("user-name", user), zap.String("added-role-name", role))
	return nil
}

// UserRevokeRole revokes a role; root keeps root while auth is on.
func (s *Store) UserRevokeRole(user, role string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.enabled && user == RootUser && role == RootRole {
		return ErrInvalidAuthMgmt
	}
	u := s.users[user]
	if u == nil {
		return ErrUserNotFound
	}
	nu := &authpb.User{Name: u.Name, Password: u.Password, Options: u.Options}
	for _, r := range u.Roles {
		if r != role {
			nu.Roles = append(nu.Roles, r)
		}
	}
	if len(nu.Roles) == len(u.Roles) {
		return ErrRoleNotGranted
	}
	s.putUser(nu)
	s.commitRevision()
	s.refreshPerms()
	s.lg.Info("revoked a role from a user", zap.String("user-name", user), zap.String("revoked-role-name", role))
	return nil
}

// UserGet returns a user's roles.
func (s *Store) UserGet(name string) ([]string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u := s.users[name]
	if u == nil {
		return nil, ErrUserNotFound
	}
	return append([]string(nil), u.Roles...), nil
}

// UserList lists the users in name order (bbolt's key order, as etcd).
func (s *Store) UserList() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.users))
	for n := range s.users {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// RoleAdd adds a role.
func (s *Store) RoleAdd(name string) error {
	if name == "" {
		return ErrRoleEmpty
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.roles[name] != nil {
		return ErrRoleAlreadyExist
	}
	s.putRole(&authpb.Role{Name: []byte(name)})
	s.commitRevision()
	s.lg.Info("created a role", zap.String("role-name", name))
	return nil
}

// RoleDelete deletes a role and revokes it from every user; root stays
// while auth is on.
func (s *Store) RoleDelete(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.enabled && name == RootRole {
		return ErrInvalidAuthMgmt
	}
	if s.roles[name] == nil {
		return ErrRoleNotFound
	}
	delete(s.roles, name)
	s.be.AuxDelete(BucketRoles, []byte(name))
	for _, n := range s.sortedUsers() {
		u := s.users[n]
		nu := &authpb.User{Name: u.Name, Password: u.Password, Options: u.Options}
		for _, r := range u.Roles {
			if r != name {
				nu.Roles = append(nu.Roles, r)
			}
		}
		if len(nu.Roles) != len(u.Roles) {
			s.putUser(nu)
		}
	}
	s.commitRevision()
	s.refreshPerms()
	s.lg.Info("deleted a role", zap.String("role-name", name))
	return nil
}

func (s *Store) sortedUsers() []string {
	out := make([]string, 0, len(s.users))
	for n := range s.users {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// RoleGet returns a role's permissions (root: every key, read and write).
func (s *Store) RoleGet(name string) ([]*authpb.Permission, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r := s.roles[name]
	if r == nil {
		return nil, ErrRoleNotFound
	}
	if name == RootRole {
		return []*authpb.Permission{rootPerm()}, nil
	}
	out := make([]*authpb.Permission, len(r.KeyPermission))
	for i, p := range r.KeyPermission {
		out[i] = proto.Clone(p).(*authpb.Permission)
	}
	return out, nil
}

// RoleList lists the roles in name order.
func (s *Store) RoleList() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.roles))
	for n := range s.roles {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// RoleGrantPermission adds a permission to a role, or changes the type of
// one on the same range.
func (s *Store) RoleGrantPermission(name string, perm *authpb.Permission) error {
	if perm == nil {
		return ErrPermissionNotGiven
	}
	if !validPermissionRange(perm.Key, perm.RangeEnd) {
		return ErrInvalidAuthMgmt
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.roles[name]
	if r == nil {
		return ErrRoleNotFound
	}
	nr := proto.Clone(r).(*authpb.Role)
	i := sort.Search(len(nr.KeyPermission), func(i int) bool { return bytes.Compare(nr.KeyPermission[i].Key, perm.Key) >= 0 })
	if i < len(nr.KeyPermission) && bytes.Equal(nr.KeyPermission[i].Key, perm.Key) && bytes.Equal(nr.KeyPermission[i].RangeEnd, perm.RangeEnd) {
		nr.KeyPermission[i].PermType = perm.PermType
	} else {
		nr.KeyPermission = append(nr.KeyPermission, &authpb.Permission{Key: perm.Key, RangeEnd: perm.RangeEnd, PermType: perm.PermType})
		sort.SliceStable(nr.KeyPermission, func(i, j int) bool {
			return bytes.Compare(nr.KeyPermission[i].Key, nr.KeyPermission[j].Key) < 0
		})
	}
	s.putRole(nr)
	s.commitRevision()
	s.refreshPerms()
	s.lg.Info("granted/updated a permission to a role", zap.String("role-name", name), zap.String("permission", perm.PermType.String()))
	return nil
}

// RoleRevokePermission removes the permission on exactly [key, rangeEnd).
func (s *Store) RoleRevokePermission(name string, key, rangeEnd []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.roles[name]
	if r == nil {
		return ErrRoleNotFound
	}
	nr := &authpb.Role{Name: r.Name}
	for _, p := range r.KeyPermission {
		if !bytes.Equal(p.Key, key) || !bytes.Equal(p.RangeEnd, rangeEnd) {
			nr.KeyPermission = append(nr.KeyPermission, p)
		}
	}
	if len(nr.KeyPermission) == len(r.KeyPermission) {
		return ErrPermissionNotGranted
	}
	s.putRole(nr)
	s.commitRevision()
	s.refreshPerms()
	s.lg.Info("revoked a permission on range", zap.String("role-name", name))
	return nil
}

// HasRole tells whether user has role.
func (s *Store) HasRole(user, role string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u := s.users[user]
	if u == nil {
		return false
	}
	for _, r := range u.Roles {
		if r == role {
			return true
		}
	}
	return false
}

// UserExists tells whether a user of that name exists.
func (s *Store) UserExists(name string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.users[name] != nil
}

// IsAdminPermitted allows a user with the role root, or anyone while auth
// is off. It does not look at the revision, as etcd's does not.
func (s *Store) IsAdminPermitted(ai *Info) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if !s.enabled {
		return nil
	}
	if ai == nil || ai.Username == "" {
		return ErrUserEmpty
	}
	u := s.users[ai.Username]
	if u == nil {
		return ErrUserNotFound
	}
	if !hasRootRole(u) {
		return ErrPermissionDenied
	}
	return nil
}

// IsRangePermitted checks a read of [key, rangeEnd) (a single key when
// rangeEnd is empty).
func (s *Store) IsRangePermitted(ai *Info, key, rangeEnd []byte) error {
	return s.isOpPermitted(ai, key, rangeEnd, authpb.Permission_READ)
}

// IsPutPermitted checks a write of key.
func (s *Store) IsPutPermitted(ai *Info, key []byte) error {
	return s.isOpPermitted(ai, key, nil, authpb.Permission_WRITE)
}

// IsDeleteRangePermitted checks a delete of [key, rangeEnd).
func (s *Store) IsDeleteRangePermitted(ai *Info, key, rangeEnd []byte) error {
	return s.isOpPermitted(ai, key, rangeEnd, authpb.Permission_WRITE)
}

func (s *Store) isOpPermitted(ai *Info, key, rangeEnd []byte, typ authpb.Permission_Type) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if !s.enabled {
		return nil
	}
	if ai == nil || ai.Revision == 0 {
		return ErrUserEmpty
	}
	if ai.Revision < s.revision {
		s.lg.Warn("request auth revision is less than current node auth revision",
			zap.Uint64("current node auth revision", s.revision), zap.Uint64("request auth revision", ai.Revision))
		return ErrAuthOldRevision
	}
	u := s.users[ai.Username]
	if u == nil {
		return ErrPermissionDenied
	}
	if hasRootRole(u) {
		return nil
	}
	p := s.perms[ai.Username]
	if p != nil && p.permitted(key, rangeEnd, typ) {
		return nil
	}
	return ErrPermissionDenied
}

// refreshPerms rebuilds every user's merged permissions (s.mu held).
func (s *Store) refreshPerms() {
	s.perms = make(map[string]*userPerms, len(s.users))
	for n, u := range s.users {
		p := &userPerms{}
		for _, rn := range u.Roles {
			r := s.roles[rn]
			if r == nil {
				continue
			}
			for _, kp := range r.KeyPermission {
				p.add(kp)
			}
		}
		p.sort()
		s.perms[n] = p
	}
}
