package sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strings"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cairnkv/cairn/linearizability"
	"github.com/cairnkv/cairn/node"
	"github.com/cairnkv/cairn/v2store"
)

// The v2 workload (--enable-v2's keys API, issue #17): a few clients set,
// create (prevExist=false), compare-and-swap on prevIndex or prevValue,
// delete, compare-and-delete and quorum-get the keys /v2k0.., some writes
// with a TTL of 1 or 2 seconds, through random members, as etcd's v2
// handlers propose them (one v2 request in the raft request's field 2).
// The leader proposes etcd's SYNC with its own clock once an expiration
// has passed, as server.RunV2Expiry does, so keys expire through raft by
// the leader's skewed clock. The history is checked with the v2 model
// (linearizability/v2model.go: TTL keys may vanish at any point, keys
// without a TTL exactly), and at the end members that applied the same
// index must hold the same v2 tree.

// v2Steps is the v2 check's step budget per key.
const v2Steps = 500_000

// V2Report is what the v2 workload did and found.
type V2Report struct {
	// Ops counts the v2 operations by outcome; Refused the ones refused
	// (110) while v3 authentication was on.
	Ops     OpCounts
	Refused int
	// CASFailed counts compare-and-swaps and compare-and-deletes that
	// answered "compare failed"; Expired the keys the members expired.
	CASFailed, Expired int
	// Verdict is the v2 history check's; Steps what it took.
	Verdict linearizability.Verdict
	Steps   int
	// Checked tells the history was checked.
	Checked bool
}

type simV2 struct {
	rng     *rand.Rand
	keys    int
	hist    *linearizability.V2Recorder
	clients []*v2Client
}

// v2Client issues one v2 operation at a time, remembering the last
// modifiedIndex it saw of each key for its prevIndex comparisons.
type v2Client struct {
	c    *Cluster
	id   int
	seq  int
	seen map[string]uint64
	// ttl marks the slow client of the TTL keys /v2t0 and /v2t1: it writes
	// them only with a TTL and rarely enough (every 0.3 to 0.9 s) that they
	// expire now and then; the busy keys are rewritten long before.
	ttl bool
}

func (c *Cluster) startV2() {
	r := rand.New(rand.NewPCG(c.opts.Seed, 0x7632)) // its own stream: "v2"
	v := &simV2{rng: r, keys: 2 + r.IntN(3), hist: linearizability.NewV2Recorder(func() int64 { return c.now })}
	c.v2 = v
	for i, n := 0, 1+r.IntN(2); i < n; i++ {
		cl := &v2Client{c: c, id: i, seen: map[string]uint64{}}
		v.clients = append(v.clients, cl)
		c.schedule(time.Duration(r.Int64N(int64(50*time.Millisecond))), "", cl.next)
	}
	slow := &v2Client{c: c, id: len(v.clients), seen: map[string]uint64{}, ttl: true}
	v.clients = append(v.clients, slow)
	c.schedule(time.Duration(r.Int64N(int64(500*time.Millisecond))), "", slow.next)
	c.schedule(server500ms, "", c.v2Expiry)
}

// server500ms is server.V2SyncInterval (the simulator does not import the
// shell).
const server500ms = 500 * time.Millisecond

func (c *Cluster) v2Done() bool {
	return c.now >= int64(c.opts.Duration+c.opts.Heal)-int64(clientTimeout)
}

// v2Expiry is server.RunV2Expiry on whichever member believes it leads.
func (c *Cluster) v2Expiry() {
	if c.v2Done() {
		return
	}
	c.schedule(server500ms, "", c.v2Expiry)
	lead := c.leader()
	if lead == nil || lead.core.Auth().Enabled() {
		return
	}
	lead.syncClock()
	now := lead.clock.Now().UnixNano()
	if next := lead.core.V2().NextExpiry(); next == 0 || next > now {
		return
	}
	ir := &pb.InternalRaftRequest{}
	v2store.Attach(ir, &v2store.Request{Method: "SYNC", Time: now})
	if _, err := lead.core.Propose(ir, nil); err == nil {
		c.tracef("%s proposes a v2 SYNC at its time %d", lead.name(), now)
		lead.process()
	}
}

