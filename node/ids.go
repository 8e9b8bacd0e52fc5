package node

import (
	"crypto/sha256"
	"encoding/binary"
	"sort"
	"strings"
)

// MemberID derives a member's ID from its peer URLs and the cluster token,
// so every member of a new cluster computes the same IDs from the same
// --initial-cluster and --initial-cluster-token. The URLs' order does not
// matter. The result is never zero (raft reserves zero for "none").
func MemberID(peerURLs []string, clusterToken string) uint64 {
	urls := append([]string(nil), peerURLs...)
	sort.Strings(urls)
	h := sha256.New()
	h.Write([]byte("cairn-member\x00"))
	h.Write([]byte(clusterToken))
	h.Write([]byte{0})
	h.Write([]byte(strings.Join(urls, ",")))
	return nonZero(binary.BigEndian.Uint64(h.Sum(nil)[:8]))
}

// ClusterID derives the cluster's ID from its initial member IDs and token.
// The IDs' order does not matter.
func ClusterID(memberIDs []uint64, clusterToken string) uint64 {
	ids := append([]uint64(nil), memberIDs...)
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	h := sha256.New()
	h.Write([]byte("cairn-cluster\x00"))
	h.Write([]byte(clusterToken))
	var b [8]byte
	for _, id := range ids {
		binary.BigEndian.PutUint64(b[:], id)
		h.Write(b[:])
	}
	return nonZero(binary.BigEndian.Uint64(h.Sum(nil)[:8]))
}

func nonZero(v uint64) uint64 {
	if v == 0 {
		return 1
	}
	return v
}
