package node

import (
	"fmt"

	"go.etcd.io/raft/v3/raftpb"
)

// The core's runtime invariants. Builds with the invariants tag, and every
// build with the race detector (so `go test -race`, the e2e daemon built
// under -race and `make sim`), check them after each applied entry and stop
// the process at the first violation; other builds skip the checks
// (invariants_on.go, invariants_off.go).

// applyMark is what checkApplied compares an entry's apply with.
type applyMark struct {
	applied uint64 // c.applied before the entry
	rev     int64  // the store's revision before the entry
	authRev uint64 // the auth revision before the entry
}

func (c *Core) mark() applyMark {
	return applyMark{applied: c.applied, rev: c.kv.Rev(), authRev: c.auth.Revision()}
}

// checkApplied tells what, if anything, applying e broke:
//   - the applied index moves forward, one entry at a time;
//   - no entry is applied before it is durable in the WAL;
//   - after a fresh entry, the store's consistent index is the entry's;
//   - the store's revision never goes back, nor does the auth revision.
func (c *Core) checkApplied(e *raftpb.Entry, before applyMark, fresh bool) error {
	idx := e.GetIndex()
	switch {
	case c.applied != idx:
		return fmt.Errorf("node invariant: applied index is %d after applying entry %d", c.applied, idx)
	case idx != before.applied+1:
		return fmt.Errorf("node invariant: entry %d applied right after entry %d", idx, before.applied)
	case idx > c.durable:
		return fmt.Errorf("node invariant: entry %d applied before it is durable (WAL holds up to %d)", idx, c.durable)
	case c.kv.Rev() < before.rev:
		return fmt.Errorf("node invariant: revision went back from %d to %d applying entry %d", before.rev, c.kv.Rev(), idx)
	case c.auth.Revision() < before.authRev:
		return fmt.Errorf("node invariant: auth revision went back from %d to %d applying entry %d", before.authRev, c.auth.Revision(), idx)
	}
	if ci, _ := c.kv.ConsistentIndex(); fresh && ci != idx {
		return fmt.Errorf("node invariant: consistent index is %d after applying entry %d", ci, idx)
	}
	return nil
}