func (cl *v2Client) next() {
	c := cl.c
	v := c.v2
	if c.v2Done() {
		return
	}
	target := c.nodes[v.rng.IntN(len(c.nodes))]
	if target.core == nil {
		c.schedule(10*time.Millisecond, "", cl.next)
		return
	}
	key := fmt.Sprintf("/v2k%d", v.rng.IntN(v.keys))
	cl.seq++
	val := fmt.Sprintf("v%d-%d", cl.id, cl.seq)
	ttl := int64(0)
	if cl.ttl || v.rng.IntN(3) == 0 {
		ttl = 1 + v.rng.Int64N(2)
	}
	if cl.ttl {
		key = fmt.Sprintf("/v2t%d", v.rng.IntN(2))
	}
	// A value some client may have written: a prevValue that holds now
	// and then.
	other := fmt.Sprintf("v%d-%d", v.rng.IntN(len(v.clients)), max(1, cl.seq-v.rng.IntN(4)))
	prevIndex := cl.seen[key]
	if prevIndex == 0 || v.rng.IntN(4) == 0 {
		prevIndex = 1 + uint64(v.rng.IntN(int(prevIndex)+3)) // a guess, often stale
	}
	op := linearizability.V2Op{Key: key}
	req := &v2store.Request{Path: key}
	switch r := v.rng.IntN(20); {
	case r < 4:
		op.Kind, op.Value, op.TTL = linearizability.V2Set, val, ttl > 0
		req.Method, req.Val = "PUT", val
	case r < 6:
		op.Kind, op.Value, op.TTL = linearizability.V2Create, val, ttl > 0
		no := false
		req.Method, req.Val, req.PrevExist = "PUT", val, &no
	case r < 10:
		op.Kind, op.Value, op.PrevIndex, op.TTL = linearizability.V2CAS, val, prevIndex, ttl > 0
		req.Method, req.Val, req.PrevIndex = "PUT", val, prevIndex
	case r < 12:
		op.Kind, op.Value, op.PrevValue, op.TTL = linearizability.V2CAS, val, other, ttl > 0
		req.Method, req.Val, req.PrevValue = "PUT", val, other
	case r < 13:
		op.Kind = linearizability.V2Delete
		req.Method = "DELETE"
	case r < 15:
		op.Kind = linearizability.V2CAD
		req.Method = "DELETE"
		if v.rng.IntN(2) == 0 {
			op.PrevIndex, req.PrevIndex = prevIndex, prevIndex
		} else {
			op.PrevValue, req.PrevValue = other, other
		}
	default:
		op.Kind = linearizability.V2Get
		req.Method, req.Quorum = "QGET", true
	}
	if op.TTL {
		target.syncClock()
		req.Expiration = target.clock.Now().Add(time.Duration(ttl) * time.Second).UnixNano()
	}
	cl.propose(target, op, req)
}

func (cl *v2Client) propose(n *simNode, op linearizability.V2Op, req *v2store.Request) {
	c := cl.c
	ir := &pb.InternalRaftRequest{}
	v2store.Attach(ir, req)
	var finish func(*linearizability.V2Response)
	id, err := n.core.Propose(ir, func(res node.Result) {
		finish(cl.decode(op, res))
	})
	if err != nil {
		// Refused before it entered the log: no operation at all.
		c.report.V2.Ops.Failed++
		cl.finishLater()
		return
	}
	tok := c.v2.hist.Invoke(cl.id, op)
	finish = cl.await(n, tok, op, id)
	n.process()
}

// decode turns an applied v2 request's result into the model's answer
// (nil: unknown outcome).
func (cl *v2Client) decode(op linearizability.V2Op, res node.Result) *linearizability.V2Response {
	var verr *v2store.Error
	if errors.As(res.Err, &verr) {
		return &linearizability.V2Response{ErrorCode: verr.ErrorCode, Index: verr.Index}
	}
	if res.Err != nil || res.V2 == nil || res.V2.Node == nil {
		return nil
	}
	ev := res.V2
	out := &linearizability.V2Response{ModifiedIndex: ev.Node.ModifiedIndex, Index: ev.EtcdIndex}
	if ev.Node.Value != nil {
		out.Value = *ev.Node.Value
	}
	if p := ev.PrevNode; p != nil && op.Kind != linearizability.V2Get {
		out.HasPrev, out.PrevIndex = true, p.ModifiedIndex
		if p.Value != nil {
			out.PrevValue = *p.Value
		}
	}
	return out
}

