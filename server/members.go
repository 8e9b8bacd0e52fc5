package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/node"
)

// The Cluster API's membership changes (api.ClusterBackend). Each is one
// ConfChangeV2 through raft; the response lists the members as applied.

// proposeConfChange proposes a membership change and waits for its apply.
func (s *Server) proposeConfChange(ctx context.Context, typ raftpb.ConfChangeType, m node.Member) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	done := make(chan node.Result, 1)
	errc := make(chan error, 1)
	var id uint64
	id64 := m.ID
	cc := &raftpb.ConfChangeV2{Changes: []*raftpb.ConfChangeSingle{{Type: typ.Enum(), NodeId: &id64}}}
	if err := s.do(ctx, func() {
		var err error
		id, err = s.core.ProposeConfChange(cc, m, func(r node.Result) { done <- r })
		errc <- err
	}); err != nil {
		return err
	}
	select {
	case err := <-errc:
		if err != nil {
			return s.proposeError(err)
		}
	case <-s.donec:
		return node.ErrStopped
	}
	select {
	case r := <-done:
		return ctxError(r.Err)
	case <-ctx.Done():
		_ = s.do(context.Background(), func() { s.core.Forget(id) })
		return s.timeoutError(ctx)
	case <-s.donec:
		return node.ErrStopped
	}
}

func (s *Server) members(ctx context.Context) ([]node.Member, error) {
	var ms []node.Member
	if err := s.onLoop(ctx, func() { ms = s.core.Members() }); err != nil {
		return nil, err
	}
	return ms, nil
}

func toPBMembers(ms []node.Member) []*pb.Member {
	out := make([]*pb.Member, 0, len(ms))
	for _, m := range ms {
		out = append(out, &pb.Member{ID: m.ID, Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs, IsLearner: m.IsLearner})
	}
	return out
}

func (s *Server) clusterHeader() *pb.ResponseHeader {
	return &pb.ResponseHeader{ClusterId: s.ClusterID(), MemberId: s.ID(), RaftTerm: s.Term()}
}

// findMember returns the member with id.
func findMember(ms []node.Member, id uint64) (node.Member, bool) {
	for _, m := range ms {
		if m.ID == id {
			return m, true
		}
	}
	return node.Member{}, false
}

// peerURLsInUse tells whether a member other than self owns one of urls.
func peerURLsInUse(ms []node.Member, self uint64, urls []string) bool {
	for _, m := range ms {
		if m.ID == self {
			continue
		}
		for _, u := range m.PeerURLs {
			if slices.Contains(urls, u) {
				return true
			}
		}
	}
	return false
}

// learners counts the learners among ms.
func learners(ms []node.Member) int {
	n := 0
	for _, m := range ms {
		if m.IsLearner {
			n++
		}
	}
	return n
}

func (s *Server) maxLearners() int {
	if s.cfg.MaxLearners > 0 {
		return s.cfg.MaxLearners
	}
	return 1
}

// MemberAdd adds a voter or a learner. Its ID comes from its peer URLs,
// the cluster token and the time, so re-adding the same URLs later gets a
// new ID, as in etcd.
func (s *Server) MemberAdd(ctx context.Context, r *pb.MemberAddRequest) (*pb.MemberAddResponse, error) {
	ms, err := s.members(ctx)
	if err != nil {
		return nil, err
	}
	if peerURLsInUse(ms, 0, r.GetPeerURLs()) {
		return nil, ErrPeerURLExist
	}
	if r.GetIsLearner() && learners(ms) >= s.maxLearners() {
		return nil, ErrTooManyLearners
	}
	if !r.GetIsLearner() {
		if err := s.mayAddVoter(ms); err != nil {
			return nil, err
		}
	}
	m := node.Member{
		ID:        node.MemberID(r.GetPeerURLs(), fmt.Sprintf("%s/%d", s.cfg.Core.ClusterToken, time.Now().UnixNano())),
		PeerURLs:  append([]string(nil), r.GetPeerURLs()...),
		IsLearner: r.GetIsLearner(),
	}
	typ := raftpb.ConfChangeAddNode
	if m.IsLearner {
		typ = raftpb.ConfChangeAddLearnerNode
	}
	if err := s.proposeConfChange(ctx, typ, m); err != nil {
		return nil, err
	}
	s.lg.Info("added member", zap.String("member-id", fmt.Sprintf("%x", m.ID)), zap.Strings("peer-urls", m.PeerURLs), zap.Bool("learner", m.IsLearner))
	if ms, err = s.members(ctx); err != nil {
		return nil, err
	}
	return &pb.MemberAddResponse{Header: s.clusterHeader(), Member: &pb.Member{ID: m.ID, PeerURLs: m.PeerURLs, IsLearner: m.IsLearner}, Members: toPBMembers(ms)}, nil
}

