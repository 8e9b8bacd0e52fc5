//go:build race

package e2e

// raceEnabled: this test binary runs under the race detector, so TestMain
// builds cairn with it too and every member's log is checked for races.
const raceEnabled = true
