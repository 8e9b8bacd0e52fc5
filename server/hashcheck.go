package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/node"
)

// The compact hash check, on by default (etcd has it behind an alpha
// feature gate). Every CompactHashCheckTime the leader takes the latest
// compacted revision R, hashes its own key space at R, asks every other
// member for its hash at R over the peer listener (HashKVPath), and lets
// node.FindCorrupt decide. Each member found diverging gets a CORRUPT alarm,
// through raft, which makes the whole cluster refuse writes (node.ErrCorrupt)
// until an operator replaces the member and disarms the alarm. A revision is
// checked until it is decided; a later compaction moves the check on.

// HashKVPath is served on the peer listener: this member's hash of its key
// space at ?rev= (mvcc.Store.HashKV), as JSON.
const HashKVPath = "/cairn/hashkv"

// DefaultCompactHashCheckTime is etcd's --compact-hash-check-time default.
const DefaultCompactHashCheckTime = time.Minute

// hashKVDoc is HashKVPath's answer.
type hashKVDoc struct {
	Hash            uint32 `json:"hash"`
	Revision        int64  `json:"revision"`
	CompactRevision int64  `json:"compactRevision"`
}

// HashKVHandler serves HashKVPath.
func (s *Server) HashKVHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rev, err := strconv.ParseInt(r.URL.Query().Get("rev"), 10, 64)
		if err != nil || rev <= 0 {
			http.Error(w, "cairn: rev must be a positive revision", http.StatusBadRequest)
			return
		}
		h, hashRev, compactRev, err := s.hashKV(rev)
		if err != nil {
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(hashKVDoc{Hash: h, Revision: hashRev, CompactRevision: compactRev})
	})
}

// hashChecker runs the check on the leader until the server stops.
func (s *Server) hashChecker() {
	every := s.cfg.CompactHashCheckTime
	if every == 0 {
		every = DefaultCompactHashCheckTime
	}
	t := s.clock.NewTimer(every)
	defer t.Stop()
	var checked int64 // the last revision decided
	for {
		select {
		case <-s.stopc:
			return
		case <-s.donec:
			return
		case <-t.C():
			if s.Leader() == s.ID() {
				ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout)
				if rev, ok := s.checkCompactHash(ctx, checked); ok {
					checked = rev
				}
				cancel()
			}
		}
		t.Reset(every)
	}
}

// checkCompactHash compares the members' hashes at the latest compacted
// revision, if it is newer than checked, and raises a CORRUPT alarm for
// each member that diverges. It returns the revision and whether it was
// decided.
func (s *Server) checkCompactHash(ctx context.Context, checked int64) (int64, bool) {
	rev := s.kv.CompactRev()
	if rev == 0 || rev <= checked {
		return rev, false
	}
	members, err := s.members(ctx)
	if err != nil {
		return rev, false
	}
	own, hashRev, compactRev, err := s.hashKV(rev)
	if err != nil {
		return rev, false // compacted again meanwhile: the next check takes the new revision
	}
	hashes := []node.CompactHash{{Member: s.ID(), Revision: hashRev, CompactRevision: compactRev, Hash: own}}
	for _, m := range members {
		if m.ID == s.ID() {
			continue
		}
		h, err := s.peerHashKV(ctx, m, rev)
		if err != nil {
			s.lg.Debug("compact hash check: no answer from a member", zap.String("member-id", fmt.Sprintf("%x", m.ID)), zap.Int64("revision", rev), zap.Error(err))
			continue
		}
		hashes = append(hashes, h)
	}
	corrupt, decided := node.FindCorrupt(len(members), rev, hashes)
	if !decided {
		return rev, false
	}
	for _, id := range corrupt {
		s.corruptionsFound.Add(1)
		s.lg.Error("compact hash check: a member's data diverges from the cluster's; raising the CORRUPT alarm, which refuses writes until the member is replaced",
			zap.String("corrupt-member-id", fmt.Sprintf("%x", id)), zap.Int64("revision", rev), zap.String("hashes", fmtHashes(hashes)))
		_, err := s.propose(ctx, &pb.InternalRaftRequest{Alarm: &pb.AlarmRequest{Action: pb.AlarmRequest_ACTIVATE, MemberID: id, Alarm: pb.AlarmType_CORRUPT}})
		if err != nil {
			s.lg.Warn("compact hash check: raising the CORRUPT alarm failed", zap.String("corrupt-member-id", fmt.Sprintf("%x", id)), zap.Error(err))
			return rev, false
		}
	}
	if len(corrupt) == 0 {
		s.lg.Debug("compact hash check passed", zap.Int64("revision", rev), zap.Int("members", len(hashes)))
	}
	return rev, true
}

func fmtHashes(hs []node.CompactHash) string {
	var b strings.Builder
	for i, h := range hs {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%x:%d@%d/%d", h.Member, h.Hash, h.Revision, h.CompactRevision)
	}
	return b.String()
}

// peerHashKV asks member m for its hash at rev.
func (s *Server) peerHashKV(ctx context.Context, m node.Member, rev int64) (node.CompactHash, error) {
	client := s.cfg.PeerClient
	if client == nil {
		client = http.DefaultClient
	}
	var errs []error
	for _, u := range m.PeerURLs {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(u, "/")+HashKVPath+"?rev="+url.QueryEscape(strconv.FormatInt(rev, 10)), nil)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		resp, err := client.Do(req)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var doc hashKVDoc
		if resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("%s: %s", u, resp.Status)
		} else {
			err = json.NewDecoder(resp.Body).Decode(&doc)
		}
		resp.Body.Close()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		return node.CompactHash{Member: m.ID, Revision: doc.Revision, CompactRevision: doc.CompactRevision, Hash: doc.Hash}, nil
	}
	if len(errs) == 0 {
		errs = append(errs, errors.New("no peer URLs"))
	}
	return node.CompactHash{}, errors.Join(errs...)
}