// changeMember applies a conf change of type typ to the existing member
// id, after edit adjusts what the change carries, and returns the members
// as applied.
func (s *Server) changeMember(ctx context.Context, id uint64, typ raftpb.ConfChangeType, edit func(*node.Member)) ([]*pb.Member, error) {
	ms, err := s.members(ctx)
	if err != nil {
		return nil, err
	}
	m, ok := findMember(ms, id)
	if !ok {
		return nil, ErrMemberNotFound
	}
	if edit != nil {
		edit(&m)
	}
	if err := s.proposeConfChange(ctx, typ, m); err != nil {
		return nil, err
	}
	if ms, err = s.members(ctx); err != nil {
		return nil, err
	}
	return toPBMembers(ms), nil
}

// MemberRemove removes a member, refusing to remove the last voter (raft
// cannot run without one) and, with --strict-reconfig-check, a removal
// that would break the active quorum (reconfig.go).
func (s *Server) MemberRemove(ctx context.Context, r *pb.MemberRemoveRequest) (*pb.MemberRemoveResponse, error) {
	cur, err := s.members(ctx)
	if err != nil {
		return nil, err
	}
	if _, ok := findMember(cur, r.GetID()); !ok {
		return nil, ErrMemberNotFound
	}
	if err := s.mayRemove(cur, r.GetID()); err != nil {
		return nil, err
	}
	if r.GetID() == s.ID() && s.Leader() == s.ID() {
		s.handOverLeadership(ctx)
	}
	ms, err := s.changeMember(ctx, r.GetID(), raftpb.ConfChangeRemoveNode, nil)
	if err != nil {
		return nil, err
	}
	return &pb.MemberRemoveResponse{Header: s.clusterHeader(), Members: ms}, nil
}

// MemberUpdate changes a member's peer URLs, refusing URLs another member
// owns.
func (s *Server) MemberUpdate(ctx context.Context, r *pb.MemberUpdateRequest) (*pb.MemberUpdateResponse, error) {
	cur, err := s.members(ctx)
	if err != nil {
		return nil, err
	}
	if peerURLsInUse(cur, r.GetID(), r.GetPeerURLs()) {
		return nil, ErrPeerURLExist
	}
	ms, err := s.changeMember(ctx, r.GetID(), raftpb.ConfChangeUpdateNode, func(m *node.Member) {
		m.PeerURLs = append([]string(nil), r.GetPeerURLs()...)
	})
	if err != nil {
		return nil, err
	}
	return &pb.MemberUpdateResponse{Header: s.clusterHeader(), Members: ms}, nil
}

// findLearner returns the members and among them id, which must be a learner.
func (s *Server) findLearner(ctx context.Context, id uint64) ([]node.Member, node.Member, error) {
	ms, err := s.members(ctx)
	if err != nil {
		return nil, node.Member{}, err
	}
	m, ok := findMember(ms, id)
	switch {
	case !ok:
		return nil, node.Member{}, ErrMemberNotFound
	case !m.IsLearner:
		return nil, node.Member{}, ErrMemberNotLearner
	}
	return ms, m, nil
}

