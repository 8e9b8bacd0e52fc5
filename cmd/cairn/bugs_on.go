//go:build cairnbugs

package main

import (
	"fmt"
	"os"

	"github.com/cairnkv/cairn/node"
	"github.com/cairnkv/cairn/vfs"
)

// envPlantBug names the bug a cairnbugs build plants: "stale-reads"
// (linearizable reads skip the ReadIndex round), "double-apply" (entries
// are applied again after a restart) or "followers-expire-leases" (every
// member expires leases by its own clock) or "skip-wal-fsync" (the WAL
// never fsyncs: power cuts lose acknowledged entries). The chaos runner sets it to prove its
// checks catch the bug.
const envPlantBug = "CAIRN_PLANT_BUG"

// plantedBugs returns the bugs named by CAIRN_PLANT_BUG. An unknown name
// ends the process: a test build must not silently run without its bug.
func plantedBugs() node.Bugs {
	switch v := os.Getenv(envPlantBug); v {
	case "":
		return node.Bugs{}
	case "stale-reads":
		return node.Bugs{SkipReadIndex: true}
	case "double-apply":
		return node.Bugs{ReapplyAfterRestart: true}
	case "followers-expire-leases":
		return node.Bugs{FollowersExpireLeases: true}
	case "skip-wal-fsync":
		return node.Bugs{} // planted on the storage: plantStorageBugs
	default:
		fmt.Fprintf(os.Stderr, "cairn: %s=%q: unknown planted bug (want stale-reads, double-apply, followers-expire-leases or skip-wal-fsync)\n", envPlantBug, v)
		os.Exit(2)
		return node.Bugs{}
	}
}

// plantStorageBugs plants the bugs that live in the member's storage
// rather than in its core: "skip-wal-fsync" makes the WAL never fsync its
// files nor its folder (as --unsafe-no-fsync, for the WAL alone), so a
// power cut loses entries the member acknowledged.
func plantStorageBugs(c *node.Config) {
	if os.Getenv(envPlantBug) == "skip-wal-fsync" {
		fs := c.WALFS
		if fs == nil {
			fs = vfs.OS()
		}
		c.WALFS = vfs.NoSync(fs)
	}
}
