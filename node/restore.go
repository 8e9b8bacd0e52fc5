package node

import (
	"encoding/json"
	"errors"
	"fmt"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/cairnkv/cairn/mvcc"
	"github.com/cairnkv/cairn/node/wal"
)

// RestoreConfig describes one member of a new cluster made from a
// snapshot's database (cairnctl snapshot restore).
type RestoreConfig struct {
	// DBPath is the database copied from the snapshot, already in place in
	// the member's data dir (DBPath(dataDir)).
	DBPath string
	// WAL is where the member's WAL is created; its Dir must not hold one.
	WAL wal.Config
	// Self is this member's ID; Members the whole new cluster (Self among
	// them), all voters; ClusterID the new cluster's ID.
	Self      uint64
	ClusterID uint64
	Members   []Member
}

// RestoreResult is what Restore wrote.
type RestoreResult struct {
	Index, Term uint64
	ConfState   *raftpb.ConfState
}

// Restore makes the database at cfg.DBPath, a copy of any member's
// snapshot, the starting state of member cfg.Self of a new cluster, as
// etcdutl snapshot restore does for etcd but with Cairn's WAL: the
// database's member records are replaced by cfg.Members (and its removed
// members forgotten), its consistent index and term set to the log
// position the WAL starts from (len(Members), term 1), and a WAL is created
// whose snapshot marker is at that position with every member a voter,
// with the hard state committing it. Every member restored from the same
// snapshot with the same members starts from the same state, and a member
// started on the result restarts from it (NewCore) without replaying
// anything.
func Restore(cfg RestoreConfig) (RestoreResult, error) {
	if len(cfg.Members) == 0 {
		return RestoreResult{}, errors.New("node: restore: no members")
	}
	byID := membersByID(cfg.Members)
	if len(byID) != len(cfg.Members) {
		return RestoreResult{}, errors.New("node: restore: two members have the same ID")
	}
	if _, ok := byID[cfg.Self]; !ok {
		return RestoreResult{}, fmt.Errorf("node: restore: member %x is not one of the members", cfg.Self)
	}
	if wal.Exist(cfg.WAL.FS, cfg.WAL.Dir) {
		return RestoreResult{}, fmt.Errorf("node: restore: %s already holds a WAL", cfg.WAL.Dir)
	}
	members := sortedMembers(byID)
	voters := make([]uint64, len(members))
	for i, m := range members {
		voters[i] = m.ID
	}
	res := RestoreResult{Index: uint64(len(members)), Term: 1, ConfState: &raftpb.ConfState{Voters: voters}}

	records := map[string][]byte{}
	for _, m := range members {
		records[string(memberKey(m.ID))] = encodeMember(m)
	}
	if err := mvcc.RewriteForRestore(cfg.DBPath, mvcc.RestoreEdit{
		ConsistentIndex: res.Index,
		Term:            res.Term,
		ConfState:       confStateJSON(res.ConfState),
		Replace:         map[string]map[string][]byte{string(membersBucket): records, string(removedBucket): {}},
	}); err != nil {
		return RestoreResult{}, fmt.Errorf("node: restore: %w", err)
	}

	meta, err := json.Marshal(walMetadata{MemberID: cfg.Self, ClusterID: cfg.ClusterID})
	if err != nil {
		return RestoreResult{}, fmt.Errorf("node: restore: %w", err)
	}
	w, err := wal.Create(cfg.WAL, meta)
	if err != nil {
		return RestoreResult{}, fmt.Errorf("node: restore: creating WAL: %w", err)
	}
	// The log up to the marker holds one conf change per member, as a
	// bootstrapped cluster's does; the marker makes them the snapshot.
	ents := make([]*raftpb.Entry, len(members))
	for i, m := range members {
		ctx, _ := json.Marshal(confChangeContext{Member: m})
		data, err := proto.Marshal(&raftpb.ConfChange{Type: raftpb.ConfChangeAddNode.Enum(), NodeId: proto.Uint64(m.ID), Context: ctx})
		if err != nil {
			_ = w.Close()
			return RestoreResult{}, fmt.Errorf("node: restore: %w", err)
		}
		ents[i] = &raftpb.Entry{Type: raftpb.EntryConfChange.Enum(), Term: proto.Uint64(res.Term), Index: proto.Uint64(uint64(i + 1)), Data: data}
	}
	hs := &raftpb.HardState{Term: proto.Uint64(res.Term), Vote: proto.Uint64(voters[0]), Commit: proto.Uint64(res.Index)}
	if err := w.Save(hs, ents); err != nil {
		_ = w.Close()
		return RestoreResult{}, fmt.Errorf("node: restore: %w", err)
	}
	snap := &raftpb.SnapshotMetadata{Index: proto.Uint64(res.Index), Term: proto.Uint64(res.Term), ConfState: res.ConfState}
	if err := w.SaveSnapshot(snap); err != nil {
		_ = w.Close()
		return RestoreResult{}, fmt.Errorf("node: restore: %w", err)
	}
	if err := w.Close(); err != nil {
		return RestoreResult{}, fmt.Errorf("node: restore: %w", err)
	}
	return res, nil
}

// WALMetadata is what a member's WAL records about it: its member and
// cluster IDs.
type WALMetadata = walMetadata

// ParseWALMetadata decodes the metadata at the head of a member's WAL.
func ParseWALMetadata(b []byte) (WALMetadata, error) {
	var m walMetadata
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("node: WAL metadata: %w", err)
	}
	return m, nil
}
