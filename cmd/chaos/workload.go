package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/connectivity"

	"github.com/cairnkv/cairn/linearizability"
)

// opStats counts client operations by outcome.
type opStats struct {
	ok, failed, unknown atomic.Int64
}

// Lease kinds of the lease workload.
const (
	leaseKept      = "kept"      // renewed until the end: must survive
	leaseAbandoned = "abandoned" // never renewed: must expire
	leaseRevoked   = "revoked"   // revoked by the client
)

// TTLs by lease kind, in seconds.
var leaseTTL = map[string]int64{leaseKept: 8, leaseAbandoned: 3, leaseRevoked: 5}

// expiryMargin is how long before its earliest possible expiry a lease's
// expiry is recorded (as a revoke of unknown outcome), so that timer
// lateness never lets a read observe an expiry the history lacks.
const expiryMargin = time.Second

// leaseRec is one lease of the workload.
type leaseRec struct {
	id        int64
	kind      string
	ttl       time.Duration
	key       string
	member    int
	grantCall time.Time
	granted   bool // the grant returned success

	mu sync.Mutex
	// lastRenew is when the latest successful renewal (or the grant) was
	// sent: the lease must exist until lastRenew+ttl.
	lastRenew time.Time
	gone      bool // a renewal found the lease gone
	violation string
}

// workload runs the clients and records their history.
type workload struct {
	c         *cluster
	clis      []*clientv3.Client // one per member
	rec       *linearizability.Recorder
	start     time.Time
	keys      []string
	seed      int64
	perMember int
	opTimeout time.Duration
	think     time.Duration
	log       func(format string, args ...any)

	stats opStats

	mu     sync.Mutex
	leases []*leaseRec
	timers sync.WaitGroup // expiry records still to come
}

// now is the recorder's clock: nanoseconds since the start, monotonic.
func (w *workload) now() int64 { return time.Since(w.start).Nanoseconds() }

// Client IDs of the history: register clients first, then one lease
// client per member, the expiry recorder, then one final reader per member.
func (w *workload) clients() int          { return w.perMember * len(w.clis) }
func (w *workload) leaseClient(m int) int { return w.clients() + m }
func (w *workload) expiryClient() int     { return w.clients() + len(w.clis) }
func (w *workload) finalClient(m int) int { return w.expiryClient() + 1 + m }
func (w *workload) rng(id int) *rand.Rand { return rand.New(rand.NewPCG(uint64(w.seed), uint64(id)+1)) }
func (w *workload) sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// connected reports whether cli's connection may carry a request now; a
// client whose member is down waits instead of piling up unknown writes.
func connected(cli *clientv3.Client) bool {
	switch cli.ActiveConnection().GetState() {
	case connectivity.TransientFailure, connectivity.Connecting, connectivity.Shutdown:
		return false
	}
	return true
}

// run starts every client and returns when ctx is done and they stopped.
// Keep-alives of kept leases run until keepCtx is done.
func (w *workload) run(ctx, keepCtx context.Context) {
	var wg sync.WaitGroup
	for m := range w.clis {
		for j := 0; j < w.perMember; j++ {
			id := m*w.perMember + j
			wg.Go(func() { w.registerClient(ctx, id, m) })
		}
		wg.Go(func() { w.leaseClientLoop(ctx, keepCtx, m) })
	}
	wg.Wait()
}

// registerClient issues get, put, delete and compare-and-set on the
// register keys through member m, one at a time.
func (w *workload) registerClient(ctx context.Context, id, m int) {
	cli := w.clis[m]
	rng := w.rng(id)
	seen := map[string]string{} // last value this client read or wrote per key
	seq := 0
	for ctx.Err() == nil {
		if !connected(cli) {
			w.sleep(ctx, 50*time.Millisecond)
			continue
		}
		key := w.keys[rng.IntN(len(w.keys))]
		seq++
		val := fmt.Sprintf("c%d-%d", id, seq)
		octx, cancel := context.WithTimeout(context.Background(), w.opTimeout)
		switch r := rng.IntN(10); {
		case r < 4:
			if v, found, ok := w.get(octx, id, cli, key); ok && found {
				seen[key] = v
			}
		case r < 7:
			if w.put(octx, id, cli, key, val) {
				seen[key] = val
			}
		case r < 8:
			w.del(octx, id, cli, key)
			delete(seen, key)
		default:
			exp, ok := seen[key]
			if !ok && rng.IntN(2) == 0 {
				exp = fmt.Sprintf("c%d-%d", rng.IntN(w.clients()), rng.IntN(seq+1))
				ok = true
			}
			if w.cas(octx, id, cli, key, exp, !ok, val) {
				seen[key] = val
			}
		}
		cancel()
		w.sleep(ctx, w.think/2+time.Duration(rng.Int64N(int64(w.think)+1)))
	}
}

