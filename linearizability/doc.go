// Package linearizability records histories of client operations against Cairn (or etcd) and
// checks them for linearizability with porcupine.
//
// # Recording
//
// Create one Recorder per run with a monotonic time source: virtual nanoseconds in the
// simulator, or nanoseconds since the run started on a monotonic clock for real clusters. Each
// client brackets every request:
//
//	tok := rec.Invoke(clientID, linearizability.Put("k", "v"))
//	resp, err := kv.Put(ctx, "k", "v")
//	if err != nil {
//		rec.Unknown(tok) // timeout, lost connection: may or may not have happened
//	} else {
//		rec.Return(tok, linearizability.Response{Revision: resp.Header.Revision})
//	}
//
// An error that proves the request had no effect may be recorded as a Return with
// Succeeded false where the op kind defines it (a lease that does not exist), or the op may
// simply be left out of the history. An unknown write is given return time Infinity, so the
// checker may place it anywhere after its invocation, or after every other operation, which is
// how "it never happened" is expressed; an unknown read is dropped. A lease expiry is recorded
// as a LeaseRevoke with an unknown outcome, invoked when the lease could first have expired.
// Lease IDs are chosen by the client (etcd accepts explicit IDs) so that the op is known
// at invocation.
//
// Response.Revision holds the response header revision when the client has it; 0 leaves it
// unchecked. KVModel checks revisions exactly (every write that changed the store is previous+1,
// everything else is previous), which requires that the history hold every write to the
// store; RegisterModel and LeaseModel, which check partitions of the history separately, check
// only that revisions never go backwards.
//
// # Checking
//
// Pick the model that covers the op kinds in the history: RegisterModel (single-key get, put,
// delete and CAS, partitioned by key: the fastest), LeaseModel (adds leases; partitioned by the
// keys and leases ops connect) or KVModel (every kind, including Range and multi-key Txn, over
// the whole key space). Then:
//
//	m, h := linearizability.KVModel(), rec.History()
//	res, err := linearizability.Check(m, h, time.Minute)
//	if err == nil && res.Outcome == porcupine.Illegal {
//		linearizability.SaveHistory("history.jsonl", h)
//		linearizability.WriteVisualization("history.html", m, res)
//	}
//
// SaveHistory and LoadHistory (or WriteHistory and ReadHistory) store a history as JSON lines,
// one operation per line, so a failing run can be checked again offline. The HTML written by
// WriteVisualization shows one row per client and the longest linearizable prefixes, with the
// model state after each step.
//
// The package depends on no other Cairn package.
package linearizability
