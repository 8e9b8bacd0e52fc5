package node

import (
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"

	"github.com/cairnkv/cairn/auth"
)

// Auth is replicated state, as in etcd: users, roles, permissions, whether
// auth is on and the auth revision change only through the log's Auth
// requests, and live in the store's auth buckets (package auth). Requests
// carry the user and auth revision they were checked at in their header;
// applying them checks again, as etcd's auth applier does, so a request
// checked before a change of permissions is refused on every member alike
// (ErrAuthOldRevision).

// loadAuth (re)reads the auth state from the store.
func (c *Core) loadAuth() error {
	if c.auth == nil {
		c.auth = auth.NewStore(c.lg.Named("auth"), c.cfg.AuthTokens)
	}
	return c.auth.Load(c.kv)
}

// Auth is the member's auth store: the shell checks permissions and
// passwords against it before proposing. Safe from any goroutine.
func (c *Core) Auth() *auth.Store { return c.auth }

// rootHeader is the header of requests the core proposes itself (lease
// revokes on expiry): etcd makes them with a root token.
func rootHeader() *pb.RequestHeader { return &pb.RequestHeader{Username: auth.RootUser} }

func isAuthRequest(r *pb.InternalRaftRequest) bool {
	return r.GetAuthEnable() != nil || r.GetAuthDisable() != nil || r.GetAuthStatus() != nil ||
		r.GetAuthenticate() != nil || r.GetAuthUserAdd() != nil || r.GetAuthUserDelete() != nil ||
		r.GetAuthUserGet() != nil || r.GetAuthUserChangePassword() != nil || r.GetAuthUserGrantRole() != nil ||
		r.GetAuthUserRevokeRole() != nil || r.GetAuthUserList() != nil || r.GetAuthRoleAdd() != nil ||
		r.GetAuthRoleDelete() != nil || r.GetAuthRoleGet() != nil || r.GetAuthRoleGrantPermission() != nil ||
		r.GetAuthRoleRevokePermission() != nil || r.GetAuthRoleList() != nil
}

// needAdmin: the requests only a root user may make (etcd's
// needAdminPermission).
func needAdmin(r *pb.InternalRaftRequest) bool {
	return r.GetAuthEnable() != nil || r.GetAuthDisable() != nil || r.GetAuthUserAdd() != nil ||
		r.GetAuthUserDelete() != nil || r.GetAuthUserChangePassword() != nil || r.GetAuthUserGrantRole() != nil ||
		r.GetAuthUserRevokeRole() != nil || r.GetAuthRoleAdd() != nil || r.GetAuthRoleGrantPermission() != nil ||
		r.GetAuthRoleRevokePermission() != nil || r.GetAuthRoleDelete() != nil || r.GetAuthUserList() != nil ||
		r.GetAuthRoleList() != nil
}

func requestAuthInfo(r *pb.InternalRaftRequest) *auth.Info {
	return &auth.Info{Username: r.GetHeader().GetUsername(), Revision: r.GetHeader().GetAuthRevision()}
}

// checkAuth is etcd's auth applier: the request's user must still be
// allowed to make it at this point of the log.
func (c *Core) checkAuth(r *pb.InternalRaftRequest) error {
	as := c.auth
	if !as.Enabled() {
		return nil
	}
	ai := requestAuthInfo(r)
	if needAdmin(r) {
		return as.IsAdminPermitted(ai)
	}
	switch {
	case r.GetPut() != nil:
		return c.checkPutAuth(ai, r.GetPut())
	case r.GetRange() != nil:
		return as.IsRangePermitted(ai, r.GetRange().GetKey(), r.GetRange().GetRangeEnd())
	case r.GetDeleteRange() != nil:
		dr := r.GetDeleteRange()
		if err := as.IsDeleteRangePermitted(ai, dr.GetKey(), dr.GetRangeEnd()); err != nil {
			return err
		}
		if dr.GetPrevKv() {
			return as.IsRangePermitted(ai, dr.GetKey(), dr.GetRangeEnd())
		}
	case r.GetTxn() != nil:
		return c.CheckTxnAuth(ai, r.GetTxn())
	case r.GetLeaseRevoke() != nil:
		return c.checkLeaseKeys(ai, r.GetLeaseRevoke().GetID(), true)
	case r.GetAuthUserGet() != nil:
		if err := as.IsAdminPermitted(ai); err != nil && r.GetAuthUserGet().GetName() != ai.Username {
			return err
		}
	case r.GetAuthRoleGet() != nil:
		if err := as.IsAdminPermitted(ai); err != nil && !as.HasRole(ai.Username, r.GetAuthRoleGet().GetRole()) {
			return err
		}
	}
	return nil
}

