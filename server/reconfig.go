package server

import (
	"time"

	"go.uber.org/zap"

	"github.com/cairnkv/cairn/node"
)

// etcd's --strict-reconfig-check (on by default): a membership change that
// would leave the cluster without a quorum of started, connected voters is
// refused before it is proposed, with etcd's errors and rules.
//   - A member is started once it has published its name (a member added at
//     runtime is not, until it runs).
//   - A peer is connected when the transport has had a working stream to it
//     for HealthInterval (5 s); this member always counts as connected.
//   - Adding a voter needs a quorum of the grown cluster started and, unless
//     the cluster has one voter, connected.
//   - Removing a voter needs a quorum of the rest started and, unless the
//     member removed is down (no stream to it), still connected after it.
//   - Promoting a learner needs a quorum of the grown cluster started,
//     counting the learner.
// Learners are added and removed freely.

// HealthInterval is how long a peer must have been connected to count.
const HealthInterval = 5 * time.Second

// activity is what a transport tells of its streams to peers
// (transport.HTTP and transport.MemNetwork's members implement it).
type activity interface {
	// ActiveSince is when the stream to peer id began working; zero when
	// there is none.
	ActiveSince(id uint64) time.Time
}

func (s *Server) healthInterval() time.Duration {
	if s.cfg.healthInterval > 0 {
		return s.cfg.healthInterval
	}
	return HealthInterval
}

func voters(ms []node.Member) []node.Member {
	var out []node.Member
	for _, m := range ms {
		if !m.IsLearner {
			out = append(out, m)
		}
	}
	return out
}

func started(m node.Member) bool { return m.Name != "" }

// connectedSince counts this member and the members of ms it has been
// connected to since since.
func (s *Server) connectedSince(ms []node.Member, since time.Time) int {
	a, ok := s.tr.(activity)
	n := 0
	for _, m := range ms {
		if m.ID == s.ID() {
			n++
			continue
		}
		if !ok {
			continue
		}
		if t := a.ActiveSince(m.ID); !t.IsZero() && t.Before(since) {
			n++
		}
	}
	return n
}

func (s *Server) activeSince(id uint64) time.Time {
	if a, ok := s.tr.(activity); ok {
		return a.ActiveSince(id)
	}
	return time.Time{}
}

// mayAddVoter applies the rules to adding a voter to ms.
func (s *Server) mayAddVoter(ms []node.Member) error {
	if !s.cfg.StrictReconfigCheck {
		return nil
	}
	vs := voters(ms)
	nstarted := 0
	for _, m := range vs {
		if started(m) {
			nstarted++
		}
	}
	n := len(vs) + 1
	if !(nstarted == 1 && n == 2) && nstarted < n/2+1 {
		s.lg.Warn("rejecting member add: started members would be fewer than a quorum", zap.Int("started", nstarted), zap.Int("quorum", n/2+1))
		return ErrMemberNotEnoughStarted
	}
	if len(vs) > 1 && s.connectedSince(vs, time.Now().Add(-s.healthInterval())) < n/2+1 {
		s.lg.Warn("rejecting member add: this member has not been connected to a quorum of the grown cluster for " + HealthInterval.String())
		return ErrUnhealthy
	}
	return nil
}

// mayRemove applies the rules to removing member id from ms.
func (s *Server) mayRemove(ms []node.Member, id uint64) error {
	if m, ok := findMember(ms, id); ok && m.IsLearner {
		return nil
	}
	vs := voters(ms)
	rest, nstarted := 0, 0
	for _, m := range vs {
		if m.ID == id {
			continue
		}
		rest++
		if started(m) {
			nstarted++
		}
	}
	if rest == 0 || nstarted < rest/2+1 {
		// Removing the last voter is refused whatever the setting: raft
		// cannot run without one.
		if rest == 0 || s.cfg.StrictReconfigCheck {
			return ErrMemberNotEnoughStarted
		}
	}
	if !s.cfg.StrictReconfigCheck {
		return nil
	}
	if id != s.ID() && s.activeSince(id).IsZero() {
		return nil // a member that is down is not part of the active quorum
	}
	if active := s.connectedSince(vs, time.Now().Add(-s.healthInterval())); active-1 < 1+(len(vs)-1)/2 {
		s.lg.Warn("rejecting member remove: the members left connected would be fewer than a quorum", zap.Int("connected", active))
		return ErrUnhealthy
	}
	return nil
}

// mayPromote applies the rules to promoting a learner of ms.
func (s *Server) mayPromote(ms []node.Member) error {
	if !s.cfg.StrictReconfigCheck {
		return nil
	}
	vs := voters(ms)
	n, nstarted := len(vs)+1, 1
	for _, m := range vs {
		if started(m) {
			nstarted++
		}
	}
	if nstarted < n/2+1 {
		return ErrMemberNotEnoughStarted
	}
	return nil
}
