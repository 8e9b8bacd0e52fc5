package wal

import (
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// replay rebuilds the log state from records in write order.
type replay struct {
	hs        *raftpb.HardState
	hsBytes   []byte // payload of the last HardState record
	snap      *raftpb.SnapshotMetadata
	snapBytes []byte // payload of the last snapshot record
	markers   []uint64
	ents      []*raftpb.Entry
	// lastIndex is the index of the last entry record, as Save tracks it.
	lastIndex uint64
}

func newReplay() *replay {
	return &replay{hs: &raftpb.HardState{}, snap: &raftpb.SnapshotMetadata{}}
}

// apply replays one body record (not a segment or metadata record) read from
// file.
func (r *replay) apply(file string, rec record) error {
	switch rec.kind {
	case kindHardState:
		hs := &raftpb.HardState{}
		if err := proto.Unmarshal(rec.payload, hs); err != nil {
			return corruptf(file, rec.off, "undecodable hardstate: %v", err)
		}
		r.hs, r.hsBytes = hs, rec.payload
	case kindSnapshot:
		m := &raftpb.SnapshotMetadata{}
		if err := proto.Unmarshal(rec.payload, m); err != nil {
			return corruptf(file, rec.off, "undecodable snapshot marker: %v", err)
		}
		r.snap, r.snapBytes = m, rec.payload
		if n := len(r.markers); n == 0 || r.markers[n-1] != m.GetIndex() {
			r.markers = append(r.markers, m.GetIndex())
		}
		r.trimTo(m.GetIndex())
	case kindEntry:
		e := &raftpb.Entry{}
		if err := proto.Unmarshal(rec.payload, e); err != nil {
			return corruptf(file, rec.off, "undecodable entry: %v", err)
		}
		return r.entry(file, rec.off, e)
	default:
		return corruptf(file, rec.off, "unexpected %v record", rec.kind)
	}
	return nil
}

// entry applies etcd's log semantics: an entry at an index already held
// replaces it and drops every later one; entries at or below the snapshot
// marker are not needed.
func (r *replay) entry(file string, off int64, e *raftpb.Entry) error {
	idx := e.GetIndex()
	if idx == 0 {
		return corruptf(file, off, "entry with index 0")
	}
	r.lastIndex = idx
	if idx <= r.snap.GetIndex() {
		return nil
	}
	if len(r.ents) == 0 {
		r.ents = append(r.ents, e)
		return nil
	}
	first, last := r.ents[0].GetIndex(), r.ents[len(r.ents)-1].GetIndex()
	switch {
	case idx > last+1:
		return corruptf(file, off, "entry %d follows entry %d: entries are missing", idx, last)
	case idx < first:
		r.ents = append(r.ents[:0], e)
	default:
		r.ents = append(r.ents[:idx-first], e)
	}
	return nil
}

// trimTo drops the entries at or below index.
func (r *replay) trimTo(index uint64) {
	i := 0
	for i < len(r.ents) && r.ents[i].GetIndex() <= index {
		i++
	}
	if i > 0 {
		r.ents = append(r.ents[:0:0], r.ents[i:]...)
	}
}
