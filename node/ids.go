package node

import (
	"crypto/sha1"
	"encoding/binary"
	"sort"
	"strings"
)

// MemberID derives a member's ID from its peer URLs and the cluster token
// exactly as etcd does (the first 8 bytes, big-endian, of the SHA-1 of the
// sorted peer URLs joined, then the token), so a Cairn member started with
// etcd's --initial-cluster and --initial-cluster-token has the ID etcd
// would give it, and a data dir that etcdutl restored belongs to it. The
// URLs' order does not matter. The result is never zero (raft reserves
// zero for "none").
func MemberID(peerURLs []string, clusterToken string) uint64 {
	urls := append([]string(nil), peerURLs...)
	sort.Strings(urls)
	sum := sha1.Sum([]byte(strings.Join(urls, "") + clusterToken))
	return nonZero(binary.BigEndian.Uint64(sum[:8]))
}

// ClusterID derives the cluster's ID from its initial member IDs as etcd
// does (SHA-1 of the sorted IDs, big-endian; the token is in the IDs
// already). The IDs' order does not matter. clusterToken is unused, kept
// so callers say what the ID depends on.
func ClusterID(memberIDs []uint64, clusterToken string) uint64 {
	_ = clusterToken
	ids := append([]uint64(nil), memberIDs...)
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	b := make([]byte, 8*len(ids))
	for i, id := range ids {
		binary.BigEndian.PutUint64(b[8*i:], id)
	}
	sum := sha1.Sum(b)
	return nonZero(binary.BigEndian.Uint64(sum[:8]))
}

func nonZero(v uint64) uint64 {
	if v == 0 {
		return 1
	}
	return v
}
