package sim

import (
	"encoding/base64"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"time"

	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/cairnkv/cairn/auth"
	"github.com/cairnkv/cairn/node"
)

// The auth workload: an administrator sets up root, a role "r" and a user
// "u" holding it, enables auth, then keeps changing r's permissions on the
// keys ak0..ak3, granting and revoking the role, and now and then turning
// auth off and on again; u keeps writing those keys, checked at whatever
// auth revision its member has applied. After every applied entry each
// member fingerprints what it enforces (enabled, revision, u's read and
// write permission on each key, a range and a prefix): members that
// applied the same index must agree. The KV clients act as root holding a
// token that is never stale, so auth changes never fail them.

const authKeys = 4

// simAuth is the auth workload's state.
type simAuth struct {
	setupStep int
	running   bool
	// fp records, per raft index, the first member's fingerprint there.
	fp map[uint64]authFP
}

type authFP struct {
	sum uint64
	by  string
}

// rootHeader marks a request as root's, checked at a revision no change
// can make old.
func rootHeader() *pb.RequestHeader {
	return &pb.RequestHeader{Username: auth.RootUser, AuthRevision: math.MaxUint64}
}

var authSetup = []*pb.InternalRaftRequest{
	{AuthUserAdd: &pb.AuthUserAddRequest{Name: "root", HashedPassword: base64.StdEncoding.EncodeToString([]byte("not-a-real-hash"))}},
	{AuthUserGrantRole: &pb.AuthUserGrantRoleRequest{User: "root", Role: "root"}},
	{AuthRoleAdd: &pb.AuthRoleAddRequest{Name: "r"}},
	{AuthUserAdd: &pb.AuthUserAddRequest{Name: "u", HashedPassword: base64.StdEncoding.EncodeToString([]byte("not-a-real-hash"))}},
	{AuthUserGrantRole: &pb.AuthUserGrantRoleRequest{User: "u", Role: "r"}},
	{AuthEnable: &pb.AuthEnableRequest{}},
}

func (c *Cluster) startAuth() {
	c.auth = &simAuth{fp: map[uint64]authFP{}}
	c.schedule(100*time.Millisecond, "", c.authSetupNext)
}

// authDone: the workload stops a second before the run ends, as the
// clients do.
func (c *Cluster) authDone() bool {
	return c.now >= int64(c.opts.Duration+c.opts.Heal)-int64(clientTimeout)
}

func (c *Cluster) liveNode() *simNode {
	n := c.nodes[c.rng.IntN(len(c.nodes))]
	if n.core == nil {
		return nil
	}
	return n
}

// authSetupNext proposes the next setup step until it is applied (a step
// applied twice answers "already exists", which is as good).
func (c *Cluster) authSetupNext() {
	a := c.auth
	if a.setupStep >= len(authSetup) {
		if !a.running {
			a.running = true
			c.tracef("auth set up and enabled")
			c.schedule(0, "", c.authChange)
			c.schedule(0, "", c.authProbe)
		}
		return
	}
	if c.authDone() {
		return
	}
	step := a.setupStep
	retry := func() {
		if a.setupStep == step {
			c.authSetupNext()
		}
	}
	n := c.liveNode()
	if n == nil {
		c.schedule(100*time.Millisecond, "", retry)
		return
	}
	req := &pb.InternalRaftRequest{Header: rootHeader()}
	setupReq(req, authSetup[step])
	_, err := n.core.Propose(req, func(res node.Result) {
		if res.Err == nil || errors.Is(res.Err, auth.ErrUserAlreadyExist) || errors.Is(res.Err, auth.ErrRoleAlreadyExist) {
			if a.setupStep == step {
				a.setupStep++
				c.schedule(0, "", c.authSetupNext)
			}
		}
	})
	if err == nil {
		n.process()
	}
	c.schedule(300*time.Millisecond, "", retry)
}

// setupReq copies the request fields of src into dst.
func setupReq(dst, src *pb.InternalRaftRequest) {
	dst.AuthUserAdd, dst.AuthUserGrantRole, dst.AuthRoleAdd, dst.AuthEnable = src.AuthUserAdd, src.AuthUserGrantRole, src.AuthRoleAdd, src.AuthEnable
}

// authRange picks a permission's range: a key, the prefix "ak", or a
// range of keys.
func (c *Cluster) authRange() (key, end []byte) {
	i := c.rng.IntN(authKeys)
	switch c.rng.IntN(3) {
	case 0:
		return []byte(fmt.Sprintf("ak%d", i)), nil
	case 1:
		return []byte("ak"), []byte("al")
	default: // [ak0, ak2) or [ak2, ak4): few enough that revokes find them
		i &^= 1
		return []byte(fmt.Sprintf("ak%d", i)), []byte(fmt.Sprintf("ak%d", i+2))
	}
}

