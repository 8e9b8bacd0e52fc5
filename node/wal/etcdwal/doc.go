// Package etcdwal reads etcd's own raft log: the WAL segments of an etcd
// (v3.5 to v3.7) member directory (member/wal/*.wal) and the snapshot files
// beside its database (member/snap/*.snap), as written by a stopped etcd
// member or by `etcdutl snapshot restore`. It never writes etcd's format and
// never modifies the files it reads; Import converts such a log into a Cairn
// WAL (package wal) and moves etcd's WAL aside.
//
// The code is Cairn's own, written from etcd's documented and observable
// formats; it imports none of etcd's server packages.
//
// # WAL segments
//
// A WAL is a directory of segment files named "%016x-%016x.wal" (sequence
// number, then the raft index of the first entry expected in it; Cairn's WAL
// uses the same names, see Detect). Other names (etcd's preallocated "0.tmp",
// "1.tmp") are ignored. A segment is a sequence of frames:
//
//	uint64 LE  length word: the low 56 bits are the size N of the record;
//	           when bit 63 is set, bits 56..58 are the padding P
//	N bytes    a walpb.Record protobuf
//	P bytes    zero padding; N+P is a multiple of 8
//
// A length word of zero, or the end of the file, ends the segment (etcd
// preallocates segments with zeros). The record is the proto2 message
//
//	message Record { optional int64 type = 1; optional uint32 crc = 2; optional bytes data = 3; }
//
// with these types:
//
//	1 metadata  data: etcdserverpb.Metadata {uint64 NodeID = 1; uint64 ClusterID = 2}
//	2 entry     data: raftpb.Entry
//	3 state     data: raftpb.HardState
//	4 crc       no data; crc carries the checksum of everything before it
//	5 snapshot  data: walpb.Snapshot {uint64 index = 1; uint64 term = 2; raftpb.ConfState conf_state = 3}
//
// Checksums are CRC-32C (Castagnoli), chained over the data of every record:
// a record's crc is crc32.Update(running, Castagnoli, data), which becomes
// the running value. Crc records are not checksummed themselves: each segment
// starts with one carrying the running value at the end of the previous
// segment (0 in the first), followed by the metadata record (the same bytes
// in every segment), then the empty snapshot marker {0, 0} in a WAL's first
// segment or the latest HardState in a later one, then entries, HardStates
// and snapshot markers as they were saved. A reader that starts at a later
// segment takes the crc record's value as its running value; one that read
// the previous segment checks that the two agree. An entry at an index
// already in the log replaces it and every entry after it (raft's log
// conflict resolution).
//
// # Snapshot files
//
// member/snap/"%016x-%016x.snap" (term, index) is a snappb.Snapshot
// {uint32 crc = 1; bytes data = 2} where data is a marshaled raftpb.Snapshot
// (its metadata and etcd's membership in v2 store JSON) and crc is CRC-32C of
// data. etcd writes it before the WAL marker for the same index, so a marker
// in the WAL has its file unless an operator removed it. etcd 3.7 restarts
// from the marker alone and does not need the file; Read decodes the one that
// matches the marker it starts from, when present.
//
// # What Read returns
//
// Read replays the WAL as etcd 3.7 does when a member restarts: the start
// marker is the last snapshot marker of the whole WAL whose index is at most
// the last HardState's commit index (or the empty marker {0, 0} when there is
// none); replay begins at the last segment whose name's index is at most the
// marker's index, must meet the marker there, and returns the metadata, the
// last HardState and the entries after the marker, later entries replacing
// earlier ones at the same index.
//
// # Damage
//
// As etcd does, Read accepts a torn tail: a record of the last segment that
// is truncated (its frame runs past the end of the file), or fails to decode
// or its checksum while one of the 512-byte sectors it spans reads as all
// zeros (a write that never reached the disk). Reading stops before it and
// Log.TornTail says where; etcd would cut the segment there on its next
// start. Anything else (a bad record in an
// earlier segment, a checksum or decode failure without a zeroed sector,
// a crc record that breaks the chain, a missing segment, metadata that
// differs between segments, an unknown record type, a gap in the entries, a
// start marker that is not found) is an error wrapping ErrCorrupt that names
// the file and byte offset.
package etcdwal
