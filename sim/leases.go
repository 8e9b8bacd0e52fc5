package sim

import (
	"errors"
	"fmt"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cairnkv/cairn/lease"
	"github.com/cairnkv/cairn/node"
)

// The lease workload: a client grants leases with keys attached, keeps half
// of them alive through whichever member leads, and abandons the rest. At
// the end, on every member: a lease that was kept alive without a gap longer
// than half its TTL still exists with its key (leader changes, skewed
// clocks and crashes must neither cut it nor let a follower expire it), and
// an abandoned lease is gone with its key.

const (
	simLeaseTTL   = 2 // seconds: the minimum TTL for a 1s election timeout
	leaseCount    = 6
	renewInterval = 300 * time.Millisecond
)

type simLease struct {
	id      int64
	key     string
	keep    bool
	granted bool // acknowledged grant
	keyPut  bool // acknowledged put of key with the lease
	// proposedAt is when the grant was first proposed: the earliest the
	// lease's countdown can have started.
	proposedAt int64
	last       int64 // virtual time of the last acknowledged renewal (or the grant)
	maxGap     int64 // the longest time without an acknowledged renewal
	lost       bool  // a renewal found the lease gone
}

func (c *Cluster) startLeases() {
	for i := 0; i < leaseCount; i++ {
		l := &simLease{id: int64(1000 + i), key: fmt.Sprintf("lease-k%d", i), keep: i%2 == 0}
		c.leases = append(c.leases, l)
	}
	c.schedule(1500*time.Millisecond, "", c.grantLeases)
}

// grantLeases grants every lease not yet granted, through any live member,
// and retries until all are granted. A lease's countdown may have started
// as early as its first grant proposal, so that is when the client last
// "renewed" it: a grant acknowledged late shows up as a long gap.
func (c *Cluster) grantLeases() {
	pending := false
	for _, l := range c.leases {
		if l.granted {
			continue
		}
		pending = true
		n := c.nodes[c.rng.IntN(len(c.nodes))]
		if n.core == nil {
			continue
		}
		if l.proposedAt == 0 {
			l.proposedAt = c.now
		}
		l := l
		inc := n.incarnation
		// Callbacks run inside the core's Process: they only schedule.
		putKey := func() {
			if n.core == nil || n.incarnation != inc {
				return
			}
			_, _ = n.core.Propose(&pb.InternalRaftRequest{Header: rootHeader(), Put: &pb.PutRequest{Key: []byte(l.key), Value: []byte("up"), Lease: l.id}}, func(res node.Result) {
				if res.Err == nil {
					l.keyPut = true
				}
			})
			n.process()
		}
		_, _ = n.core.Propose(&pb.InternalRaftRequest{LeaseGrant: &pb.LeaseGrantRequest{ID: l.id, TTL: simLeaseTTL}}, func(res node.Result) {
			// Exists: an earlier grant whose answer was lost took effect.
			if (res.Err == nil || errors.Is(res.Err, lease.ErrLeaseExists)) && !l.granted {
				l.granted, l.last = true, l.proposedAt
				c.tracef("lease %d granted (keep=%v), first proposed at %.3fs", l.id, l.keep, float64(l.proposedAt)/1e9)
				c.schedule(0, "", putKey)
				if l.keep {
					c.schedule(0, "", func() { c.renew(l) })
				} else if l.id%2 == 1 {
					c.schedule(500*time.Millisecond, "", func() { c.revoke(l) })
				}
			}
		})
		n.process()
	}
	if pending && c.now < int64(c.opts.Duration) {
		c.schedule(500*time.Millisecond, "", c.grantLeases)
	}
}

// revoke revokes an abandoned lease explicitly, through any live member,
// retrying until a revoke is acknowledged or the lease is found gone.
func (c *Cluster) revoke(l *simLease) {
	n := c.nodes[c.rng.IntN(len(c.nodes))]
	if n.core == nil {
		c.schedule(200*time.Millisecond, "", func() { c.revoke(l) })
		return
	}
	acked := false
	_, err := n.core.Propose(&pb.InternalRaftRequest{Header: rootHeader(), LeaseRevoke: &pb.LeaseRevokeRequest{ID: l.id}}, func(res node.Result) {
		if res.Err == nil || errors.Is(res.Err, lease.ErrLeaseNotFound) {
			acked = true
			c.tracef("lease %d revoked by the client", l.id)
		}
	})
	n.process()
	if err != nil || !acked {
		c.schedule(time.Second, "", func() {
			if !acked {
				c.revoke(l)
			}
		})
	}
}

// renew keeps a lease alive through the current leader, as a clientv3
// keep-alive does through whichever member forwards it.
func (c *Cluster) renew(l *simLease) {
	if lead := c.leader(); lead != nil && !l.lost {
		lead.syncClock()
		inc := lead.incarnation
		lead.core.LeaseRenew(l.id, func(_ int64, err error) {
			if lead.incarnation == inc {
				c.renewed(l, lead, err)
			}
		})
		lead.process()
	}
	c.schedule(renewInterval, "", func() { c.renew(l) })
}

// renewed records the outcome of a keep-alive.
func (c *Cluster) renewed(l *simLease, lead *simNode, err error) {
	if l.lost {
		return
	}
	{
		switch {
		case err == nil:
			c.tracef("lease %d renewed on %s", l.id, lead.name())
			if gap := c.now - l.last; gap > l.maxGap {
				l.maxGap = gap
			}
			l.last = c.now
		case errors.Is(err, lease.ErrLeaseNotFound):
			// The lease is gone. That is a violation unless the client
			// could not renew it for long enough to let it expire.
			l.lost = true
			if gap := c.now - l.last; gap < int64(simLeaseTTL*time.Second/2) && l.maxGap < int64(simLeaseTTL*time.Second/2) {
				c.violation("lease %d was kept alive (last renewed %v ago, longest gap %v) but the leader %s no longer has it",
					l.id, time.Duration(gap), time.Duration(l.maxGap), lead.name())
			}
		}
	}
}

// checkLeases runs at the end of the liveness phase.
func (c *Cluster) checkLeases() {
	for _, l := range c.leases {
		if !l.granted {
			continue
		}
		if gap := c.now - l.last; gap > l.maxGap {
			l.maxGap = gap
		}
		for _, n := range c.nodes {
			if n.core == nil {
				continue
			}
			resp, err := n.core.KV().Range(&pb.RangeRequest{Key: []byte(l.key)})
			if err != nil {
				c.violation("reading %s on %s: %v", l.key, n.name(), err)
				continue
			}
			_, _, _, ttlErr := n.core.LeaseTimeToLive(l.id)
			exists := ttlErr == nil
			switch {
			case l.keep && !l.lost && l.maxGap < int64(simLeaseTTL*time.Second/2):
				if !exists || (l.keyPut && len(resp.GetKvs()) != 1) {
					c.violation("lease %d was kept alive (longest gap %v) but %s lost it (lease exists=%v, key present=%v)",
						l.id, time.Duration(l.maxGap), n.name(), exists, len(resp.GetKvs()) == 1)
				}
			case !l.keep:
				if exists || len(resp.GetKvs()) != 0 {
					c.violation("lease %d was abandoned %v ago but %s still holds it (lease exists=%v, key present=%v)",
						l.id, time.Duration(c.now-l.last), n.name(), exists, len(resp.GetKvs()) == 1)
				}
			}
		}
	}
}
