package server

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/protobuf/proto"

	"github.com/cairnkv/cairn/auth"
	"github.com/cairnkv/cairn/lease"
)

// The Auth API of server.Server (api.AuthBackend) and the checks etcd
// makes before proposing. Every change goes through raft; passwords are
// hashed here, before proposing, so the log never holds one in clear text
// and applying stays cheap. Password checks run here too, against the
// member's applied state, and the login is then replicated.

// authStore is the member's auth state (safe from any goroutine).
func (s *Server) authStore() *auth.Store { return s.core.Auth() }

// AuthInfo is who makes the request of ctx, as etcd finds it: the token
// in the gRPC metadata ("token", or "authorization" from the JSON
// gateway), else with --client-cert-auth the verified client
// certificate's Common Name. nil while auth is off or without either; an
// unknown or expired token is ErrInvalidAuthToken.
func (s *Server) AuthInfo(ctx context.Context) (*auth.Info, error) {
	as := s.authStore()
	if !as.Enabled() {
		return nil, nil
	}
	md, ok := metadata.FromIncomingContext(ctx)
	if !ok {
		return nil, nil
	}
	ts, ok := md[rpctypes.TokenFieldNameGRPC]
	if !ok {
		ts, ok = md[rpctypes.TokenFieldNameSwagger]
	}
	if ok && len(ts) > 0 {
		token := strings.TrimPrefix(ts[0], "Bearer ")
		ai, ok := s.tokenInfo(ctx, token)
		if !ok {
			s.lg.Warn("invalid auth token", zap.String("token-fingerprint", redactToken(token)))
			return nil, auth.ErrInvalidAuthToken
		}
		return ai, nil
	}
	if !s.cfg.ClientCertAuth {
		return nil, nil
	}
	return s.authInfoFromTLS(ctx, md), nil
}

// tokenInfo reads a token. A simple token assigned at an index this
// member has not applied yet (the login went to another member) is read
// again once a linearizable read has caught this member up.
func (s *Server) tokenInfo(ctx context.Context, token string) (*auth.Info, bool) {
	if ai, ok := s.tokens.info(token, s.authStore().Revision()); ok {
		return ai, true
	}
	if !s.tokens.simple() {
		return nil, false
	}
	idx, ok := simpleTokenIndex(token)
	if !ok || idx <= s.applied.Load() {
		return nil, false
	}
	if err := s.LinearizableRead(ctx); err != nil {
		return nil, false
	}
	return s.tokens.info(token, s.authStore().Revision())
}

// authInfoFromTLS: the Common Name of the client's verified certificate,
// except on the JSON gateway's own connection (etcd's rule).
func (s *Server) authInfoFromTLS(ctx context.Context, md metadata.MD) *auth.Info {
	p, ok := peer.FromContext(ctx)
	if !ok || p == nil || p.AuthInfo == nil {
		return nil
	}
	tlsInfo, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return nil
	}
	for _, chain := range tlsInfo.State.VerifiedChains {
		if len(chain) == 0 {
			continue
		}
		if len(md["grpcgateway-accept"]) > 0 { // api.GatewayMetadataKey: on every gateway request
			return nil
		}
		return &auth.Info{Username: chain[0].Subject.CommonName, Revision: s.authStore().Revision()}
	}
	return nil
}

// CertAuthActive tells whether a verified client certificate's Common Name
// is the user of a request without a token: --client-cert-auth while auth
// is on (api.CertAuthGate, for etcd's refusal of such certificates on the
// JSON gateway).
func (s *Server) CertAuthActive() bool {
	return s.cfg.ClientCertAuth && s.authStore().Enabled()
}

// redactToken is a token's fingerprint for logs, as etcd's: the first 12
// hex digits of its SHA-256.
func redactToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])[:12]
}

// AuthAdmin allows root users only (etcd's isPermitted); anyone while auth
// is off.
func (s *Server) AuthAdmin(ctx context.Context) error {
	ai, err := s.AuthInfo(ctx)
	if err != nil {
		return err
	}
	return s.authStore().IsAdminPermitted(ai)
}

// AuthRequireUser refuses a request without a user while auth is on
// (etcd's requireAuthInfo).
func (s *Server) AuthRequireUser(ctx context.Context) error {
	if !s.authStore().Enabled() {
		return nil
	}
	ai, err := s.AuthInfo(ctx)
	if err != nil {
		return err
	}
	if ai == nil {
		return auth.ErrUserEmpty
	}
	return nil
}

