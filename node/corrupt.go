package node

import "sort"

// Corruption detection. Every member that applies a compaction at revision
// R can hash its key space as of R (mvcc.Store.HashKV(R)): the revisions a
// read at or after R may need, with their values. Members that applied the
// same entries agree on it exactly, however far their physical compaction,
// commits or later writes have gone, until the next compaction. So the
// leader periodically collects every member's hash at the latest compacted
// revision and a member whose hash differs from a majority's has diverged:
// the cluster raises a CORRUPT alarm for it (see ErrCorrupt). The
// collection is I/O (the production shell asks its peers over the peer
// listener, the simulator asks its cores directly); the decision is here.

// CompactHash is one member's hash of its key space at a compacted
// revision.
type CompactHash struct {
	Member uint64
	// Revision is the revision hashed; CompactRevision the member's
	// compacted revision when it hashed. Only hashes with both equal to the
	// revision under check are comparable.
	Revision, CompactRevision int64
	Hash                      uint32
}

// FindCorrupt decides which members diverge at revision rev, from the
// hashes of some of the cluster's members members. Hashes taken at another
// revision, or before the member had applied the compaction at rev, are
// ignored. When a strict majority of the cluster's members share one hash,
// every member with another hash is corrupt, and decided is true. When
// every comparable hash agrees, no member is corrupt and decided is true
// only if a majority answered. Otherwise (a split with no majority) decided
// is false: the caller should look again later, when more members answer.
func FindCorrupt(members int, rev int64, hashes []CompactHash) (corrupt []uint64, decided bool) {
	groups := map[uint32][]uint64{}
	for _, h := range hashes {
		if h.Revision != rev || h.CompactRevision != rev {
			continue
		}
		groups[h.Hash] = append(groups[h.Hash], h.Member)
	}
	majority := members/2 + 1
	var winner uint32
	found := false
	for hash, ids := range groups {
		if len(ids) >= majority {
			winner, found = hash, true
		}
	}
	if !found {
		return nil, false
	}
	for hash, ids := range groups {
		if hash != winner {
			corrupt = append(corrupt, ids...)
		}
	}
	sort.Slice(corrupt, func(i, j int) bool { return corrupt[i] < corrupt[j] })
	return corrupt, true
}
