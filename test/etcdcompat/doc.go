// Package etcdcompat tests that Cairn's data and etcd 3.7's are
// interchangeable, with the real etcd 3.7.3 server and etcdutl:
//
//   - the way back: a snapshot of a Cairn member passes `etcdutl snapshot
//     status` and `etcdutl hashkv`, and `etcdutl snapshot restore` turns it
//     into a data dir that a real etcd starts on with the same keys,
//     revisions, compaction, leases, HashKV and (etcd's) member IDs;
//   - the way in: an etcd snapshot restored with etcdutl starts Cairn, which
//     imports etcd's WAL (keeping it in member/wal.etcd-imported) and serves
//     the same;
//   - a round trip Cairn -> etcd -> Cairn changes nothing;
//   - HashKV gives etcd's number for the same history of writes, deletes,
//     txns and compactions;
//   - cairnctl's offline commands answer as etcdutl's: snapshot status and
//     hashkv print the same, snapshot restore of an etcd snapshot starts
//     Cairn with etcd's state, its --bump-revision is etcdutl's, and the
//     database it restores passes etcdutl and restores into etcd.
//
// It is its own module so that etcd's server and etcdutl never enter
// Cairn's go.mod: TestMain builds them (go.mod's tool directive) along with
// cairn and cairnctl from the parent module. CAIRN_ETCDCOMPAT_CAIRN,
// CAIRN_ETCDCOMPAT_CAIRNCTL, CAIRN_ETCDCOMPAT_ETCD and
// CAIRN_ETCDCOMPAT_ETCDUTL name prebuilt binaries to use instead. `make test-etcdcompat` runs it, and `make test` includes
// it.
package etcdcompat