func (cl *v2Client) finishLater() {
	think := 1 + cl.c.v2.rng.Int64N(int64(30*time.Millisecond))
	if cl.ttl {
		think = int64(300*time.Millisecond) + cl.c.v2.rng.Int64N(int64(600*time.Millisecond))
	}
	cl.c.schedule(time.Duration(think), "", cl.next)
}

// await arms the client's timeout, as client.await does for v3 clients.
func (cl *v2Client) await(n *simNode, tok linearizability.Token, op linearizability.V2Op, reqID uint64) func(*linearizability.V2Response) {
	c := cl.c
	rep := &c.report.V2
	finished := false
	inc := n.incarnation
	finish := func(resp *linearizability.V2Response) {
		if finished {
			return
		}
		finished = true
		if resp == nil {
			c.tracef("v2 client %d op %d on %s: %s: no answer", cl.id, tok, n.name(), op)
			c.v2.hist.Unknown(tok)
			if op.IsRead() {
				rep.Ops.Failed++
			} else {
				rep.Ops.Unknown++
			}
			cl.finishLater()
			return
		}
		c.tracef("v2 client %d op %d on %s: %s → %s", cl.id, tok, n.name(), op, resp)
		c.v2.hist.Return(tok, *resp)
		rep.Ops.OK++
		switch resp.ErrorCode {
		case 0:
			if op.Kind == linearizability.V2Delete || op.Kind == linearizability.V2CAD {
				delete(cl.seen, op.Key)
			} else {
				cl.seen[op.Key] = resp.ModifiedIndex
			}
		case linearizability.V2ErrUnauthorized:
			rep.Refused++
		case linearizability.V2ErrTestFailed:
			rep.CASFailed++
		case linearizability.V2ErrKeyNotFound:
			delete(cl.seen, op.Key)
		}
		cl.finishLater()
	}
	c.schedule(clientTimeout, "", func() {
		if finished {
			return
		}
		if n.core != nil && n.incarnation == inc {
			n.core.Forget(reqID)
		}
		finish(nil)
	})
	return finish
}

// checkV2 checks the v2 history and that members that applied the same
// index hold the same v2 tree.
func (c *Cluster) checkV2() {
	if c.v2 == nil {
		return
	}
	rep := &c.report.V2
	type tree struct {
		sum uint64
		by  string
	}
	trees := map[uint64]tree{}
	for _, n := range c.nodes {
		if n.core == nil {
			continue
		}
		st := n.core.V2()
		rep.Expired = max(rep.Expired, int(st.Stats().ExpireCount))
		ev, err := st.Get("/", true, true)
		if err != nil {
			c.violation("reading the v2 tree on %s: %v", n.name(), err)
			continue
		}
		b, _ := json.Marshal(ev.Node)
		h := fnv.New64a()
		fmt.Fprintf(h, "%d ", st.Index())
		h.Write(b)
		applied := n.core.Applied()
		if prev, ok := trees[applied]; ok && prev.sum != h.Sum64() {
			c.violation("members hold different v2 trees after applying entry %d: %s and %s", applied, prev.by, n.name())
		} else if !ok {
			trees[applied] = tree{sum: h.Sum64(), by: n.name()}
		}
	}
	if c.opts.NoLinearizability {
		return
	}
	res, err := linearizability.CheckV2Steps(c.v2.hist.History(), v2Steps)
	if err != nil {
		c.violation("v2 linearizability check: %v", err)
		return
	}
	rep.Checked, rep.Verdict, rep.Steps = true, res.Verdict, res.Steps
	// Counted with the v3 checks, so a sweep's summary shows them too.
	c.report.LinSteps += res.Steps
	if res.Verdict == linearizability.Inconclusive {
		c.report.Inconclusive++
	}
	c.tracef("v2 model check: %v, %d of %d keys inconclusive, %d steps", res.Verdict, res.Inconclusive, res.Partitions, res.Steps)
	if res.Verdict == linearizability.NotLinearizable {
		var b strings.Builder
		for _, o := range res.Failed {
			fmt.Fprintf(&b, "\n  client %d [%d, %d] %s → %s", o.ClientId, o.Call, o.Return, o.Input.(linearizability.V2Op), o.Output.(linearizability.V2Response))
		}
		c.tracef("v2 history of the key found not linearizable:%s", b.String())
		c.violation("v2 history is not linearizable (v2 model): key %s", res.Failed[0].Input.(linearizability.V2Op).Key)
	}
}