func (c *Core) checkPutAuth(ai *auth.Info, p *pb.PutRequest) error {
	if err := c.auth.IsPutPermitted(ai, p.GetKey()); err != nil {
		return err
	}
	if err := c.checkLeaseKeys(ai, p.GetLease(), true); err != nil {
		return err
	}
	if p.GetPrevKv() {
		return c.auth.IsRangePermitted(ai, p.GetKey(), nil)
	}
	return nil
}

// CheckTxnAuth checks every compare and operation of a txn, nested txns
// included, as etcd does. The shell calls it for read-only txns, which do
// not go through the log (core goroutine, or under the shell's loop).
func (c *Core) CheckTxnAuth(ai *auth.Info, t *pb.TxnRequest) error {
	for _, cmp := range t.GetCompare() {
		if err := c.auth.IsRangePermitted(ai, cmp.GetKey(), cmp.GetRangeEnd()); err != nil {
			return err
		}
	}
	for _, ops := range [][]*pb.RequestOp{t.GetSuccess(), t.GetFailure()} {
		for _, op := range ops {
			var err error
			switch {
			case op.GetRequestRange() != nil:
				err = c.auth.IsRangePermitted(ai, op.GetRequestRange().GetKey(), op.GetRequestRange().GetRangeEnd())
			case op.GetRequestPut() != nil:
				err = c.checkPutAuth(ai, op.GetRequestPut())
			case op.GetRequestDeleteRange() != nil:
				dr := op.GetRequestDeleteRange()
				if dr.GetPrevKv() {
					err = c.auth.IsRangePermitted(ai, dr.GetKey(), dr.GetRangeEnd())
				}
				if err == nil {
					err = c.auth.IsDeleteRangePermitted(ai, dr.GetKey(), dr.GetRangeEnd())
				}
			case op.GetRequestTxn() != nil:
				err = c.CheckTxnAuth(ai, op.GetRequestTxn())
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// checkLeaseKeys: a user who is not root must be allowed to write (write)
// or read every key attached to the lease.
func (c *Core) checkLeaseKeys(ai *auth.Info, id int64, write bool) error {
	if id == 0 {
		return nil
	}
	_, _, keys, err := c.lessor.TimeToLive(id)
	if err != nil {
		return nil // no such lease: not auth's business
	}
	if c.auth.IsAdminPermitted(ai) == nil {
		return nil
	}
	for _, k := range keys {
		var err error
		if write {
			err = c.auth.IsPutPermitted(ai, k)
		} else {
			err = c.auth.IsRangePermitted(ai, k, nil)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// LeaseKeysPermitted is the shell's check of LeaseTimeToLive (read) and
// keep-alives (write): the user must be allowed on every attached key.
// Core goroutine only.
func (c *Core) LeaseKeysPermitted(ai *auth.Info, id int64, write bool) error {
	if !c.auth.Enabled() {
		return nil
	}
	return c.checkLeaseKeys(ai, id, write)
}

// applyAuth applies an Auth request at raft index index.
func (c *Core) applyAuth(r *pb.InternalRaftRequest, index uint64) (proto.Message, error) {
	as := c.auth
	h := c.Header(c.kv.Rev())
	switch {
	case r.GetAuthEnable() != nil:
		if err := as.AuthEnable(); err != nil {
			return nil, err
		}
		return &pb.AuthEnableResponse{Header: h}, nil
	case r.GetAuthDisable() != nil:
		as.AuthDisable()
		return &pb.AuthDisableResponse{Header: h}, nil
	case r.GetAuthStatus() != nil:
		return &pb.AuthStatusResponse{Header: h, Enabled: as.Enabled(), AuthRevision: as.Revision()}, nil
	case r.GetAuthenticate() != nil:
		resp, err := as.Authenticate(r.GetAuthenticate().GetName(), r.GetAuthenticate().GetSimpleToken(), index)
		if err != nil {
			return nil, err
		}
		resp.Header = h
		return resp, nil
	case r.GetAuthUserAdd() != nil:
		if err := as.UserAdd(r.GetAuthUserAdd()); err != nil {
			return nil, err
		}
		return &pb.AuthUserAddResponse{Header: h}, nil
	case r.GetAuthUserDelete() != nil:
		if err := as.UserDelete(r.GetAuthUserDelete().GetName()); err != nil {
			return nil, err
		}
		return &pb.AuthUserDeleteResponse{Header: h}, nil
	case r.GetAuthUserGet() != nil:
		roles, err := as.UserGet(r.GetAuthUserGet().GetName())
		if err != nil {
			return nil, err
		}
		return &pb.AuthUserGetResponse{Header: h, Roles: roles}, nil
	case r.GetAuthUserChangePassword() != nil:
		if err := as.UserChangePassword(r.GetAuthUserChangePassword()); err != nil {
			return nil, err
		}
		return &pb.AuthUserChangePasswordResponse{Header: h}, nil
	case r.GetAuthUserGrantRole() != nil:
		if err := as.UserGrantRole(r.GetAuthUserGrantRole().GetUser(), r.GetAuthUserGrantRole().GetRole()); err != nil {
			return nil, err
		}
		return &pb.AuthUserGrantRoleResponse{Header: h}, nil
	case r.GetAuthUserRevokeRole() != nil:
		if err := as.UserRevokeRole(r.GetAuthUserRevokeRole().GetName(), r.GetAuthUserRevokeRole().GetRole()); err != nil {
			return nil, err
		}
		return &pb.AuthUserRevokeRoleResponse{Header: h}, nil
	case r.GetAuthUserList() != nil:
		return &pb.AuthUserListResponse{Header: h, Users: as.UserList()}, nil
	case r.GetAuthRoleAdd() != nil:
		if err := as.RoleAdd(r.GetAuthRoleAdd().GetName()); err != nil {
			return nil, err
		}
		return &pb.AuthRoleAddResponse{Header: h}, nil
	case r.GetAuthRoleDelete() != nil:
		if err := as.RoleDelete(r.GetAuthRoleDelete().GetRole()); err != nil {
			return nil, err
		}
		return &pb.AuthRoleDeleteResponse{Header: h}, nil
	case r.GetAuthRoleGet() != nil:
		perms, err := as.RoleGet(r.GetAuthRoleGet().GetRole())
		if err != nil {
			return nil, err
		}
		return &pb.AuthRoleGetResponse{Header: h, Perm: perms}, nil
	case r.GetAuthRoleGrantPermission() != nil:
		g := r.GetAuthRoleGrantPermission()
		if err := as.RoleGrantPermission(g.GetName(), g.GetPerm()); err != nil {
			return nil, err
		}
		return &pb.AuthRoleGrantPermissionResponse{Header: h}, nil
	case r.GetAuthRoleRevokePermission() != nil:
		if c.cfg.Bugs.ignoreAuthRevokes() {
			return &pb.AuthRoleRevokePermissionResponse{Header: h}, nil
		}
		g := r.GetAuthRoleRevokePermission()
		if err := as.RoleRevokePermission(g.GetRole(), g.GetKey(), g.GetRangeEnd()); err != nil {
			return nil, err
		}
		return &pb.AuthRoleRevokePermissionResponse{Header: h}, nil
	default: // AuthRoleList
		return &pb.AuthRoleListResponse{Header: h, Roles: as.RoleList()}, nil
	}
}
