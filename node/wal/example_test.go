package wal_test

import (
	"fmt"

	"github.com/cairnkv/cairn/node/wal"
	"github.com/cairnkv/cairn/vfs"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// A node persists each raft Ready's HardState and entries before sending
// messages, and after a restart replays the log into raft's storage.
func Example() {
	cfg := wal.Config{FS: vfs.NewMem(), Dir: "/data/member/wal", SegmentSize: 1 << 20}
	w, err := wal.Create(cfg, []byte("member=1,cluster=42"))
	if err != nil {
		panic(err)
	}
	st := &raftpb.HardState{Term: proto.Uint64(2), Vote: proto.Uint64(1), Commit: proto.Uint64(1)}
	ents := []*raftpb.Entry{
		{Index: proto.Uint64(1), Term: proto.Uint64(2), Data: []byte("put a=1")},
		{Index: proto.Uint64(2), Term: proto.Uint64(2), Data: []byte("put b=2")},
	}
	if err := w.Save(st, ents); err != nil { // one fsync
		panic(err) // the node must stop: the log is in an unknown state
	}
	_ = w.Close()

	w, err = wal.Open(cfg)
	if err != nil {
		panic(err)
	}
	defer w.Close()
	md, st, snap, ents, err := w.ReadAll()
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s term=%d commit=%d snapshot=%d\n", md, st.GetTerm(), st.GetCommit(), snap.GetIndex())
	for _, e := range ents {
		fmt.Printf("%d %s\n", e.GetIndex(), e.Data)
	}
	// Output:
	// member=1,cluster=42 term=2 commit=1 snapshot=0
	// 1 put a=1
	// 2 put b=2
}
