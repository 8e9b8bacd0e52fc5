package sim

import (
	"fmt"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cairnkv/cairn/linearizability"
	"github.com/cairnkv/cairn/node"
)

// History is the record of every client operation of a run.
type History struct {
	*linearizability.Recorder
}

func newHistory(now func() int64) *History {
	return &History{Recorder: linearizability.NewRecorder(now)}
}

// clientTimeout is how long a simulated client waits for an answer before
// it records the outcome as unknown.
const clientTimeout = time.Second

// client issues one operation at a time to a member of its choosing, as a
// clientv3 user with a request timeout would.
type client struct {
	c   *Cluster
	id  int
	seq int
}

func (c *Cluster) startClients() {
	n := 2 + c.rng.IntN(4)
	for i := 0; i < n; i++ {
		cl := &client{c: c, id: i}
		c.clients = append(c.clients, cl)
		c.schedule(time.Duration(c.rng.Int64N(int64(50*time.Millisecond))), "", cl.next)
	}
	c.startV2()
}

func (c *Cluster) keys() int { return c.nkeys }

// next issues the client's next operation after a short think time.
func (cl *client) next() {
	c := cl.c
	if c.now >= int64(c.opts.Duration+c.opts.Heal)-int64(clientTimeout) {
		return // leave the last second for answers to arrive
	}
	target := c.nodes[c.rng.IntN(len(c.nodes))]
	if target.core == nil {
		// Connection refused: the operation never started. Try again soon.
		c.schedule(10*time.Millisecond, "", cl.next)
		return
	}
	key := fmt.Sprintf("k%d", c.rng.IntN(c.keys()))
	cl.seq++
	val := fmt.Sprintf("c%d-%d", cl.id, cl.seq)
	switch r := c.rng.IntN(10); {
	case r < 3:
		cl.get(target, key)
	case r < 4:
		cl.rangeAll(target)
	case r < 7:
		cl.put(target, key, val)
	case r < 8:
		cl.del(target, key)
	default:
		expected := fmt.Sprintf("c%d-%d", c.rng.IntN(len(c.clients)), c.rng.IntN(cl.seq+1))
		cl.cas(target, key, expected, val)
	}
}

// finishLater schedules the client's next operation after a think time.
func (cl *client) finishLater() {
	cl.c.schedule(time.Duration(1+cl.c.rng.Int64N(int64(30*time.Millisecond))), "", cl.next)
}

// await arms the client-side timeout of an operation: if done has not been
// called by then, the outcome is unknown (writes) or dropped (reads).
func (cl *client) await(n *simNode, tok linearizability.Token, isRead bool, reqID *uint64) (finish func(resp *linearizability.Response)) {
	c := cl.c
	finished := false
	inc := n.incarnation
	finish = func(resp *linearizability.Response) {
		if finished {
			return
		}
		finished = true
		if resp != nil {
			c.tracef("client %d op %d on %s: %+v", cl.id, tok, n.name(), *resp)
		} else {
			c.tracef("client %d op %d on %s: no answer", cl.id, tok, n.name())
		}
		switch {
		case resp != nil:
			c.hist.Return(tok, *resp)
			c.report.Ops.OK++
		case isRead:
			c.hist.Unknown(tok) // a read that returned nothing constrains nothing
			c.report.Ops.Failed++
		default:
			c.hist.Unknown(tok)
			c.report.Ops.Unknown++
		}
		cl.finishLater()
	}
	c.schedule(clientTimeout, "", func() {
		if finished {
			return
		}
		if reqID != nil && n.core != nil && n.incarnation == inc {
			n.core.Forget(*reqID)
		}
		finish(nil)
	})
	return finish
}

