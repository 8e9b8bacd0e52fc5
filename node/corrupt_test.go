package node

import (
	"slices"
	"testing"
)

func TestFindCorrupt(t *testing.T) {
	h := func(member uint64, hash uint32) CompactHash {
		return CompactHash{Member: member, Revision: 10, CompactRevision: 10, Hash: hash}
	}
	for _, tt := range []struct {
		name        string
		members     int
		hashes      []CompactHash
		wantCorrupt []uint64
		wantDecided bool
	}{
		{"all agree", 3, []CompactHash{h(1, 7), h(2, 7), h(3, 7)}, nil, true},
		{"one diverges", 3, []CompactHash{h(1, 7), h(2, 9), h(3, 7)}, []uint64{2}, true},
		{"the asker diverges", 3, []CompactHash{h(1, 9), h(2, 7), h(3, 7)}, []uint64{1}, true},
		{"a majority agrees, one did not answer", 3, []CompactHash{h(1, 7), h(3, 7)}, nil, true},
		{"one against one, one missing: undecided", 3, []CompactHash{h(1, 7), h(2, 9)}, nil, false},
		{"alone in a cluster of three: undecided", 3, []CompactHash{h(1, 7)}, nil, false},
		{"two diverge in five", 5, []CompactHash{h(1, 7), h(2, 8), h(3, 7), h(4, 9), h(5, 7)}, []uint64{2, 4}, true},
		{"no majority in four", 4, []CompactHash{h(1, 7), h(2, 7), h(3, 9), h(4, 9)}, nil, false},
		{"a member that has not applied the compaction is not compared", 3,
			[]CompactHash{h(1, 7), {Member: 2, Revision: 10, CompactRevision: 4, Hash: 9}, h(3, 7)}, nil, true},
		{"a hash at another revision is not compared", 3,
			[]CompactHash{h(1, 7), {Member: 2, Revision: 12, CompactRevision: 12, Hash: 9}, h(3, 9)}, nil, false},
		{"one member", 1, []CompactHash{h(1, 7)}, nil, true},
	} {
		corrupt, decided := FindCorrupt(tt.members, 10, tt.hashes)
		if !slices.Equal(corrupt, tt.wantCorrupt) || decided != tt.wantDecided {
			t.Errorf("%s: FindCorrupt = %v, %v; want %v, %v", tt.name, corrupt, decided, tt.wantCorrupt, tt.wantDecided)
		}
	}
}