// AuthWatchPermitted checks the creation of a watch on [key, rangeEnd).
func (s *Server) AuthWatchPermitted(ctx context.Context, key, rangeEnd []byte) error {
	ai, err := s.AuthInfo(ctx)
	if err != nil {
		return err
	}
	if ai == nil {
		ai = &auth.Info{}
	}
	return s.authStore().IsRangePermitted(ai, key, rangeEnd)
}

// doSerialize runs a read outside the log with etcd's checks: chk before,
// and a revision that moved while reading fails it.
func (s *Server) doSerialize(ctx context.Context, chk func(*auth.Info) error, get func() error) error {
	ai, err := s.AuthInfo(ctx)
	if err != nil {
		return err
	}
	if ai == nil {
		ai = &auth.Info{}
	}
	if err := chk(ai); err != nil {
		return err
	}
	if err := get(); err != nil {
		return err
	}
	if ai.Revision != 0 && ai.Revision != s.authStore().Revision() {
		return auth.ErrAuthOldRevision
	}
	return nil
}

// withAuthHeader stamps r with the user and revision of ctx, as etcd's
// processInternalRaftRequestOnce does, for the checks at apply.
func (s *Server) withAuthHeader(ctx context.Context, r *pb.InternalRaftRequest) error {
	if r.GetAuthenticate() != nil || r.GetHeader() != nil {
		return nil
	}
	ai, err := s.AuthInfo(ctx)
	if err != nil {
		return err
	}
	if ai != nil {
		r.Header = &pb.RequestHeader{Username: ai.Username, AuthRevision: ai.Revision}
	}
	return nil
}

// forwardContext carries the caller's token to the leader when a request
// is forwarded to it.
func forwardContext(ctx context.Context) context.Context {
	md, ok := metadata.FromIncomingContext(ctx)
	if !ok {
		return ctx
	}
	out := metadata.MD{}
	for _, k := range []string{rpctypes.TokenFieldNameGRPC, rpctypes.TokenFieldNameSwagger} {
		if v := md[k]; len(v) > 0 {
			out[rpctypes.TokenFieldNameGRPC] = v[:1]
			break
		}
	}
	if len(out) == 0 {
		return ctx
	}
	return metadata.NewOutgoingContext(ctx, out)
}

func (s *Server) authPropose(ctx context.Context, r *pb.InternalRaftRequest) (proto.Message, error) {
	res, err := s.propose(ctx, r)
	if err != nil {
		return nil, err
	}
	return res.Resp, nil
}

// Authenticate checks a password and replicates the login, as etcd does;
// a login checked at a revision that changed meanwhile is done again.
func (s *Server) Authenticate(ctx context.Context, r *pb.AuthenticateRequest) (*pb.AuthenticateResponse, error) {
	if err := s.LinearizableRead(ctx); err != nil {
		return nil, err
	}
	as := s.authStore()
	for {
		hash, rev, err := as.PasswordHash(r.GetName())
		if err == nil && bcrypt.CompareHashAndPassword(hash, []byte(r.GetPassword())) != nil {
			err = auth.ErrAuthFailed
		}
		if err != nil {
			if err != auth.ErrAuthNotEnabled {
				s.lg.Warn("invalid authentication was requested", zap.String("user", r.GetName()), zap.Error(err))
			}
			return nil, err
		}
		prefix, err := s.tokens.prefix()
		if err != nil {
			return nil, err
		}
		resp, err := s.authPropose(ctx, &pb.InternalRaftRequest{Authenticate: &pb.InternalAuthenticateRequest{Name: r.GetName(), SimpleToken: prefix}})
		if err != nil {
			return nil, err
		}
		if rev != as.Revision() {
			s.lg.Info("revision when password checked became stale; retrying")
			continue
		}
		ar := resp.(*pb.AuthenticateResponse)
		if !s.tokens.simple() {
			if ar.Token, err = s.tokens.sign(r.GetName(), rev); err != nil {
				return nil, err
			}
		}
		return ar, nil
	}
}

// hashPassword is the base64 bcrypt hash that goes into the log.
func (s *Server) hashPassword(pw string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), s.bcryptCost())
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(h), nil
}

func (s *Server) bcryptCost() int {
	c := s.cfg.BcryptCost
	if c < bcrypt.MinCost || c > bcrypt.MaxCost {
		return bcrypt.DefaultCost
	}
	return c
}

// AuthEnable turns auth on (root user with the root role needed).
func (s *Server) AuthEnable(ctx context.Context, r *pb.AuthEnableRequest) (*pb.AuthEnableResponse, error) {
	resp, err := s.authPropose(ctx, &pb.InternalRaftRequest{AuthEnable: &pb.AuthEnableRequest{}})
	if err != nil {
		return nil, err
	}
	return resp.(*pb.AuthEnableResponse), nil
}

