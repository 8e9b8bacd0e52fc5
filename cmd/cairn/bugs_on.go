//go:build cairnbugs

package main

import (
	"fmt"
	"os"

	"github.com/cairnkv/cairn/node"
)

// envPlantBug names the bug a cairnbugs build plants: "stale-reads"
// (linearizable reads skip the ReadIndex round), "double-apply" (entries
// are applied again after a restart) or "followers-expire-leases" (every
// member expires leases by its own clock). The chaos runner sets it to prove its
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
	default:
		fmt.Fprintf(os.Stderr, "cairn: %s=%q: unknown planted bug (want stale-reads, double-apply or followers-expire-leases)\n", envPlantBug, v)
		os.Exit(2)
		return node.Bugs{}
	}
}
