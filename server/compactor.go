package server

import (
	"context"
	"errors"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/mvcc"
)

// AutoCompaction configures etcd's --auto-compaction-mode and
// --auto-compaction-retention. The zero value compacts nothing.
type AutoCompaction struct {
	// Retention (periodic mode) keeps this much history: the leader
	// compacts to the revision it saw Retention ago, checking every
	// Retention/10 (at least every second, at most every hour), as etcd.
	Retention time.Duration
	// Revisions (revision mode) keeps this many revisions: every
	// CheckInterval the leader compacts to current-Revisions.
	Revisions int64
	// CheckInterval of revision mode; default 5 minutes, as etcd.
	CheckInterval time.Duration
}

func (a AutoCompaction) enabled() bool { return a.Retention > 0 || a.Revisions > 0 }

// revSample is the store's revision at a time.
type revSample struct {
	at  time.Time
	rev int64
}

// compactor runs on the production shell: only the leader proposes
// compactions, through raft like a client's.
func (s *Server) compactor() {
	a := s.cfg.AutoCompaction
	every := a.CheckInterval
	if a.Retention > 0 {
		every = min(max(a.Retention/10, time.Second), time.Hour)
	} else if every == 0 {
		every = 5 * time.Minute
	}
	// A timer re-armed after each check (rather than a ticker), so a check
	// never overlaps the next and a test on a fake clock knows, once the
	// timer is armed again, that the last check is done.
	t := s.clock.NewTimer(every)
	defer t.Stop()
	c := compaction{s: s, a: a}
	for {
		select {
		case <-s.stopc:
			return
		case <-s.donec:
			return
		case <-t.C():
			c.check(s.clock.Now())
		}
		t.Reset(every)
	}
}

// compaction is the compactor's state between checks.
type compaction struct {
	s       *Server
	a       AutoCompaction
	samples []revSample
	last    int64 // the last revision compacted to
}

// check compacts what the policy no longer keeps at now, on the leader.
func (c *compaction) check(now time.Time) {
	s, a := c.s, c.a
	rev := s.kv.Rev()
	var target int64
	if a.Retention > 0 {
		c.samples = append(c.samples, revSample{now, rev})
		// Compact to the newest sample at least Retention old.
		i := 0
		for i < len(c.samples) && now.Sub(c.samples[i].at) >= a.Retention {
			target = c.samples[i].rev
			i++
		}
		if i > 0 {
			c.samples = c.samples[i-1:]
		}
	} else {
		target = rev - a.Revisions
	}
	if target <= c.last || target <= s.kv.CompactRev() || s.Leader() != s.ID() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout)
	_, err := s.Compact(ctx, &pb.CompactionRequest{Revision: target})
	cancel()
	switch {
	case err == nil:
		c.last = target
		s.lg.Info("auto-compacted", zap.Int64("revision", target), zap.Duration("retention", a.Retention), zap.Int64("retained-revisions", a.Revisions))
	case errors.Is(err, mvcc.ErrCompacted):
		c.last = target
	default:
		s.lg.Warn("auto-compaction failed", zap.Int64("revision", target), zap.Error(err))
	}
}
