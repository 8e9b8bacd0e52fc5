package api

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
)

// AuthBackend executes Auth requests (etcd's Auth service). Error contract
// as KVBackend: errors go through the one error table.
type AuthBackend interface {
	AuthEnable(context.Context, *pb.AuthEnableRequest) (*pb.AuthEnableResponse, error)
	AuthDisable(context.Context, *pb.AuthDisableRequest) (*pb.AuthDisableResponse, error)
	AuthStatus(context.Context, *pb.AuthStatusRequest) (*pb.AuthStatusResponse, error)
	Authenticate(context.Context, *pb.AuthenticateRequest) (*pb.AuthenticateResponse, error)
	UserAdd(context.Context, *pb.AuthUserAddRequest) (*pb.AuthUserAddResponse, error)
	UserGet(context.Context, *pb.AuthUserGetRequest) (*pb.AuthUserGetResponse, error)
	UserList(context.Context, *pb.AuthUserListRequest) (*pb.AuthUserListResponse, error)
	UserDelete(context.Context, *pb.AuthUserDeleteRequest) (*pb.AuthUserDeleteResponse, error)
	UserChangePassword(context.Context, *pb.AuthUserChangePasswordRequest) (*pb.AuthUserChangePasswordResponse, error)
	UserGrantRole(context.Context, *pb.AuthUserGrantRoleRequest) (*pb.AuthUserGrantRoleResponse, error)
	UserRevokeRole(context.Context, *pb.AuthUserRevokeRoleRequest) (*pb.AuthUserRevokeRoleResponse, error)
	RoleAdd(context.Context, *pb.AuthRoleAddRequest) (*pb.AuthRoleAddResponse, error)
	RoleGet(context.Context, *pb.AuthRoleGetRequest) (*pb.AuthRoleGetResponse, error)
	RoleList(context.Context, *pb.AuthRoleListRequest) (*pb.AuthRoleListResponse, error)
	RoleDelete(context.Context, *pb.AuthRoleDeleteRequest) (*pb.AuthRoleDeleteResponse, error)
	RoleGrantPermission(context.Context, *pb.AuthRoleGrantPermissionRequest) (*pb.AuthRoleGrantPermissionResponse, error)
	RoleRevokePermission(context.Context, *pb.AuthRoleRevokePermissionRequest) (*pb.AuthRoleRevokePermissionResponse, error)
}

// AuthGate answers the auth checks etcd makes in its API layer, from the
// request's context (its token or client certificate).
type AuthGate interface {
	// AuthAdmin allows root users only (anyone while auth is off).
	AuthAdmin(ctx context.Context) error
	// AuthRequireUser refuses a request without a user while auth is on.
	AuthRequireUser(ctx context.Context) error
	// AuthWatchPermitted checks the creation of a watcher.
	AuthWatchPermitted(ctx context.Context, key, rangeEnd []byte) error
}

// authCheck is what etcd's API layer asks of a call before serving it.
type authCheck int

const (
	authAdmin authCheck = iota + 1
	authUser
)

// authChecks are etcd's checks per gRPC method (v3rpc's AuthAdmin
// isPermitted and requireAuthInfo). KV, Lease keep-alives and time-to-live
// and the Auth service are checked further in, as etcd checks them.
var authChecks = map[string]authCheck{
	"/etcdserverpb.KV/Compact":             authAdmin,
	"/etcdserverpb.Maintenance/Defragment": authAdmin,
	"/etcdserverpb.Maintenance/Snapshot":   authAdmin,
	"/etcdserverpb.Maintenance/Hash":       authAdmin,
	"/etcdserverpb.Maintenance/HashKV":     authAdmin,
	"/etcdserverpb.Maintenance/MoveLeader": authAdmin,
	"/etcdserverpb.Maintenance/Downgrade":  authAdmin,
	"/etcdserverpb.Maintenance/Status":     authUser,
	"/etcdserverpb.Cluster/MemberAdd":      authAdmin,
	"/etcdserverpb.Cluster/MemberRemove":   authAdmin,
	"/etcdserverpb.Cluster/MemberUpdate":   authAdmin,
	"/etcdserverpb.Cluster/MemberPromote":  authAdmin,
	"/etcdserverpb.Cluster/MemberList":     authUser,
	"/etcdserverpb.Lease/LeaseGrant":       authUser,
	"/etcdserverpb.Lease/LeaseRevoke":      authUser,
	"/etcdserverpb.Lease/LeaseTimeToLive":  authUser,
	"/etcdserverpb.Maintenance/Alarm":      authUser, // and root for anything but GET
}

func runAuthCheck(g AuthGate, ctx context.Context, method string, req any) error {
	var err error
	switch authChecks[method] {
	case authAdmin:
		err = g.AuthAdmin(ctx)
	case authUser:
		if ar, ok := req.(*pb.AlarmRequest); ok && ar.GetAction() != pb.AlarmRequest_GET {
			err = g.AuthAdmin(ctx)
		} else {
			err = g.AuthRequireUser(ctx)
		}
	}
	return toGRPCError(err)
}