// get records a linearizable read; a failed read is dropped from the
// history. ok reports whether it returned.
func (w *workload) get(ctx context.Context, id int, cli *clientv3.Client, key string) (val string, found, ok bool) {
	tok := w.rec.Invoke(id, linearizability.Get(key))
	resp, err := cli.Get(ctx, key)
	if err != nil {
		w.rec.Unknown(tok)
		w.stats.failed.Add(1)
		return "", false, false
	}
	out := linearizability.Response{}
	if len(resp.Kvs) == 1 {
		out.Found, out.Value = true, string(resp.Kvs[0].Value)
	}
	w.rec.Return(tok, out)
	w.stats.ok.Add(1)
	return out.Value, out.Found, true
}

// unknown records a write whose outcome is not known.
func (w *workload) unknown(tok linearizability.Token) {
	w.rec.Unknown(tok)
	w.stats.unknown.Add(1)
}

func (w *workload) ret(tok linearizability.Token, resp linearizability.Response) {
	w.rec.Return(tok, resp)
	w.stats.ok.Add(1)
}

func (w *workload) put(ctx context.Context, id int, cli *clientv3.Client, key, val string) bool {
	tok := w.rec.Invoke(id, linearizability.Put(key, val))
	resp, err := cli.Put(ctx, key, val)
	if err != nil {
		w.unknown(tok)
		return false
	}
	w.ret(tok, linearizability.Response{Revision: resp.Header.Revision})
	return true
}

func (w *workload) del(ctx context.Context, id int, cli *clientv3.Client, key string) {
	tok := w.rec.Invoke(id, linearizability.Delete(key))
	resp, err := cli.Delete(ctx, key)
	if err != nil {
		w.unknown(tok)
		return
	}
	w.ret(tok, linearizability.Response{Deleted: resp.Deleted, Revision: resp.Header.Revision})
}

// cas puts val if key holds exp (or, with absent, does not exist); it
// reports whether the put is known to have happened.
func (w *workload) cas(ctx context.Context, id int, cli *clientv3.Client, key, exp string, absent bool, val string) bool {
	op := linearizability.CAS(key, exp, val)
	cmp := clientv3.Compare(clientv3.Value(key), "=", exp)
	if absent {
		op = linearizability.CASAbsent(key, val)
		cmp = clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
	}
	tok := w.rec.Invoke(id, op)
	resp, err := cli.Txn(ctx).If(cmp).Then(clientv3.OpPut(key, val)).Commit()
	if err != nil {
		w.unknown(tok)
		return false
	}
	w.ret(tok, linearizability.Response{Succeeded: resp.Succeeded, Revision: resp.Header.Revision})
	return resp.Succeeded
}

// leaseClientLoop grants leases with client-chosen IDs through member m,
// attaches a key to each, and keeps some alive, revokes some and abandons
// the rest.
func (w *workload) leaseClientLoop(ctx, keepCtx context.Context, m int) {
	cli := w.clis[m]
	id := w.leaseClient(m)
	rng := w.rng(id)
	lc := clientv3.RetryLeaseClient(cli)
	kept := 0
	for seq := 1; ctx.Err() == nil; seq++ {
		if !connected(cli) {
			w.sleep(ctx, 50*time.Millisecond)
			continue
		}
		kind := leaseAbandoned
		switch r := rng.IntN(10); {
		case r < 3 && kept < 2:
			kind = leaseKept
			kept++
		case r < 6:
			kind = leaseRevoked
		}
		l := &leaseRec{
			id:   int64(m+1)<<32 | int64(seq),
			kind: kind, ttl: time.Duration(leaseTTL[kind]) * time.Second,
			key:    fmt.Sprintf("lease/m%d/%d", m, seq),
			member: m,
		}
		w.grant(ctx, id, lc, l)
		octx, cancel := context.WithTimeout(context.Background(), w.opTimeout)
		w.putWithLease(octx, id, cli, l, fmt.Sprintf("l%d-%d", m, seq))
		cancel()
		octx, cancel = context.WithTimeout(context.Background(), w.opTimeout)
		w.get(octx, id, cli, l.key)
		cancel()
		switch kind {
		case leaseRevoked:
			w.sleep(ctx, time.Duration(rng.Int64N(int64(time.Second))))
			octx, cancel := context.WithTimeout(context.Background(), w.opTimeout)
			w.revoke(octx, id, cli, l)
			cancel()
		case leaseKept:
			go w.keepAlive(keepCtx, cli, l)
		}
		w.sleep(ctx, 5*w.think+time.Duration(rng.Int64N(int64(10*w.think)+1)))
	}
}

