package server

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/cairnkv/cairn/node"
)

// Etcd's initial election tick advance for a member of a cluster of more
// than one: once it is connected to more than one peer (within
// tickAdvanceWait of starting), it fast-forwards its election clock to two
// ticks before the timeout, so a cluster that restarts together elects a
// leader about an election timeout sooner, while a member that joins a
// running cluster still hears the leader's heartbeat before it would
// campaign. A one-member cluster advances in the core.
const (
	tickAdvanceWait = 5 * time.Second // etcd's rafthttp.ConnReadTimeout
	tickAdvancePoll = 50 * time.Millisecond
)

func (s *Server) advanceTicks() {
	started := false
	for range int(tickAdvanceWait / tickAdvancePoll) {
		select {
		case <-s.clock.After(tickAdvancePoll):
		case <-s.stopc:
			return
		}
		// The members are known once the log's configuration is applied
		// (at once for a restart, a moment after a new cluster starts).
		ms, err := s.members(context.Background())
		if err != nil {
			return
		}
		if len(ms) == 1 && ms[0].ID == s.ID() {
			return // a one-member cluster advances in the core
		}
		if len(ms) <= 1 {
			continue
		}
		if !started {
			started = true
			if s.cfg.Core.NoInitialElectionTickAdvance {
				s.lg.Info("skipping initial election tick advance", zap.Int("election-ticks", s.electionTicks()))
				return
			}
			s.lg.Info("starting initial election tick advance", zap.Int("election-ticks", s.electionTicks()))
		}
		active := 0
		for _, m := range ms {
			if m.ID != s.ID() && !s.activeSince(m.ID).IsZero() {
				active++
			}
		}
		if active > 1 {
			ticks := s.electionTicks() - 2
			s.lg.Info("initialized peer connections; fast-forwarding election ticks",
				zap.Int("forward-ticks", ticks), zap.Duration("forward-duration", time.Duration(ticks)*s.cfg.Core.TickInterval),
				zap.Int("election-ticks", s.electionTicks()), zap.Int("active-remote-members", active))
			_ = s.do(context.Background(), func() { s.core.AdvanceTicks(ticks) })
			return
		}
	}
}

func (s *Server) electionTicks() int {
	if s.cfg.Core.ElectionTicks > 0 {
		return s.cfg.Core.ElectionTicks
	}
	return node.DefaultElectionTicks
}
