package node

import (
	"encoding/json"
	"fmt"
	"sort"
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

// memberKey is the bucket key of a member: its ID in fixed-width hex, so
// bucket order is ID order.
func memberKey(id uint64) []byte { return []byte(fmt.Sprintf("%016x", id)) }

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