// authChange proposes one change of the auth state through a random
// member, as root.
func (c *Cluster) authChange() {
	if c.authDone() {
		return
	}
	defer c.schedule(time.Duration(20+c.rng.IntN(80))*time.Millisecond, "", c.authChange)
	n := c.liveNode()
	if n == nil {
		return
	}
	req := &pb.InternalRaftRequest{Header: rootHeader()}
	switch r := c.rng.IntN(20); {
	case r < 8:
		key, end := c.authRange()
		req.AuthRoleGrantPermission = &pb.AuthRoleGrantPermissionRequest{Name: "r", Perm: &authpb.Permission{Key: key, RangeEnd: end, PermType: authpb.Permission_Type(c.rng.IntN(3))}}
	case r < 15:
		key, end := c.authRange()
		req.AuthRoleRevokePermission = &pb.AuthRoleRevokePermissionRequest{Role: "r", Key: key, RangeEnd: end}
	case r < 17:
		req.AuthUserRevokeRole = &pb.AuthUserRevokeRoleRequest{Name: "u", Role: "r"}
	case r < 19:
		req.AuthUserGrantRole = &pb.AuthUserGrantRoleRequest{User: "u", Role: "r"}
	default:
		if c.rng.IntN(2) == 0 {
			req.AuthDisable = &pb.AuthDisableRequest{}
		} else {
			req.AuthEnable = &pb.AuthEnableRequest{}
		}
	}
	if _, err := n.core.Propose(req, func(res node.Result) {
		if res.Err == nil {
			c.report.AuthChanges++
		}
	}); err == nil {
		n.process()
	}
}

// authProbe has u write, delete or txn on the auth keys through a random
// member, checked at the auth revision that member has applied.
func (c *Cluster) authProbe() {
	if c.authDone() {
		return
	}
	defer c.schedule(time.Duration(20+c.rng.IntN(60))*time.Millisecond, "", c.authProbe)
	n := c.liveNode()
	if n == nil {
		return
	}
	key := []byte(fmt.Sprintf("ak%d", c.rng.IntN(authKeys)))
	req := &pb.InternalRaftRequest{Header: &pb.RequestHeader{Username: "u", AuthRevision: n.core.Auth().Revision()}}
	switch c.rng.IntN(3) {
	case 0:
		req.Put = &pb.PutRequest{Key: key, Value: []byte("u"), PrevKv: c.rng.IntN(2) == 0}
	case 1:
		req.DeleteRange = &pb.DeleteRangeRequest{Key: []byte("ak"), RangeEnd: []byte("al")}
	default:
		req.Txn = &pb.TxnRequest{
			Compare: []*pb.Compare{{Key: key, Target: pb.Compare_VERSION, Result: pb.Compare_GREATER}},
			Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: key, Value: []byte("t")}}}},
		}
	}
	if _, err := n.core.Propose(req, func(res node.Result) {
		if errors.Is(res.Err, auth.ErrPermissionDenied) || errors.Is(res.Err, auth.ErrAuthOldRevision) {
			c.report.AuthDenied++
		}
	}); err == nil {
		n.process()
	}
}

// authProbes are what a member's fingerprint asks of its auth state.
var authProbes = func() [][2][]byte {
	var out [][2][]byte
	for i := 0; i < authKeys; i++ {
		out = append(out, [2][]byte{[]byte(fmt.Sprintf("ak%d", i)), nil})
	}
	return append(out, [2][]byte{[]byte("ak0"), []byte("ak3")}, [2][]byte{[]byte("ak"), []byte("al")})
}()

// checkAuth fingerprints what n enforces once it has applied e, and
// compares it with what the first member to apply that index enforced.
func (n *simNode) checkAuth(e *raftpb.Entry) {
	c := n.c
	if c.auth == nil || n.core == nil {
		return
	}
	as := n.core.Auth()
	rev := as.Revision()
	h := fnv.New64a()
	fmt.Fprintf(h, "enabled=%v rev=%d", as.Enabled(), rev)
	u := &auth.Info{Username: "u", Revision: rev}
	for _, p := range authProbes {
		fmt.Fprintf(h, " %q-%q:%v/%v", p[0], p[1], as.IsRangePermitted(u, p[0], p[1]), as.IsDeleteRangePermitted(u, p[0], p[1]))
	}
	sum := h.Sum64()
	if ok := c.auth.fp[e.GetIndex()].by != ""; ok {
		c.report.AuthChecks++
	}
	if prev, ok := c.auth.fp[e.GetIndex()]; ok && prev.sum != sum {
		c.violation("%s enforces other permissions after applying entry %d than %s did (auth revision %d, enabled %v)", n.name(), e.GetIndex(), prev.by, rev, as.Enabled())
	} else if !ok {
		c.auth.fp[e.GetIndex()] = authFP{sum: sum, by: n.name()}
	}
}