// grant records a LeaseGrant, then schedules the record of the lease's
// possible expiry.
func (w *workload) grant(ctx context.Context, client int, lc pb.LeaseClient, l *leaseRec) {
	l.grantCall = time.Now()
	tok := w.rec.Invoke(client, linearizability.LeaseGrant(l.id))
	octx, cancel := context.WithTimeout(ctx, w.opTimeout)
	_, err := lc.LeaseGrant(octx, &pb.LeaseGrantRequest{ID: l.id, TTL: int64(l.ttl / time.Second)})
	cancel()
	if err != nil {
		w.unknown(tok) // a retried grant may answer "exists": unknown too
	} else {
		w.ret(tok, linearizability.Response{Succeeded: true})
		l.granted = true
		l.lastRenew = l.grantCall
	}
	w.mu.Lock()
	w.leases = append(w.leases, l)
	w.mu.Unlock()
	// The lease cannot expire before grantCall+ttl; its expiry is a revoke
	// of unknown outcome invoked a margin earlier.
	w.timers.Add(1)
	time.AfterFunc(time.Until(l.grantCall.Add(l.ttl-expiryMargin)), func() {
		defer w.timers.Done()
		w.rec.Unknown(w.rec.Invoke(w.expiryClient(), linearizability.LeaseRevoke(l.id)))
	})
}

func (w *workload) putWithLease(ctx context.Context, id int, cli *clientv3.Client, l *leaseRec, val string) {
	tok := w.rec.Invoke(id, linearizability.PutWithLease(l.key, val, l.id))
	resp, err := cli.Put(ctx, l.key, val, clientv3.WithLease(clientv3.LeaseID(l.id)))
	switch {
	case err == nil:
		w.ret(tok, linearizability.Response{Succeeded: true, Revision: resp.Header.Revision})
	case errors.Is(err, rpctypes.ErrLeaseNotFound):
		w.ret(tok, linearizability.Response{Succeeded: false})
	default:
		w.unknown(tok)
	}
}

func (w *workload) revoke(ctx context.Context, id int, cli *clientv3.Client, l *leaseRec) {
	tok := w.rec.Invoke(id, linearizability.LeaseRevoke(l.id))
	_, err := cli.Revoke(ctx, clientv3.LeaseID(l.id))
	switch {
	case err == nil:
		w.ret(tok, linearizability.Response{Succeeded: true})
	case errors.Is(err, rpctypes.ErrLeaseNotFound):
		w.ret(tok, linearizability.Response{Succeeded: false})
	default:
		w.unknown(tok)
	}
}

// keepAlive renews l every second until ctx is done. A renewal that finds
// the lease gone although an earlier renewal promised it would live longer
// is a violation.
func (w *workload) keepAlive(ctx context.Context, cli *clientv3.Client, l *leaseRec) {
	for w.sleep(ctx, time.Second) {
		if !connected(cli) {
			continue
		}
		sent := time.Now()
		octx, cancel := context.WithTimeout(ctx, time.Second)
		resp, err := cli.KeepAliveOnce(octx, clientv3.LeaseID(l.id))
		cancel()
		switch {
		case err == nil && resp.TTL > 0:
			l.mu.Lock()
			l.lastRenew = sent
			l.mu.Unlock()
		case errors.Is(err, rpctypes.ErrLeaseNotFound) || (err == nil && resp.TTL <= 0):
			l.mu.Lock()
			l.gone = true
			if !l.lastRenew.IsZero() && sent.Before(l.lastRenew.Add(l.ttl-expiryMargin)) {
				l.violation = fmt.Sprintf("lease %x (ttl %s) found gone at %s, but a renewal sent at %s promised it until %s",
					l.id, l.ttl, fmtDur(sent.Sub(w.start)), fmtDur(l.lastRenew.Sub(w.start)), fmtDur(l.lastRenew.Add(l.ttl).Sub(w.start)))
			}
			l.mu.Unlock()
			return
		}
	}
}
