package node

import (
	"encoding/binary"

	"go.etcd.io/raft/v3"
)

// readQueue batches linearizable reads: every read queued while no raft
// ReadIndex round is outstanding joins the next round, so one round trip
// serves them all.
type readQueue struct {
	pending []func(error) // waiting for the next round
	rounds  []*readRound  // issued rounds, oldest first
	nextCtx uint64
	// slow is Config.ObserveSlowReadIndex (nil: not observed).
	slow func()
}

type readRound struct {
	ctx     uint64
	index   uint64 // 0 until raft answers
	issued  uint64 // core tick count when (re)issued
	waiters []func(error)
}

func ctxBytes(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}

// canIssue tells whether a new round should start.
func (q *readQueue) canIssue() bool {
	if len(q.pending) == 0 {
		return false
	}
	for _, r := range q.rounds {
		if r.index == 0 {
			return false // one unanswered round at a time
		}
	}
	return true
}

func (q *readQueue) issue(c *Core) {
	if !q.canIssue() {
		return
	}
	q.nextCtx++
	r := &readRound{ctx: q.nextCtx, issued: c.ticks, waiters: q.pending}
	q.pending = nil
	q.rounds = append(q.rounds, r)
	c.rn.ReadIndex(ctxBytes(r.ctx))
}

// retry re-issues a round raft has not answered within an election timeout:
// raft drops ReadIndex requests when no leader is known.
func (q *readQueue) retry(c *Core) {
	for _, r := range q.rounds {
		if r.index == 0 && c.ticks-r.issued >= uint64(c.cfg.ElectionTicks) {
			if q.slow != nil {
				q.slow()
			}
			q.ask(c, r)
		}
	}
}

// reissue re-issues every unanswered round at once: a leader has just
// become known, and the rounds asked before were dropped.
func (q *readQueue) reissue(c *Core) {
	for _, r := range q.rounds {
		if r.index == 0 {
			q.ask(c, r)
		}
	}
}

// ask sends round r to raft under a fresh context, so an answer to an
// earlier asking is never taken for this one.
func (q *readQueue) ask(c *Core, r *readRound) {
	q.nextCtx++
	r.ctx, r.issued = q.nextCtx, c.ticks
	c.rn.ReadIndex(ctxBytes(r.ctx))
}

// resolve takes raft's answer to a round. An answer to no unanswered
// round is out of date (to a round asked again since): etcd counts it as
// a slow read index, and so does q.slow.
func (q *readQueue) resolve(rs raft.ReadState) {
	if len(rs.RequestCtx) != 8 {
		return
	}
	ctx := binary.BigEndian.Uint64(rs.RequestCtx)
	for _, r := range q.rounds {
		if r.ctx == ctx && r.index == 0 {
			r.index = rs.Index
			return
		}
	}
	if q.slow != nil {
		q.slow()
	}
}

// answer completes every round whose read index has been applied.
func (q *readQueue) answer(applied uint64) {
	kept := q.rounds[:0]
	for _, r := range q.rounds {
		if r.index != 0 && r.index <= applied {
			for _, w := range r.waiters {
				w(nil)
			}
			continue
		}
		kept = append(kept, r)
	}
	for i := len(kept); i < len(q.rounds); i++ {
		q.rounds[i] = nil
	}
	q.rounds = kept
}

func (q *readQueue) failAll(err error) {
	for _, w := range q.pending {
		w(err)
	}
	for _, r := range q.rounds {
		for _, w := range r.waiters {
			w(err)
		}
	}
	q.pending, q.rounds = nil, nil
}
