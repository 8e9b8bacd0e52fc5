package node

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"

	"go.etcd.io/raft/v3/raftpb"
)

// Member is one member of the cluster as the replicated state knows it.
type Member struct {
	ID         uint64   `json:"id"`
	Name       string   `json:"name"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs,omitempty"`
	IsLearner  bool     `json:"isLearner,omitempty"`
}

// membersBucket is the mvcc auxiliary bucket holding the member list, so it
// travels with the database in raft snapshots and survives restarts.
var membersBucket = []byte("members")

// removedBucket records the IDs of removed members, as etcd's
// "members_removed" does: a removed ID never rejoins, and a message from
// one is refused so that the member learns it was removed
// (ErrSenderRemoved).
var removedBucket = []byte("members_removed")

// clusterBucket holds the cluster version, as etcd's "cluster" bucket.
var (
	clusterBucket     = []byte("cluster")
	clusterVersionKey = []byte("clusterVersion")
)

// confStateJSON is a raft configuration as etcd records it in meta
// ("confState"): the JSON of its ConfState.
func confStateJSON(cs *raftpb.ConfState) []byte {
	b, err := json.Marshal(struct {
		Voters         []uint64 `json:"voters,omitempty"`
		Learners       []uint64 `json:"learners,omitempty"`
		VotersOutgoing []uint64 `json:"voters_outgoing,omitempty"`
		LearnersNext   []uint64 `json:"learners_next,omitempty"`
		AutoLeave      bool     `json:"auto_leave"`
	}{cs.GetVoters(), cs.GetLearners(), cs.GetVotersOutgoing(), cs.GetLearnersNext(), cs.GetAutoLeave()})
	if err != nil {
		panic(fmt.Sprintf("node: encoding conf state: %v", err)) // slices of integers always encode
	}
	return b
}

// memberKey is the bucket key of a member, in "members" and
// "members_removed": its ID in hex without leading zeros, as etcd writes
// it. The value in "members" is the member's JSON, which etcd's and
// Cairn's Member encode alike.
func memberKey(id uint64) []byte { return []byte(strconv.FormatUint(id, 16)) }

func encodeMember(m Member) []byte {
	b, err := json.Marshal(m)
	if err != nil {
		panic(fmt.Sprintf("node: encoding member %x: %v", m.ID, err)) // a struct of strings and ints always encodes
	}
	return b
}

func decodeMember(b []byte) (Member, error) {
	var m Member
	if err := json.Unmarshal(b, &m); err != nil {
		return Member{}, fmt.Errorf("node: decoding member record: %w", err)
	}
	return m, nil
}

// sortedMembers returns the members ordered by ID.
func sortedMembers(ms map[uint64]Member) []Member {
	out := make([]Member, 0, len(ms))
	for _, m := range ms {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
