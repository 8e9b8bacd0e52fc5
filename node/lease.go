package node

import (
	"errors"
	"fmt"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/lease"
)

// Leases. Grant, revoke and checkpoints are raft entries applied on every
// member alike; keys attach to leases as puts apply (through the store's
// event hook, so puts inside txns and deletes of every kind are covered).
// Only the leader expires leases: each tick it proposes revokes for at most
// lease.RevokesPerTick expired leases (etcd's 1000/s default revoke rate,
// so a burst of expiries never starves client writes) and a batch of
// remaining-TTL checkpoints, so a new leader neither cuts nor extends a
// lease beyond an election timeout.

func (c *Core) tickDuration() time.Duration { return c.cfg.TickInterval }

func (c *Core) electionTimeout() time.Duration {
	return time.Duration(c.cfg.ElectionTicks) * c.cfg.TickInterval
}

// openLessor loads leases from the store and attaches the keys that carry
// them. It runs at start and after a snapshot replaced the database.
func (c *Core) openLessor() error {
	l, err := lease.New(lease.Config{
		Clock:              c.cfg.Clock,
		MinTTL:             lease.MinTTLFor(c.electionTimeout()),
		CheckpointInterval: c.cfg.LeaseCheckpointInterval,
		Logger:             c.cfg.Logger,
	}, c.kv)
	if err != nil {
		return fmt.Errorf("node: loading leases: %w", err)
	}
	var err2 error
	l.RebuildAttachments(func(fn func(key []byte, lease int64)) {
		err2 = c.kv.LeasedKeys(fn)
	})
	if err2 != nil {
		return fmt.Errorf("node: attaching leased keys: %w", err2)
	}
	if (c.lessor != nil && c.lessor.IsPrimary()) || c.cfg.Bugs.followersExpireLeases() {
		l.Promote(c.electionTimeout())
	}
	c.lessor = l
	c.kv.SetEventHook(c.onEvents)
	return nil
}

// onEvents keeps lease attachments in step with every write.
func (c *Core) onEvents(_ int64, evs []*mvccpb.Event) {
	for _, ev := range evs {
		kv := ev.GetKv()
		if ev.GetType() == mvccpb.PUT && kv.GetLease() != 0 {
			if err := c.lessor.Attach(kv.GetLease(), kv.GetKey()); err != nil {
				// Apply checks leases before writing, so this is our bug.
				c.lg.Error("attaching key to a missing lease", zap.Int64("lease", kv.GetLease()), zap.ByteString("key", kv.GetKey()))
			}
			continue
		}
		c.lessor.DetachKey(kv.GetKey())
	}
}

// checkLeases returns ErrLeaseNotFound if a put of r names a lease that does
// not exist. Every put of a txn, in both branches, is checked.
func (c *Core) checkLeases(r *pb.InternalRaftRequest) error {
	var check func(ops []*pb.RequestOp) error
	checkPut := func(p *pb.PutRequest) error {
		if p.GetLease() == 0 {
			return nil
		}
		if _, ok := c.lessor.Lookup(p.GetLease()); !ok {
			return lease.ErrLeaseNotFound
		}
		return nil
	}
	check = func(ops []*pb.RequestOp) error {
		for _, op := range ops {
			if p := op.GetRequestPut(); p != nil {
				if err := checkPut(p); err != nil {
					return err
				}
			}
			if t := op.GetRequestTxn(); t != nil {
				if err := check(t.GetSuccess()); err != nil {
					return err
				}
				if err := check(t.GetFailure()); err != nil {
					return err
				}
			}
		}
		return nil
	}
	switch {
	case r.GetPut() != nil:
		return checkPut(r.GetPut())
	case r.GetTxn() != nil:
		if err := check(r.GetTxn().GetSuccess()); err != nil {
			return err
		}
		return check(r.GetTxn().GetFailure())
	}
	return nil
}

func (c *Core) applyLeaseGrant(r *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error) {
	l, err := c.lessor.Grant(r.GetID(), r.GetTTL())
	if err != nil {
		return nil, err
	}
	return &pb.LeaseGrantResponse{Header: c.Header(c.kv.Rev()), ID: l.ID, TTL: l.TTL}, nil
}

