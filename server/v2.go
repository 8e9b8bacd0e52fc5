package server

import (
	"context"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/v2store"
)

// V2SyncInterval is how often the leader looks for expired v2 keys, as
// etcd's leader proposes its SYNC every 500ms.
const V2SyncInterval = 500 * time.Millisecond

// V2Store is the v2 API's tree on this member (reads and waits).
func (s *Server) V2Store() *v2store.Store { return s.core.V2() }

// V2Refused tells whether the v2 API is refused: v3 authentication is on,
// and Cairn has no v2 authentication (the core refuses v2 writes then too).
func (s *Server) V2Refused() bool { return s.authStore().Enabled() }

// CommittedIndex is the raft commit index as last seen by the loop (etcd's
// X-Raft-Index on v2 reads).
func (s *Server) CommittedIndex() uint64 { return s.committed.Load() }

// V2Do replicates a v2 request (a write, or a GET with quorum as QGET) and
// returns its event and the raft index it was applied at. The error is a
// *v2store.Error for the request's own outcome, else the server's.
func (s *Server) V2Do(ctx context.Context, r *v2store.Request) (*v2store.Event, uint64, error) {
	ir := &pb.InternalRaftRequest{}
	v2store.Attach(ir, r)
	res, err := s.propose(ctx, ir)
	if err != nil {
		return nil, 0, err
	}
	return res.V2, res.Index, nil
}

// RunV2Expiry proposes, while this member leads, a SYNC with this member's
// time whenever a v2 key's expiration has passed, as etcd's leader does:
// every member then removes the expired keys at the same point of the log.
// It returns when the server stops.
func (s *Server) RunV2Expiry() {
	t := time.NewTicker(V2SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-s.donec:
			return
		case <-t.C:
		}
		if s.Leader() != s.ID() || s.V2Refused() {
			// (While v3 auth refuses the v2 API, expiry waits: the keys
			// are out of reach, and go at the first SYNC after.)
			continue
		}
		now := s.clock.Now().UnixNano()
		if next := s.V2Store().NextExpiry(); next == 0 || next > now {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout)
		if _, _, err := s.V2Do(ctx, &v2store.Request{Method: "SYNC", Time: now}); err != nil {
			s.lg.Warn("proposing the expiry of v2 keys", zap.Error(err))
		}
		cancel()
	}
}