// MemberPromote makes a learner a voter, once it has caught up with the
// leader (etcd's rule: its log within 10% of the leader's).
func (s *Server) MemberPromote(ctx context.Context, r *pb.MemberPromoteRequest) (*pb.MemberPromoteResponse, error) {
	if _, _, err := s.findLearner(ctx, r.GetID()); err != nil {
		return nil, err
	}
	if lead := s.Leader(); lead == 0 {
		return nil, ErrNoLeader
	} else if lead != s.ID() {
		// Only the leader knows how far the learner got: ask it, over
		// the peer port (promotepeer.go).
		var resp pb.MemberPromoteResponse
		err := s.peerCall(ctx, MemberPromotePath, &pb.MemberPromoteRequest{ID: r.GetID()}, &resp)
		if errors.Is(err, errNoLeasePeerPath) {
			// A leader of an older version: its client URL, with
			// the caller's token.
			conn, err := s.leaderConn(ctx)
			if err != nil {
				return nil, err
			}
			return pb.NewClusterClient(conn).MemberPromote(forwardContext(ctx), r)
		}
		if err != nil {
			return nil, err
		}
		return &resp, nil
	}
	return s.promoteLocal(ctx, r)
}

// promoteLocal promotes on the leader, with no auth check (the API layer
// made it, or the member that forwarded the request).
func (s *Server) promoteLocal(ctx context.Context, r *pb.MemberPromoteRequest) (*pb.MemberPromoteResponse, error) {
	ms, m, err := s.findLearner(ctx, r.GetID())
	if err != nil {
		return nil, err
	}
	ready := false
	if err := s.onLoop(ctx, func() {
		st := s.core.Status()
		if pr, ok := st.Progress[m.ID]; ok {
			commit := st.HardState.GetCommit()
			ready = commit == 0 || float64(pr.Match) >= 0.9*float64(commit)
		}
	}); err != nil {
		return nil, err
	}
	if !ready {
		return nil, ErrLearnerNotReady
	}
	if err := s.mayPromote(ms); err != nil {
		return nil, err
	}
	pms, err := s.changeMember(ctx, m.ID, raftpb.ConfChangeAddNode, func(m *node.Member) { m.IsLearner = false })
	if err != nil {
		return nil, err
	}
	s.met.learnerPromotes.Inc() // as etcd: counted by the leader that promoted
	return &pb.MemberPromoteResponse{Header: s.clusterHeader(), Members: pms}, nil
}

// Members lists the members as this member has applied them.
func (s *Server) Members(ctx context.Context) ([]node.Member, error) { return s.members(ctx) }

// handOverLeadership moves the leadership of a leader about to remove
// itself to the voter whose log is the most complete, so the others go on
// at once instead of waiting out an election timeout without a leader
// (etcd leaves them so). If it cannot, the removal goes ahead anyway, as
// in etcd: the others elect a leader when their timeout runs out.
func (s *Server) handOverLeadership(ctx context.Context) {
	var target, best uint64
	if err := s.onLoop(ctx, func() {
		st := s.core.Status()
		learners := map[uint64]bool{}
		for _, m := range s.core.Members() {
			learners[m.ID] = m.IsLearner
		}
		for id, pr := range st.Progress {
			if id == s.ID() || learners[id] || !pr.RecentActive {
				continue
			}
			if target == 0 || pr.Match > best || (pr.Match == best && id < target) {
				target, best = id, pr.Match
			}
		}
	}); err != nil || target == 0 {
		return
	}
	if _, err := s.MoveLeader(ctx, target); err != nil {
		s.lg.Warn("could not move the leadership before removing this member; removing it anyway",
			zap.String("to", fmt.Sprintf("%x", target)), zap.Error(err))
		return
	}
	s.lg.Info("moved the leadership before removing this member", zap.String("to", fmt.Sprintf("%x", target)))
}
