//go:build cairnbugs

package node

// bugsEnabled lets Config.Bugs plant bugs, in test builds only.
const bugsEnabled = true