// applyLeaseRevoke revokes a lease and deletes its keys in one revision.
func (c *Core) applyLeaseRevoke(r *pb.LeaseRevokeRequest) (*pb.LeaseRevokeResponse, error) {
	keys, err := c.lessor.Revoke(r.GetID())
	if err != nil {
		return nil, err
	}
	if len(keys) > 0 {
		txn := &pb.TxnRequest{}
		for _, k := range keys {
			txn.Success = append(txn.Success, &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: k}}})
		}
		if _, err := c.kv.Txn(txn); err != nil {
			return nil, fmt.Errorf("deleting the keys of lease %d: %w", r.GetID(), err)
		}
	}
	return &pb.LeaseRevokeResponse{Header: c.Header(c.kv.Rev())}, nil
}

func (c *Core) applyLeaseCheckpoint(r *pb.LeaseCheckpointRequest) *pb.LeaseCheckpointResponse {
	for _, cp := range r.GetCheckpoints() {
		if err := c.lessor.Checkpoint(cp.GetID(), cp.GetRemaining_TTL()); err != nil && !errors.Is(err, lease.ErrLeaseNotFound) {
			c.lg.Warn("lease checkpoint", zap.Int64("lease", cp.GetID()), zap.Error(err))
		}
	}
	return &pb.LeaseCheckpointResponse{Header: c.Header(c.kv.Rev())}
}

func (c *Core) expiredUnlessCorrupt() []int64 {
	if c.corrupt() {
		return nil
	}
	return c.lessor.Expired(lease.RevokesPerTick(lease.DefaultRevokeRate, c.tickDuration()))
}

// leaseDuties runs on the leader every tick: revoke expired leases and
// checkpoint remaining TTLs, both through raft.
func (c *Core) leaseDuties() {
	if !c.lessor.IsPrimary() {
		return
	}
	// While the cluster is CORRUPT, revokes would be refused at apply;
	// expired leases are revoked once the alarm is cleared.
	var revoked func(Result)
	if observe := c.cfg.ObserveLeaseExpired; observe != nil {
		revoked = func(r Result) {
			if r.Err == nil {
				observe()
			}
		}
	}
	for _, id := range c.expiredUnlessCorrupt() {
		if _, err := c.Propose(&pb.InternalRaftRequest{Header: rootHeader(), LeaseRevoke: &pb.LeaseRevokeRequest{ID: id}}, revoked); err != nil {
			c.lg.Debug("proposing lease revoke", zap.Int64("lease", id), zap.Error(err))
		}
	}
	if cps := c.lessor.DueCheckpoints(lease.MaxCheckpointBatch); len(cps) > 0 {
		req := &pb.LeaseCheckpointRequest{}
		for _, cp := range cps {
			req.Checkpoints = append(req.Checkpoints, &pb.LeaseCheckpoint{ID: cp.ID, Remaining_TTL: cp.Remaining})
		}
		if _, err := c.Propose(&pb.InternalRaftRequest{LeaseCheckpoint: req}, nil); err != nil {
			c.lg.Debug("proposing lease checkpoints", zap.Error(err))
		}
	}
}

// NextLeaseID returns an ID for a lease the client did not name: positive,
// unique across this member's restarts, as etcd's.
func (c *Core) NextLeaseID() int64 {
	for {
		if id := int64(c.idGen.next() & (1<<63 - 1)); id != 0 {
			return id
		}
	}
}

// LeaseRenew renews a lease on the leader. Leadership is confirmed first
// by a ReadIndex round (a quorum acknowledged this leader in this term): a
// leader cut off from the cluster, which still believes it leads until
// check-quorum demotes it, must not accept keep-alives the new leader never
// sees, or the new leader would revoke a lease its client kept alive.
// done is called from a later Process or Tick.
func (c *Core) LeaseRenew(id int64, done func(ttl int64, err error)) {
	if !c.lessor.IsPrimary() {
		done(0, lease.ErrNotPrimary)
		return
	}
	term := c.term
	c.ReadIndex(func(err error) {
		switch {
		case err != nil:
			done(0, err)
		case !c.IsLeader() || c.term != term || !c.lessor.IsPrimary():
			done(0, lease.ErrNotPrimary)
		default:
			done(c.lessor.Renew(id))
		}
	})
}

// LeaseTimeToLive reports a lease's TTLs and keys.
func (c *Core) LeaseTimeToLive(id int64) (granted, remaining int64, keys [][]byte, err error) {
	return c.lessor.TimeToLive(id)
}

// Leases lists the leases.
func (c *Core) Leases() []*lease.Lease { return c.lessor.Leases() }
