// Package proc runs cairn members as real processes on loopback, for the
// tests and tools that need the real binary: the end-to-end tests (e2e)
// and the fault-injection runner (cmd/chaos).
//
// It builds the binary (Build), picks free loopback ports (FreePorts,
// FreeURLs), lays out a member's flags (Flags, InitialCluster) and runs one
// process of a member at a time (Member): Start, then wait on an event
// (WaitListening, WaitHealthy) rather than for a fixed time; Stop (SIGTERM),
// Kill (SIGKILL), Pause and Resume (SIGSTOP, SIGCONT), and Restart on the
// same data dir and ports. Every run's output is appended to the member's
// log file, which errors quote the tail of.
//
// The member binary may be etcd instead of cairn: the flags are etcd's.
package proc