// AuthDisable turns auth off.
func (s *Server) AuthDisable(ctx context.Context, r *pb.AuthDisableRequest) (*pb.AuthDisableResponse, error) {
	resp, err := s.authPropose(ctx, &pb.InternalRaftRequest{AuthDisable: &pb.AuthDisableRequest{}})
	if err != nil {
		return nil, err
	}
	return resp.(*pb.AuthDisableResponse), nil
}

// AuthStatus reports whether auth is on and the auth revision.
func (s *Server) AuthStatus(ctx context.Context, r *pb.AuthStatusRequest) (*pb.AuthStatusResponse, error) {
	resp, err := s.authPropose(ctx, &pb.InternalRaftRequest{AuthStatus: &pb.AuthStatusRequest{}})
	if err != nil {
		return nil, err
	}
	return resp.(*pb.AuthStatusResponse), nil
}

// UserAdd adds a user; its password is hashed before proposing.
func (s *Server) UserAdd(ctx context.Context, r *pb.AuthUserAddRequest) (*pb.AuthUserAddResponse, error) {
	req := &pb.AuthUserAddRequest{Name: r.GetName(), Options: r.GetOptions()}
	if !r.GetOptions().GetNoPassword() {
		h, err := s.hashPassword(r.GetPassword())
		if err != nil {
			return nil, err
		}
		req.HashedPassword = h
	}
	resp, err := s.authPropose(ctx, &pb.InternalRaftRequest{AuthUserAdd: req})
	if err != nil {
		return nil, err
	}
	return resp.(*pb.AuthUserAddResponse), nil
}

// UserDelete deletes a user.
func (s *Server) UserDelete(ctx context.Context, r *pb.AuthUserDeleteRequest) (*pb.AuthUserDeleteResponse, error) {
	resp, err := s.authPropose(ctx, &pb.InternalRaftRequest{AuthUserDelete: r})
	if err != nil {
		return nil, err
	}
	return resp.(*pb.AuthUserDeleteResponse), nil
}

// UserGet returns a user's roles.
func (s *Server) UserGet(ctx context.Context, r *pb.AuthUserGetRequest) (*pb.AuthUserGetResponse, error) {
	resp, err := s.authPropose(ctx, &pb.InternalRaftRequest{AuthUserGet: r})
	if err != nil {
		return nil, err
	}
	return resp.(*pb.AuthUserGetResponse), nil
}

// UserList lists the users.
func (s *Server) UserList(ctx context.Context, r *pb.AuthUserListRequest) (*pb.AuthUserListResponse, error) {
	resp, err := s.authPropose(ctx, &pb.InternalRaftRequest{AuthUserList: r})
	if err != nil {
		return nil, err
	}
	return resp.(*pb.AuthUserListResponse), nil
}

// UserChangePassword sets a user's password, hashed before proposing. As
// etcd, a request without a password keeps its hashed_password (base64
// bcrypt, as given; none leaves the user no password to log in with): the
// empty password is never hashed.
func (s *Server) UserChangePassword(ctx context.Context, r *pb.AuthUserChangePasswordRequest) (*pb.AuthUserChangePasswordResponse, error) {
	req := &pb.AuthUserChangePasswordRequest{Name: r.GetName(), HashedPassword: r.GetHashedPassword()}
	if r.GetPassword() != "" {
		h, err := s.hashPassword(r.GetPassword())
		if err != nil {
			return nil, err
		}
		req.HashedPassword = h
	}
	resp, err := s.authPropose(ctx, &pb.InternalRaftRequest{AuthUserChangePassword: req})
	if err != nil {
		return nil, err
	}
	return resp.(*pb.AuthUserChangePasswordResponse), nil
}

// UserGrantRole grants a role to a user.
func (s *Server) UserGrantRole(ctx context.Context, r *pb.AuthUserGrantRoleRequest) (*pb.AuthUserGrantRoleResponse, error) {
	resp, err := s.authPropose(ctx, &pb.InternalRaftRequest{AuthUserGrantRole: r})
	if err != nil {
		return nil, err
	}
	return resp.(*pb.AuthUserGrantRoleResponse), nil
}

