package node

import (
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// The checks hold on a real apply and catch each kind of violation.
func TestCheckAppliedCatchesViolations(t *testing.T) {
	c := newTestCore(t, 1)
	if ticksToLead(t, c, 50) > 50 {
		t.Fatal("a lone member did not lead")
	}
	done := make(chan Result, 1)
	if _, err := c.Propose(&pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte("k"), Value: []byte("v")}}, func(r Result) { done <- r }); err != nil {
		t.Fatal(err)
	}
	for c.HasReady() {
		if err := c.Process(); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case r := <-done:
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	default:
		t.Fatal("a lone leader's put was not applied")
	}
	idx := c.applied
	e := &raftpb.Entry{Index: proto.Uint64(idx)}
	good := applyMark{applied: idx - 1, rev: c.kv.Rev() - 1}
	if err := c.checkApplied(e, good, true); err != nil {
		t.Fatalf("a correct apply reported: %v", err)
	}
	for _, tt := range []struct {
		name   string
		e      *raftpb.Entry
		before applyMark
		setup  func() func()
		want   string
	}{
		{"applied index not the entry's", &raftpb.Entry{Index: proto.Uint64(idx + 1)}, applyMark{applied: idx, rev: good.rev}, nil, "applied index is"},
		{"an entry skipped", e, applyMark{applied: idx - 2, rev: good.rev}, nil, "applied right after"},
		{"revision went back", e, applyMark{applied: idx - 1, rev: c.kv.Rev() + 1}, nil, "revision went back"},
		{"auth revision went back", e, applyMark{applied: idx - 1, rev: good.rev, authRev: c.auth.Revision() + 1}, nil, "auth revision went back"},
		{"applied before durable", e, good, func() func() { d := c.durable; c.durable = idx - 1; return func() { c.durable = d } }, "before it is durable"},
	} {
		undo := func() {}
		if tt.setup != nil {
			undo = tt.setup()
		}
		err := c.checkApplied(tt.e, tt.before, true)
		undo()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: checkApplied = %v, want an error containing %q", tt.name, err, tt.want)
		}
	}
	// A fresh entry whose writes were not followed by its consistent index.
	c.kv.SetConsistentIndex(idx-1, c.term)
	if err := c.checkApplied(e, good, true); err == nil || !strings.Contains(err.Error(), "consistent index is") {
		t.Errorf("consistent index behind: checkApplied = %v", err)
	}
	if err := c.checkApplied(e, good, false); err != nil {
		t.Errorf("a replayed (not fresh) entry need not move the consistent index: %v", err)
	}
	c.kv.SetConsistentIndex(idx, c.term)
}
