// Package node is Cairn's deterministic core: one member's replicated state
// machine, driven from outside, with no goroutine, timer or socket of its own.
//
// # What it holds
//
// Core owns a raft RawNode, the write-ahead log (node/wal), the MVCC store
// (mvcc), the lessor (lease), the alarms and the cluster's members, and
// applies committed entries to them: KV writes, compactions, lease grants,
// revokes and checkpoints, alarms, member attributes and conf changes. Each
// normal entry carries one etcdserverpb.InternalRaftRequest; its result goes
// to the waiter registered by the member that proposed it.
//
// # Contract
//
//   - One goroutine calls every method of a Core (the production shell's
//     loop in package server, or the simulator in package sim). Reads of the
//     MVCC store through KV() may run on other goroutines at any time.
//   - The core reads time only from Config.Clock, randomness only from what
//     Config gives it, sends only through Config.Transport (which must not
//     block) and writes its log only through Config.FS. Given the same calls
//     in the same order with the same clock readings, it produces the same
//     messages, entries and results. `make lint` enforces the imports that
//     make this true (no gRPC, net, net/http, os/signal or Prometheus, and no
//     wall-clock reads; see scripts/archlint).
//   - Process handles one raft Ready: it makes entries and hard state durable
//     (one WAL fsync), then sends messages, then applies committed entries,
//     recording the consistent index after each entry's writes in the same
//     bbolt batch. An entry is never applied before it is durable, and the
//     applied index only grows.
//   - Errors that an entry's request can deterministically cause (a
//     compacted revision, a missing lease, NOSPACE...) are results for the
//     client and are the same on every member. Any other apply error stops the
//     member (ErrStopped), because continuing would let members diverge.
//
// The production shell (package server) runs a Core in real time, turns the
// API's blocking calls into proposals and read rounds on its loop, and maps
// results to etcd's errors; the API layer (package api) serves them over
// gRPC and HTTP.
package node
