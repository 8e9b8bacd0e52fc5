package mvcc

import (
	"sync/atomic"
	"time"
)

// Stats are the store's operation counters and its number of live keys,
// what etcd exports as etcd_mvcc_{put,range,delete,txn}_total,
// etcd_debugging_mvcc_total_put_size_in_bytes and
// etcd_debugging_mvcc_keys_total. The counters count since Open, as etcd's
// count since start.
type Stats struct {
	// Puts, Deletes and Ranges count operations, those inside
	// transactions included (a DeleteRange counts once, whatever it
	// deleted); Ranges counts reads whether or not they went through raft.
	Puts, Deletes, Ranges uint64
	// Txns counts transactions of more than one operation, as etcd does.
	Txns uint64
	// PutBytes is the sum of len(key)+len(value) of every put.
	PutBytes uint64
	// Keys is the number of keys that exist at the current revision.
	Keys int64
}

// opCounters are the counters behind Stats. They belong to the Store, not
// to a database file, so ReplaceDB and Defrag do not reset them.
type opCounters struct {
	puts, deletes, ranges, txns, putBytes atomic.Uint64
}

// txnOps counts the operations of one write transaction, added to the
// Store's counters when it succeeds.
type txnOps struct {
	puts, deletes, ranges int
	putBytes              int
	keys                  int64 // live keys created minus deleted
}

func (s *Store) countTxn(o *txnOps) {
	s.ops.puts.Add(uint64(o.puts))
	s.ops.deletes.Add(uint64(o.deletes))
	s.ops.ranges.Add(uint64(o.ranges))
	s.ops.putBytes.Add(uint64(o.putBytes))
	if o.puts+o.deletes+o.ranges > 1 {
		s.ops.txns.Add(1)
	}
}

// Stats returns the operation counters and the number of live keys. Safe
// for concurrent use.
func (s *Store) Stats() Stats {
	s.mu.RLock()
	keys := s.keys
	s.mu.RUnlock()
	return Stats{
		Puts: s.ops.puts.Load(), Deletes: s.ops.deletes.Load(), Ranges: s.ops.ranges.Load(),
		Txns: s.ops.txns.Load(), PutBytes: s.ops.putBytes.Load(), Keys: keys,
	}
}

// SetCommitObserver installs fn, called on the committing goroutine after
// every commit of the write batch to bbolt (its write and fsync) with how
// long it took by the Store's clock: etcd's
// etcd_disk_backend_commit_duration_seconds. nil removes it.
func (s *Store) SetCommitObserver(fn func(d time.Duration)) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.commitObserver = fn
}

// countLiveKeys counts the keys of idx that exist at its newest revision.
func countLiveKeys(idx *treeIndex) int64 {
	var n int64
	idx.tree.Ascend(func(ki *keyIndex) bool {
		if _, ok := ki.latest(); ok {
			n++
		}
		return true
	})
	return n
}

// CompactionStep is one CompactStep that had a compaction to work on.
type CompactionStep struct {
	// Keys is the number of revisions the step removed from the database.
	Keys int
	// Pause is how long the step held the writer, by the Store's clock.
	Pause time.Duration
	// Done is whether the compaction finished with this step; Total is
	// then how long it took, from Compact (or, for one resumed when the
	// database was opened, its first step) to the end of this step.
	Done  bool
	Total time.Duration
}

// CompactionObserver receives what compactions do, on the writer
// goroutine: etcd's compaction metrics.
type CompactionObserver struct {
	// Index, if set, receives how long each Compact took to compact the
	// in-memory index (the writer holds it meanwhile).
	Index func(d time.Duration)
	// Step, if set, receives each CompactStep that had work to do.
	Step func(CompactionStep)
}

// SetCompactionObserver installs o (the zero value removes it).
func (s *Store) SetCompactionObserver(o CompactionObserver) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.compObserver = o
}

// OpenReadTxns is the number of read transactions open on the database
// (bbolt's count): snapshots being read (OpenSnapshot) and reads in
// progress. A database swapped out keeps its own until its last snapshot
// closes; they are not counted here. Safe for concurrent use.
func (s *Store) OpenReadTxns() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return 0
	}
	return s.db.Stats().OpenTxN
}

// CommitPhases are the phases of a commit of the write batch as bbolt
// times them (by the wall clock: bbolt's own measure, as etcd reports it).
type CommitPhases struct {
	Rebalance, Spill, Write time.Duration
}

// SetCommitPhasesObserver installs fn, called on the committing goroutine
// after every commit of the write batch with bbolt's timings of its
// phases: etcd's etcd_debugging_disk_backend_commit_*_duration_seconds.
// nil removes it.
func (s *Store) SetCommitPhasesObserver(fn func(CommitPhases)) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.phaseObserver = fn
}
