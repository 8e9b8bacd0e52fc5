package node

import (
	"errors"
	"testing"
)

// A member told by a peer that it was removed has work to do: stopping. A
// driver that calls Process only when HasReady says so (the simulator)
// must still stop a member that has nothing else to do, such as a learner
// removed before it heard from the leader (found by the simulator's
// membership workload).
func TestRemovedByPeerMakesReady(t *testing.T) {
	c := newTestCore(t, 3)
	for c.HasReady() {
		if err := c.Process(); err != nil {
			t.Fatal(err)
		}
	}
	c.RemovedByPeer(42)
	if !c.HasReady() {
		t.Fatal("HasReady is false after RemovedByPeer: the member would never stop")
	}
	if err := c.Process(); !errors.Is(err, ErrRemoved) {
		t.Fatalf("Process after RemovedByPeer: %v, want ErrRemoved", err)
	}
	if c.HasReady() {
		t.Fatal("HasReady is true once the core stopped")
	}
}