// authUnary runs etcd's API-layer auth checks on unary calls.
func authUnary(g AuthGate) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if err := runAuthCheck(g, ctx, info.FullMethod, req); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// authStream runs them on streams (Snapshot).
func authStream(g AuthGate) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if err := runAuthCheck(g, ss.Context(), info.FullMethod, nil); err != nil {
			return err
		}
		return handler(srv, ss)
	}
}

// NewAuthServer returns etcd's Auth service on top of b, for Config.Auth.
func NewAuthServer(b AuthBackend) pb.AuthServer { return &authServer{be: b} }

type authServer struct {
	pb.UnimplementedAuthServer
	be AuthBackend
}

func authResp[T any](resp T, err error) (T, error) {
	if err != nil {
		var zero T
		return zero, toGRPCError(err)
	}
	return resp, nil
}

func (s *authServer) AuthEnable(ctx context.Context, r *pb.AuthEnableRequest) (*pb.AuthEnableResponse, error) {
	return authResp(s.be.AuthEnable(ctx, r))
}

func (s *authServer) AuthDisable(ctx context.Context, r *pb.AuthDisableRequest) (*pb.AuthDisableResponse, error) {
	return authResp(s.be.AuthDisable(ctx, r))
}

func (s *authServer) AuthStatus(ctx context.Context, r *pb.AuthStatusRequest) (*pb.AuthStatusResponse, error) {
	return authResp(s.be.AuthStatus(ctx, r))
}

func (s *authServer) Authenticate(ctx context.Context, r *pb.AuthenticateRequest) (*pb.AuthenticateResponse, error) {
	return authResp(s.be.Authenticate(ctx, r))
}

func (s *authServer) UserAdd(ctx context.Context, r *pb.AuthUserAddRequest) (*pb.AuthUserAddResponse, error) {
	return authResp(s.be.UserAdd(ctx, r))
}

func (s *authServer) UserGet(ctx context.Context, r *pb.AuthUserGetRequest) (*pb.AuthUserGetResponse, error) {
	return authResp(s.be.UserGet(ctx, r))
}

func (s *authServer) UserList(ctx context.Context, r *pb.AuthUserListRequest) (*pb.AuthUserListResponse, error) {
	return authResp(s.be.UserList(ctx, r))
}

func (s *authServer) UserDelete(ctx context.Context, r *pb.AuthUserDeleteRequest) (*pb.AuthUserDeleteResponse, error) {
	return authResp(s.be.UserDelete(ctx, r))
}

func (s *authServer) UserChangePassword(ctx context.Context, r *pb.AuthUserChangePasswordRequest) (*pb.AuthUserChangePasswordResponse, error) {
	return authResp(s.be.UserChangePassword(ctx, r))
}

func (s *authServer) UserGrantRole(ctx context.Context, r *pb.AuthUserGrantRoleRequest) (*pb.AuthUserGrantRoleResponse, error) {
	return authResp(s.be.UserGrantRole(ctx, r))
}

func (s *authServer) UserRevokeRole(ctx context.Context, r *pb.AuthUserRevokeRoleRequest) (*pb.AuthUserRevokeRoleResponse, error) {
	return authResp(s.be.UserRevokeRole(ctx, r))
}

func (s *authServer) RoleAdd(ctx context.Context, r *pb.AuthRoleAddRequest) (*pb.AuthRoleAddResponse, error) {
	return authResp(s.be.RoleAdd(ctx, r))
}

func (s *authServer) RoleGet(ctx context.Context, r *pb.AuthRoleGetRequest) (*pb.AuthRoleGetResponse, error) {
	return authResp(s.be.RoleGet(ctx, r))
}

func (s *authServer) RoleList(ctx context.Context, r *pb.AuthRoleListRequest) (*pb.AuthRoleListResponse, error) {
	return authResp(s.be.RoleList(ctx, r))
}

func (s *authServer) RoleDelete(ctx context.Context, r *pb.AuthRoleDeleteRequest) (*pb.AuthRoleDeleteResponse, error) {
	return authResp(s.be.RoleDelete(ctx, r))
}

func (s *authServer) RoleGrantPermission(ctx context.Context, r *pb.AuthRoleGrantPermissionRequest) (*pb.AuthRoleGrantPermissionResponse, error) {
	return authResp(s.be.RoleGrantPermission(ctx, r))
}

func (s *authServer) RoleRevokePermission(ctx context.Context, r *pb.AuthRoleRevokePermissionRequest) (*pb.AuthRoleRevokePermissionResponse, error) {
	return authResp(s.be.RoleRevokePermission(ctx, r))
}
