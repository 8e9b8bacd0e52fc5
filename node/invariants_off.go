//go:build !invariants && !race

package node

// invariants: see invariants.go.
const invariants = false
