// Package mvcc is Cairn's revisioned key space with etcd v3 semantics,
// stored in a bbolt file.
//
// # Data layout
//
// The file is in etcd 3.7's format, so etcd's tools and etcd itself read it
// and Cairn reads theirs. Bucket "key" maps a revision to the
// protobuf-encoded mvccpb.KeyValue it wrote. The bucket key is 17 bytes:
// big-endian main revision, the byte '_', big-endian sub revision, so keys
// sort in revision order; a deletion appends the byte 't' and stores a
// KeyValue holding only the key. Bucket "meta" holds the consistent index and
// term of the last applied raft entry ("consistent_index", "term"), the
// compaction progress as revision keys ("scheduledCompactRev",
// "finishedCompactRev"), the storage version ("storageVersion") and the raft
// configuration ("confState", SetConfState). Any other bucket is auxiliary
// state of other packages (AuxPut and friends): "lease", "members",
// "members_removed", "alarm", "cluster", in etcd's formats. A database from
// a Cairn build before this format is refused (ErrLegacyFormat).
//
// In memory, a B-tree maps each key to its generations: the revisions from
// the put that created the key to the tombstone that deleted it. It is
// rebuilt from bucket "key" by Open. A read looks the revisions up in the
// tree and the values up in bbolt.
//
// Writes go to one long-lived bbolt write transaction, the open batch, which
// is committed by MaybeCommit (when BatchInterval or BatchLimit is reached),
// by SetConsistentIndex when due, and by Commit, Close, Snapshot, Hash and
// Defrag. A crash (Abandon) loses exactly the open batch. Readers never touch
// the write transaction: the encoded values written in the open batch are
// also kept in an in-memory overlay, and reads look there first, then in a
// bbolt read transaction on the last commit.
//
// Compaction is logical at once (the index drops the old revisions) and
// physical in bounded steps (CompactStep), resumed after a restart.
//
// # Concurrency contract
//
// Exactly one writer goroutine calls Put, DeleteRange, Txn, Compact,
// CompactStep, SetConsistentIndex, MaybeCommit, Commit and the Aux methods.
// Range, Rev, CompactRev, HashKV, Hash, Snapshot, Size, SizeInUse and
// ConsistentIndex may be called from any goroutine at any time, and see
// every completed write, committed or not. Defrag and ReplaceDB may be called
// from any goroutine; writers wait while they run.
//
// Once SetConsistentIndex is in use, the batch must only be committed between
// raft entries (after the SetConsistentIndex that follows an entry's writes):
// otherwise a crash could keep an entry's writes but not its index, and the
// entry would be applied twice. Snapshot, Hash and Defrag, which commit and
// may come from other goroutines, therefore wait for such a boundary; the
// writer's own commits are its responsibility.
//
// mvcc starts no goroutines and reads time only from Config.Clock.
package mvcc
