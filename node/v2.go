package node

import (
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cairnkv/cairn/v2store"
)

// v2Bucket holds the v2 API's tree (v2store), one record per node and one
// per event of its 1000-event history, in the member's database, so it is durable and travels in snapshots. etcd kept
// its v2 tree in its .snap files instead: v2 data does not move between
// Cairn and etcd.
var v2Bucket = []byte("v2store")

// v2Backend is the v2 tree's view of the current database.
type v2Backend struct{ c *Core }

func (b v2Backend) Put(k, v []byte) { b.c.kv.AuxPut(v2Bucket, k, v) }
func (b v2Backend) Delete(k []byte) { b.c.kv.AuxDelete(v2Bucket, k) }
func (b v2Backend) ForEach(fn func(k, v []byte) error) error {
	return b.c.kv.AuxForEach(v2Bucket, fn)
}

// loadV2 (re)reads the v2 tree from the database: at start and after a
// snapshot replaced the database.
func (c *Core) loadV2() error {
	if c.v2 == nil {
		c.v2 = v2store.New(v2Backend{c})
	}
	return c.v2.Load()
}

// V2 is the v2 API's tree. Its reads (Get, Watch) may run on any goroutine.
func (c *Core) V2() *v2store.Store { return c.v2 }

// applyV2 applies r if it carries a v2 request (etcd 3.5's field 2): ok
// tells whether it did. With v3 auth enabled the v2 API is refused, the same
// on every member (Cairn has no v2 auth).
func (c *Core) applyV2(r *pb.InternalRaftRequest) (res Result, ok bool, err error) {
	req, ok, err := v2store.FromInternal(r)
	if err != nil || !ok {
		return Result{}, ok, err
	}
	if c.auth.Enabled() && req.Method != "SYNC" {
		return Result{Err: v2store.NewError(v2store.EcodeUnauthorized, "the v2 API is refused while v3 authentication is enabled", c.v2.Index())}, true, nil
	}
	if c.cfg.Bugs.v2IgnorePrevIndex() && req.PrevIndex != 0 {
		// The planted bug: the comparison on prevIndex is dropped (a PUT
		// comparing nothing else still needs the key, as a CAS does).
		bug := *req
		bug.PrevIndex = 0
		if bug.Method == "PUT" && bug.PrevValue == "" && bug.PrevExist == nil {
			yes := true
			bug.PrevExist = &yes
		}
		req = &bug
	}
	ev, verr := c.v2.Apply(req)
	if verr != nil {
		return Result{Err: verr}, true, nil
	}
	return Result{V2: ev}, true, nil
}