// UserRevokeRole revokes a role from a user.
func (s *Server) UserRevokeRole(ctx context.Context, r *pb.AuthUserRevokeRoleRequest) (*pb.AuthUserRevokeRoleResponse, error) {
	resp, err := s.authPropose(ctx, &pb.InternalRaftRequest{AuthUserRevokeRole: r})
	if err != nil {
		return nil, err
	}
	return resp.(*pb.AuthUserRevokeRoleResponse), nil
}

// RoleAdd adds a role.
func (s *Server) RoleAdd(ctx context.Context, r *pb.AuthRoleAddRequest) (*pb.AuthRoleAddResponse, error) {
	resp, err := s.authPropose(ctx, &pb.InternalRaftRequest{AuthRoleAdd: r})
	if err != nil {
		return nil, err
	}
	return resp.(*pb.AuthRoleAddResponse), nil
}

// RoleGet returns a role's permissions.
func (s *Server) RoleGet(ctx context.Context, r *pb.AuthRoleGetRequest) (*pb.AuthRoleGetResponse, error) {
	resp, err := s.authPropose(ctx, &pb.InternalRaftRequest{AuthRoleGet: r})
	if err != nil {
		return nil, err
	}
	return resp.(*pb.AuthRoleGetResponse), nil
}

// RoleList lists the roles.
func (s *Server) RoleList(ctx context.Context, r *pb.AuthRoleListRequest) (*pb.AuthRoleListResponse, error) {
	resp, err := s.authPropose(ctx, &pb.InternalRaftRequest{AuthRoleList: r})
	if err != nil {
		return nil, err
	}
	return resp.(*pb.AuthRoleListResponse), nil
}

// RoleDelete deletes a role.
func (s *Server) RoleDelete(ctx context.Context, r *pb.AuthRoleDeleteRequest) (*pb.AuthRoleDeleteResponse, error) {
	resp, err := s.authPropose(ctx, &pb.InternalRaftRequest{AuthRoleDelete: r})
	if err != nil {
		return nil, err
	}
	return resp.(*pb.AuthRoleDeleteResponse), nil
}

// RoleGrantPermission grants a permission to a role.
func (s *Server) RoleGrantPermission(ctx context.Context, r *pb.AuthRoleGrantPermissionRequest) (*pb.AuthRoleGrantPermissionResponse, error) {
	resp, err := s.authPropose(ctx, &pb.InternalRaftRequest{AuthRoleGrantPermission: r})
	if err != nil {
		return nil, err
	}
	return resp.(*pb.AuthRoleGrantPermissionResponse), nil
}

// RoleRevokePermission revokes a permission from a role.
func (s *Server) RoleRevokePermission(ctx context.Context, r *pb.AuthRoleRevokePermissionRequest) (*pb.AuthRoleRevokePermissionResponse, error) {
	resp, err := s.authPropose(ctx, &pb.InternalRaftRequest{AuthRoleRevokePermission: r})
	if err != nil {
		return nil, err
	}
	return resp.(*pb.AuthRoleRevokePermissionResponse), nil
}

// leaseLeasesAuth: listing leases needs read permission on every key
// attached to any of them (root: always), as etcd's checkLeaseLeases.
func (s *Server) leaseLeasesAuth(ctx context.Context, ls []*lease.Lease) error {
	as := s.authStore()
	if !as.Enabled() {
		return nil
	}
	rev := as.Revision()
	ai, err := s.AuthInfo(ctx)
	if err != nil {
		return err
	}
	if ai == nil {
		return auth.ErrUserEmpty
	}
	var perr error
	if err := s.onLoop(ctx, func() {
		for _, l := range ls {
			if perr = s.core.LeaseKeysPermitted(ai, l.ID, false); perr != nil {
				return
			}
		}
	}); err != nil {
		return err
	}
	if perr != nil {
		return perr
	}
	if rev != as.Revision() {
		return auth.ErrAuthOldRevision
	}
	return nil
}

// leaseAuth checks a lease request of ctx's user against the lease's keys
// (etcd's checkLeaseRenew with write, checkLeaseTimeToLive without).
func (s *Server) leaseAuth(ctx context.Context, id int64, write bool) error {
	as := s.authStore()
	if !as.Enabled() {
		return nil
	}
	rev := as.Revision()
	ai, err := s.AuthInfo(ctx)
	if err != nil {
		return err
	}
	if ai == nil {
		return auth.ErrUserEmpty
	}
	var perr error
	if err := s.onLoop(ctx, func() { perr = s.core.LeaseKeysPermitted(ai, id, write) }); err != nil {
		return err
	}
	if perr != nil {
		return perr
	}
	if write && rev != as.Revision() {
		return auth.ErrAuthOldRevision
	}
	return nil
}
