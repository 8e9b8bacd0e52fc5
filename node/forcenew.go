package node

import (
	"fmt"
	"slices"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

// forceNewCluster rewrites a restarting member's log so that it is the only
// member of its cluster, as etcd's --force-new-cluster does: entries after
// the commit index (never acknowledged) are dropped, and committed conf
// changes removing every other member (and adding this one, if the log
// does not have it) are appended and made durable before raft starts. When
// they are applied, the others are removed like any removed member. It
// returns the hard state and entries restart goes on with.
func (c *Core) forceNewCluster(snap *raftpb.SnapshotMetadata, hs *raftpb.HardState, ents []*raftpb.Entry) (*raftpb.HardState, []*raftpb.Entry, error) {
	commit, term := hs.GetCommit(), hs.GetTerm()
	if snap != nil {
		commit = max(commit, snap.GetIndex())
	}
	// A member that is already its cluster's only voter keeps its whole
	// log: a lone voter commits what it saves, and its commit index is
	// saved unsynced, so entries above the one a power cut left may have
	// been acknowledged (a restart still forced after a cut lost them).
	if lone, err := c.loneVoter(snap, ents, commit); err != nil {
		return nil, nil, err
	} else if lone && len(ents) > 0 {
		commit = max(commit, ents[len(ents)-1].GetIndex())
	}
	kept := ents[:0:0]
	for _, e := range ents {
		if e.GetIndex() <= commit {
			kept = append(kept, e)
		}
	}
	// The members as of the commit index: the snapshot's configuration,
	// then every committed conf change.
	ids := map[uint64]bool{}
	if cs := snap.GetConfState(); cs != nil {
		for _, id := range append(append([]uint64(nil), cs.GetVoters()...), cs.GetLearners()...) {
			ids[id] = true
		}
	}
	for _, e := range kept {
		var cc raftpb.ConfChangeI
		switch e.GetType() {
		case raftpb.EntryConfChange:
			v1 := &raftpb.ConfChange{}
			if err := proto.Unmarshal(e.GetData(), v1); err != nil {
				return nil, nil, fmt.Errorf("node: force-new-cluster: entry %d: %w", e.GetIndex(), err)
			}
			cc = v1
		case raftpb.EntryConfChangeV2:
			v2 := &raftpb.ConfChangeV2{}
			if err := proto.Unmarshal(e.GetData(), v2); err != nil {
				return nil, nil, fmt.Errorf("node: force-new-cluster: entry %d: %w", e.GetIndex(), err)
			}
			cc = v2
		default:
			continue
		}
		for _, ch := range cc.AsV2().GetChanges() {
			switch ch.GetType() {
			case raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode:
				ids[ch.GetNodeId()] = true
			case raftpb.ConfChangeRemoveNode:
				delete(ids, ch.GetNodeId())
			}
		}
	}
	last := commit
	if n := len(kept); n > 0 {
		last = max(last, kept[n-1].GetIndex())
	}
	var added []*raftpb.Entry
	next := func(cc *raftpb.ConfChange) error {
		data, err := proto.Marshal(cc)
		if err != nil {
			return err
		}
		last++
		added = append(added, &raftpb.Entry{Type: raftpb.EntryConfChange.Enum(), Term: proto.Uint64(term), Index: proto.Uint64(last), Data: data})
		return nil
	}
	others := make([]uint64, 0, len(ids))
	for id := range ids {
		if id != c.id {
			others = append(others, id)
		}
	}
	slices.Sort(others)
	for _, id := range others {
		if err := next(&raftpb.ConfChange{Type: raftpb.ConfChangeRemoveNode.Enum(), NodeId: proto.Uint64(id)}); err != nil {
			return nil, nil, err
		}
	}
	if !ids[c.id] {
		if err := next(&raftpb.ConfChange{Type: raftpb.ConfChangeAddNode.Enum(), NodeId: proto.Uint64(c.id)}); err != nil {
			return nil, nil, err
		}
	}
	out := &raftpb.HardState{Term: proto.Uint64(term), Vote: proto.Uint64(hs.GetVote()), Commit: proto.Uint64(last)}
	if err := c.wal.Save(out, added); err != nil {
		return nil, nil, fmt.Errorf("node: force-new-cluster: saving to WAL: %w", err)
	}
	c.lg.Warn("forcing a new one-member cluster from this member's data: every other member is removed",
		zap.Uint64s("removed-member-ids", others), zap.Uint64("commit-index", last), zap.Int("dropped-uncommitted-entries", len(ents)-len(kept)))
	return out, append(kept, added...), nil
}

// loneVoter tells whether this member is the only voter of the
// configuration as of index commit: the snapshot's, then the conf changes
// of ents up to commit.
func (c *Core) loneVoter(snap *raftpb.SnapshotMetadata, ents []*raftpb.Entry, commit uint64) (bool, error) {
	voters := map[uint64]bool{}
	for _, id := range snap.GetConfState().GetVoters() {
		voters[id] = true
	}
	for _, e := range ents {
		if e.GetIndex() > commit {
			break
		}
		var cc raftpb.ConfChangeI
		switch e.GetType() {
		case raftpb.EntryConfChange:
			v1 := &raftpb.ConfChange{}
			if err := proto.Unmarshal(e.GetData(), v1); err != nil {
				return false, fmt.Errorf("node: force-new-cluster: entry %d: %w", e.GetIndex(), err)
			}
			cc = v1
		case raftpb.EntryConfChangeV2:
			v2 := &raftpb.ConfChangeV2{}
			if err := proto.Unmarshal(e.GetData(), v2); err != nil {
				return false, fmt.Errorf("node: force-new-cluster: entry %d: %w", e.GetIndex(), err)
			}
			cc = v2
		default:
			continue
		}
		for _, ch := range cc.AsV2().GetChanges() {
			switch ch.GetType() {
			case raftpb.ConfChangeAddNode:
				voters[ch.GetNodeId()] = true
			case raftpb.ConfChangeAddLearnerNode, raftpb.ConfChangeRemoveNode:
				delete(voters, ch.GetNodeId())
			}
		}
	}
	return len(voters) == 1 && voters[c.id], nil
}
