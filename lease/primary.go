package lease

import (
	"time"

	"go.uber.org/zap"
)

// Checkpoint is a remaining-TTL checkpoint for the node to replicate
// (etcd's LeaseCheckpoint): Remaining is in seconds, 0 clears the
// lease's checkpoint.
type Checkpoint struct {
	ID        int64
	Remaining int64
}

// Promote makes l the primary (its member became the raft leader): every
// lease expires at now + (its checkpointed remaining TTL, else its granted
// TTL) + extend. The node passes an election timeout as extend, as etcd
// does, so that clients have time to find the new leader and renew.
// Checkpoints are scheduled one CheckpointInterval from now. Promoting a
// primary starts every countdown again.
func (l *Lessor) Promote(extend time.Duration) {
	now := l.cfg.Clock.Now()
	l.primary = true
	all := make([]*lease, 0, len(l.leases))
	long := make([]*lease, 0)
	for _, le := range l.leases {
		base := le.ttl
		if le.remaining > 0 {
			base = le.remaining
		}
		le.expiry = now.Add(seconds(base)).Add(extend)
		le.exp.at = le.expiry
		le.clearCheck = false
		all = append(all, le)
		if l.wantsCheckpoints(le) {
			le.cp.at = now.Add(l.cfg.CheckpointInterval)
			long = append(long, le)
		}
	}
	l.expiry.build(all)
	l.checks.build(long)
	l.cfg.Logger.Info("lessor promoted", zap.Int("leases", len(all)), zap.Duration("extend", extend))
}

// Demote makes l a follower (its member lost leadership): nothing
// expires, Renew is refused and no checkpoints are due until the next
// Promote.
func (l *Lessor) Demote() {
	if !l.primary {
		return
	}
	l.primary = false
	l.expiry.reset()
	l.checks.reset()
	for _, le := range l.leases {
		le.expiry = time.Time{}
		le.clearCheck = false
	}
	l.cfg.Logger.Info("lessor demoted")
}

// IsPrimary tells whether l is the primary.
func (l *Lessor) IsPrimary() bool { return l.primary }

// Renew keeps lease id alive (one keep-alive): it now expires its granted
// TTL from now, which Renew returns. It fails with ErrNotPrimary on a
// follower and ErrLeaseNotFound if id is not granted or has already
// expired: an expired lease's revoke is under way (or will be retried),
// and a renewal that raced it would tell the client its keys live on
// when they are about to be deleted (etcd waits for that revoke and then
// answers the same). If the lease carries a checkpointed remaining TTL,
// Renew makes a checkpoint clearing it due at once, so that a leader
// change does not cut the renewed lease back to that stale value.
func (l *Lessor) Renew(id int64) (ttl int64, err error) {
	if !l.primary {
		return 0, ErrNotPrimary
	}
	le, ok := l.leases[id]
	if !ok {
		return 0, ErrLeaseNotFound
	}
	now := l.cfg.Clock.Now()
	if !now.Before(le.expiry) {
		return 0, ErrLeaseNotFound
	}
	l.startCountdown(le, now, seconds(le.ttl))
	if le.remaining > 0 {
		le.clearCheck = true
		l.checks.set(le, now)
	}
	return le.ttl, nil
}

// Expired returns, on the primary, up to max IDs of expired leases (now
// at or past their expiry) in expiry order, ties by ID; the node proposes
// a revoke for each (see DefaultRevokeRate and RevokesPerTick for max).
// A lease returned is not returned again for ExpiredRetryInterval, in
// case its revoke proposal was lost; its revoke or a new Promote ends
// that. A follower, or max <= 0, gets nil. O(k log n) for k returned.
func (l *Lessor) Expired(max int) []int64 {
	if !l.primary || max <= 0 {
		return nil
	}
	now := l.cfg.Clock.Now()
	var ids []int64
	for len(ids) < max {
		le := l.expiry.peek()
		if le == nil || now.Before(le.exp.at) {
			break
		}
		ids = append(ids, le.id)
		l.expiry.set(le, now.Add(ExpiredRetryInterval))
	}
	return ids
}

// DueCheckpoints returns, on the primary, up to max checkpoints due now,
// in due order, for the node to replicate (see MaxCheckpointBatch). A
// lease whose TTL exceeds CheckpointInterval is due every interval, with
// its remaining TTL rounded up to whole seconds; a renewed lease carrying
// a checkpoint is due at once with Remaining 0 (clearing it), until a
// Checkpoint(id, 0) applies. Expired leases are skipped (their revoke is
// due instead). A follower, or max <= 0, gets nil.
func (l *Lessor) DueCheckpoints(max int) []Checkpoint {
	if !l.primary || max <= 0 {
		return nil
	}
	now := l.cfg.Clock.Now()
	var cps []Checkpoint
	for len(cps) < max {
		le := l.checks.peek()
		if le == nil || now.Before(le.cp.at) {
			break
		}
		switch {
		case le.clearCheck:
			cps = append(cps, Checkpoint{ID: le.id})
		case now.Before(le.expiry):
			cps = append(cps, Checkpoint{ID: le.id, Remaining: ceilSeconds(le.expiry.Sub(now))})
		}
		if l.wantsCheckpoints(le) {
			l.checks.set(le, now.Add(l.cfg.CheckpointInterval))
		} else {
			l.checks.remove(le)
		}
	}
	return cps
}

// TimeToLive returns lease id's granted TTL, remaining TTL and attached
// keys (sorted), all in seconds. The primary computes the remaining TTL
// from its clock (whole seconds, truncated as etcd does, 0 once expired);
// a follower reports the checkpointed remaining TTL, else the granted TTL.
// ErrLeaseNotFound if id is not granted.
func (l *Lessor) TimeToLive(id int64) (granted, remaining int64, keys [][]byte, err error) {
	le, ok := l.leases[id]
	if !ok {
		return 0, 0, nil, ErrLeaseNotFound
	}
	switch {
	case l.primary:
		remaining = max(int64(le.expiry.Sub(l.cfg.Clock.Now())/time.Second), 0)
	case le.remaining > 0:
		remaining = le.remaining
	default:
		remaining = le.ttl
	}
	return le.ttl, remaining, sortedKeys(le), nil
}

// startCountdown makes le expire d after now (primary only).
func (l *Lessor) startCountdown(le *lease, now time.Time, d time.Duration) {
	le.expiry = now.Add(d)
	l.expiry.set(le, le.expiry)
}

// scheduleCheckpoint makes le's first checkpoint due one interval from
// now if its TTL is long enough to need checkpoints (primary only).
func (l *Lessor) scheduleCheckpoint(le *lease, now time.Time) {
	if l.wantsCheckpoints(le) {
		l.checks.set(le, now.Add(l.cfg.CheckpointInterval))
	}
}

// wantsCheckpoints: leases not longer than the checkpoint interval are
// never checkpointed (a leader change restarts them from their TTL, which
// is within the promised bound), as in etcd.
func (l *Lessor) wantsCheckpoints(le *lease) bool {
	return seconds(le.ttl) > l.cfg.CheckpointInterval || le.remaining > 0
}

// ceilSeconds rounds d up to whole seconds.
func ceilSeconds(d time.Duration) int64 {
	s := int64(d / time.Second)
	if d%time.Second > 0 {
		s++
	}
	return s
}