func (cl *client) get(n *simNode, key string) {
	c := cl.c
	tok := c.hist.Invoke(cl.id, linearizability.Get(key))
	finish := cl.await(n, tok, true, nil)
	read := func(err error) {
		if err != nil || n.core == nil {
			finish(nil)
			return
		}
		resp, err := n.core.KV().Range(&pb.RangeRequest{Key: []byte(key)})
		if err != nil {
			c.violation("linearizable read of %s on %s failed: %v", key, n.name(), err)
			finish(nil)
			return
		}
		out := linearizability.Response{}
		if len(resp.GetKvs()) == 1 {
			out.Found, out.Value = true, string(resp.GetKvs()[0].GetValue())
		}
		finish(&out)
	}
	n.core.ReadIndex(read)
	n.process()
}

// rangeAll reads every workload key ("k" to "l": the lease workload's
// "lease-k" keys are outside it) with a linearizable range.
func (cl *client) rangeAll(n *simNode) {
	c := cl.c
	tok := c.hist.Invoke(cl.id, linearizability.Range("k", "l"))
	finish := cl.await(n, tok, true, nil)
	n.core.ReadIndex(func(err error) {
		if err != nil || n.core == nil {
			finish(nil)
			return
		}
		resp, err := n.core.KV().Range(&pb.RangeRequest{Key: []byte("k"), RangeEnd: []byte("l")})
		if err != nil {
			c.violation("linearizable range on %s failed: %v", n.name(), err)
			finish(nil)
			return
		}
		out := linearizability.Response{}
		for _, kv := range resp.GetKvs() {
			out.KVs = append(out.KVs, linearizability.KV{Key: string(kv.GetKey()), Value: string(kv.GetValue())})
		}
		finish(&out)
	})
	n.process()
}

func (cl *client) propose(n *simNode, op linearizability.Op, req *pb.InternalRaftRequest, decode func(node.Result) linearizability.Response) {
	c := cl.c
	req.Header = rootHeader()
	if n.overQuota(req) {
		// Refused before it entered the log, as the shell refuses it.
		c.report.Ops.Failed++
		cl.finishLater()
		return
	}
	var finish func(*linearizability.Response)
	id, err := n.core.Propose(req, func(res node.Result) {
		if res.Err != nil {
			finish(nil) // stopped: unknown outcome
			return
		}
		out := decode(res)
		finish(&out)
	})
	if err != nil {
		// Refused before it entered the log (no leader): it can never take
		// effect, so it is no operation at all. Virtual time has not moved
		// since the call, so recording starts after it without loss.
		c.report.Ops.Failed++
		cl.finishLater()
		return
	}
	tok := c.hist.Invoke(cl.id, op)
	finish = cl.await(n, tok, false, &id)
	n.process()
}

func (cl *client) put(n *simNode, key, val string) {
	cl.propose(n, linearizability.Put(key, val), &pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte(key), Value: []byte(val)}},
		func(res node.Result) linearizability.Response {
			return linearizability.Response{Revision: res.Resp.(*pb.PutResponse).GetHeader().GetRevision()}
		})
}

func (cl *client) del(n *simNode, key string) {
	cl.propose(n, linearizability.Delete(key), &pb.InternalRaftRequest{DeleteRange: &pb.DeleteRangeRequest{Key: []byte(key)}},
		func(res node.Result) linearizability.Response {
			r := res.Resp.(*pb.DeleteRangeResponse)
			return linearizability.Response{Deleted: r.GetDeleted(), Revision: r.GetHeader().GetRevision()}
		})
}

func (cl *client) cas(n *simNode, key, expected, val string) {
	txn := &pb.TxnRequest{
		Compare: []*pb.Compare{{Key: []byte(key), Target: pb.Compare_VALUE, Result: pb.Compare_EQUAL, TargetUnion: &pb.Compare_Value{Value: []byte(expected)}}},
		Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(key), Value: []byte(val)}}}},
	}
	cl.propose(n, linearizability.CAS(key, expected, val), &pb.InternalRaftRequest{Txn: txn},
		func(res node.Result) linearizability.Response {
			r := res.Resp.(*pb.TxnResponse)
			return linearizability.Response{Succeeded: r.GetSucceeded(), Revision: r.GetHeader().GetRevision()}
		})
}
