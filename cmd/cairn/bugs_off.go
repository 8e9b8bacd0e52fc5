//go:build !cairnbugs

package main

import "github.com/cairnkv/cairn/node"

// plantedBugs plants nothing: only cairnbugs test builds read
// CAIRN_PLANT_BUG (see bugs_on.go).
func plantedBugs() node.Bugs { return node.Bugs{} }

// plantStorageBugs plants nothing (see bugs_on.go).
func plantStorageBugs(*node.Config) {}
