//go:build !cairnbugs

package node

// bugsEnabled is false in every normal build: Config.Bugs has no effect.
const bugsEnabled = false
