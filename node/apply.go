package node

import (
	"encoding/json"
	"fmt"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/cairnkv/cairn/version"
)

// confChangeContext travels in a conf change's Context: the member it adds
// or updates, and the request ID of the proposer waiting for it.
type confChangeContext struct {
	Member    Member `json:"member"`
	RequestID uint64 `json:"requestID,omitempty"`
}

// decodeConfChangeContext reads a conf change's context: Cairn's, or
// etcd's (the member's JSON alone), which a log imported from etcd holds.
func decodeConfChangeContext(b []byte) (confChangeContext, error) {
	var ctx confChangeContext
	if len(b) == 0 {
		return ctx, nil
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(b, &probe); err != nil {
		return ctx, err
	}
	if _, cairn := probe["member"]; cairn {
		err := json.Unmarshal(b, &ctx)
		return ctx, err
	}
	err := json.Unmarshal(b, &ctx.Member)
	return ctx, err
}

// applyEntries applies committed entries in order. An entry at or below the
// database's consistent index was applied before a restart (or arrived in a
// snapshot's database) and is skipped, so replay is idempotent; conf changes
// are always handed to raft, whose configuration is rebuilt from the log.
func (c *Core) applyEntries(ents []*raftpb.Entry) error {
	for _, e := range ents {
		idx := e.GetIndex()
		if idx <= c.applied {
			continue
		}
		ci, _ := c.kv.ConsistentIndex()
		fresh := idx > ci || c.cfg.Bugs.reapplyAfterRestart()
		var before applyMark
		if invariants {
			before = c.mark()
		}
		var err error
		switch e.GetType() {
		case raftpb.EntryNormal:
			if fresh {
				err = c.applyNormal(e)
			}
		case raftpb.EntryConfChange, raftpb.EntryConfChangeV2:
			err = c.applyConfChange(e, fresh)
		default:
			err = fmt.Errorf("node: entry %d has unknown type %v", idx, e.GetType())
		}
		if err != nil {
			return err
		}
		if fresh && c.cfg.OnApply != nil {
			c.cfg.OnApply(e)
		}
		if fresh {
			// After the apply: it marks the entry's end, and the store
			// commits batches only at such boundaries, so a committed batch
			// never holds part of an entry or an entry without its index.
			c.kv.SetConsistentIndex(idx, e.GetTerm())
		}
		c.applied = idx
		if invariants {
			if err := c.checkApplied(e, before, fresh); err != nil {
				panic(err)
			}
		}
	}
	return nil
}

func (c *Core) applyNormal(e *raftpb.Entry) error {
	if len(e.GetData()) == 0 {
		return nil // a new leader's empty entry
	}
	r, err := decodeRequest(e.GetData())
	if err != nil {
		return fmt.Errorf("node: entry %d: %w", e.GetIndex(), err)
	}
	var start time.Time
	if c.cfg.ObserveApply != nil {
		start = c.cfg.Clock.Now()
	}
	c.applyingIndex = e.GetIndex()
	res, err := c.applyRequest(r)
	if err != nil {
		return fmt.Errorf("node: applying entry %d: %w", e.GetIndex(), err)
	}
	if c.cfg.ObserveApply != nil {
		c.cfg.ObserveApply(r, res, c.cfg.Clock.Now().Sub(start))
	}
	res.Index = e.GetIndex()
	if w, ok := c.waits[r.GetID()]; ok {
		delete(c.waits, r.GetID())
		// A physical compaction is answered here too: its caller waits
		// for the data to go with WhenCompacted, as etcd's waits apart
		// from the proposal (and its request timeout).
		w(res)
	}
	return nil
}

// WhenCompacted calls f once the store has no compaction in progress: at
// once if none is, else when the one under way has removed its revisions
// (physical compactions wait with it).
func (c *Core) WhenCompacted(f func()) {
	if c.kv == nil || !c.kv.Compacting() {
		f()
		return
	}
	c.compactWaits = append(c.compactWaits, f)
}

// applyRequest applies one request to the state machine. A client error is
// returned in Result.Err; a returned error is fatal.
func (c *Core) applyRequest(r *pb.InternalRaftRequest) (Result, error) {
	var (
		resp proto.Message
		rev  int64
		err  error
	)
	if c.corrupt() && refusedWhenCorrupt(r) {
		return Result{Err: ErrCorrupt}, nil
	}
	if c.noSpace() && AddsData(r) {
		return Result{Err: ErrNoSpace}, nil
	}
	if err := c.checkAuth(r); err != nil {
		return Result{Err: err}, nil
	}
	if err := c.checkLeases(r); err != nil {
		return Result{Err: err}, nil
	}
	if res, ok, err := c.applyV2(r); ok || err != nil {
		return res, err
	}
	switch {
	case r.GetPut() != nil:
		var pr *pb.PutResponse
		put := r.GetPut()
		if c.cfg.Bugs.flipValues() && len(put.GetValue()) > 0 {
			put = proto.Clone(put).(*pb.PutRequest)
			put.Value = append([]byte(nil), put.GetValue()...)
			put.Value[len(put.Value)-1] ^= 1
		}
		if pr, err = c.kv.Put(put); err == nil {
			rev, resp = pr.GetHeader().GetRevision(), pr
			pr.Header = c.Header(rev)
		}
	case r.GetDeleteRange() != nil:
		var dr *pb.DeleteRangeResponse
		if dr, err = c.kv.DeleteRange(r.GetDeleteRange()); err == nil {
			rev, resp = dr.GetHeader().GetRevision(), dr
			dr.Header = c.Header(rev)
		}
	case r.GetTxn() != nil:
		var tr *pb.TxnResponse
		if tr, err = c.kv.Txn(r.GetTxn()); err == nil {
			rev, resp = tr.GetHeader().GetRevision(), tr
			setTxnHeaders(tr, c.Header(rev))
		}
	case r.GetRange() != nil:
		var rr *pb.RangeResponse
		if rr, err = c.kv.Range(r.GetRange()); err == nil {
			rev, resp = rr.GetHeader().GetRevision(), rr
			rr.Header = c.Header(rev)
		}
	case r.GetCompaction() != nil:
		if err = c.kv.Compact(r.GetCompaction().GetRevision()); err == nil {
			resp = &pb.CompactionResponse{Header: c.Header(c.kv.Rev())}
			c.lg.Info("compacted", zap.Int64("revision", r.GetCompaction().GetRevision()))
		}
	case r.GetLeaseGrant() != nil:
		resp, err = c.applyLeaseGrant(r.GetLeaseGrant())
	case r.GetLeaseRevoke() != nil:
		resp, err = c.applyLeaseRevoke(r.GetLeaseRevoke())
	case r.GetLeaseCheckpoint() != nil:
		resp = c.applyLeaseCheckpoint(r.GetLeaseCheckpoint())
	case r.GetAlarm() != nil:
		resp = c.applyAlarm(r.GetAlarm())
	case r.GetClusterMemberAttrSet() != nil:
		c.applyMemberAttrs(r.GetClusterMemberAttrSet().GetMember_ID(), r.GetClusterMemberAttrSet().GetMemberAttributes().GetName(), r.GetClusterMemberAttrSet().GetMemberAttributes().GetClientUrls())
	case isAuthRequest(r):
		resp, err = c.applyAuth(r, c.applyingIndex)
	case r.GetClusterVersionSet() != nil:
		if err := c.applyClusterVersionSet(r.GetClusterVersionSet()); err != nil {
			return Result{}, err
		}
	case r.GetDowngradeInfoSet() != nil:
		if err := c.applyDowngradeInfoSet(r.GetDowngradeInfoSet()); err != nil {
			return Result{}, err
		}
	default:
		return Result{}, fmt.Errorf("node: request %d carries nothing Cairn can apply", r.GetID())
	}
	if err != nil {
		if IsApplyOutcome(err) {
			return Result{Err: err}, nil
		}
		return Result{}, err
	}
	return Result{Resp: resp}, nil
}

// setTxnHeaders gives a txn response the full header. Responses nested in
// it keep the revision-only headers the store gives them, as etcd's do.
func setTxnHeaders(tr *pb.TxnResponse, h *pb.ResponseHeader) {
	tr.Header = h
}

func (c *Core) applyMemberAttrs(id uint64, name string, clientURLs []string) {
	m, ok := c.members[id]
	if !ok {
		c.lg.Warn("ignoring attributes of an unknown member", zap.String("unknown-member-id", fmt.Sprintf("%x", id)))
		return
	}
	m.Name = name
	m.ClientURLs = append([]string(nil), clientURLs...)
	c.members[id] = m
	c.kv.AuxPut(membersBucket, memberKey(id), encodeMember(m))
}

func (c *Core) applyConfChange(e *raftpb.Entry, fresh bool) error {
	var cc raftpb.ConfChangeI
	if e.GetType() == raftpb.EntryConfChange {
		v1 := &raftpb.ConfChange{}
		if err := proto.Unmarshal(e.GetData(), v1); err != nil {
			return fmt.Errorf("node: entry %d: decoding conf change: %w", e.GetIndex(), err)
		}
		cc = v1
	} else {
		v2 := &raftpb.ConfChangeV2{}
		if err := proto.Unmarshal(e.GetData(), v2); err != nil {
			return fmt.Errorf("node: entry %d: decoding conf change: %w", e.GetIndex(), err)
		}
		cc = v2
	}
	c.confState = c.rn.ApplyConfChange(cc)
	if !fresh {
		return nil
	}
	c.kv.SetConfState(confStateJSON(c.confState))
	if _, ok := c.kv.AuxGet(clusterBucket, clusterVersionKey); !ok {
		c.kv.AuxPut(clusterBucket, clusterVersionKey, []byte(version.EtcdCluster))
	}
	v2 := cc.AsV2()
	ctx, err := decodeConfChangeContext(v2.GetContext())
	if err != nil {
		return fmt.Errorf("node: entry %d: decoding conf change context: %w", e.GetIndex(), err)
	}
	for _, ch := range v2.GetChanges() {
		id := ch.GetNodeId()
		switch ch.GetType() {
		case raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode:
			m, exists := c.members[id]
			if !exists {
				m = ctx.Member
				m.ID = id
			}
			m.IsLearner = ch.GetType() == raftpb.ConfChangeAddLearnerNode
			c.members[id] = m
			c.kv.AuxPut(membersBucket, memberKey(id), encodeMember(m))
			if id != c.id {
				c.tr.AddPeer(id, m.PeerURLs)
			}
		case raftpb.ConfChangeRemoveNode:
			if id == c.id && !c.cfg.Bugs.ignoreRemoval() {
				c.removed = true
			}
			if !c.cfg.Bugs.keepRemovedMembers() {
				delete(c.members, id)
				c.kv.AuxDelete(membersBucket, memberKey(id))
			}
			c.removedIDs[id] = true
			c.kv.AuxPut(removedBucket, memberKey(id), []byte("removed"))
			if id != c.id {
				c.tr.RemovePeer(id)
			}
		case raftpb.ConfChangeUpdateNode:
			if m, ok := c.members[id]; ok {
				m.PeerURLs = ctx.Member.PeerURLs
				c.members[id] = m
				c.kv.AuxPut(membersBucket, memberKey(id), encodeMember(m))
				if id != c.id {
					c.tr.UpdatePeer(id, m.PeerURLs)
				}
			}
		}
	}
	if w, ok := c.waits[ctx.RequestID]; ok && ctx.RequestID != 0 {
		delete(c.waits, ctx.RequestID)
		w(Result{Index: e.GetIndex()})
	}
	return nil
}
