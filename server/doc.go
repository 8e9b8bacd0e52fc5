// Package server is the production shell around node.Core: it runs one
// member in real time and implements the backends the api package serves.
//
// A Server owns one loop goroutine that is the only caller of its Core: it
// ticks raft on a ticker, feeds it what the transport delivers, processes
// every Ready, and runs the closures API calls hand it (do). API calls block
// on their context: a write is proposed on the loop and waits for its
// entry's result; a linearizable read waits for a ReadIndex round and then
// reads the MVCC store on the caller's goroutine. Around that the shell does
// what needs real time or the network: auto-compaction, publishing this
// member's name and client URLs, forwarding lease keep-alives and
// time-to-live to the leader's client URL over gRPC, the Cluster API's
// checks, the quota check and the member's Prometheus metrics.
//
// Nothing here is replicated state: everything a member must agree on is
// decided by node.Core when it applies an entry.
package server
