// Package wal is Cairn's raft write-ahead log: the HardState, entries and
// snapshot markers a node must not lose, written through a vfs.FS so the
// simulator can crash a node and keep only what was fsynced.
//
// # On-disk format
//
// A WAL is a directory of segment files named "%016x-%016x.wal" (sequence
// number, then the index of the first entry expected in it), preallocated to
// Config.SegmentSize bytes of zeros. A segment holds records, each aligned to
// 8 bytes:
//
//	uint32 LE  body length L (>= 1; 0 marks the end of the log)
//	uint32 LE  CRC-32C of (uint64 LE record offset in the file, uint32 LE L, body)
//	body       1 byte kind, then the payload
//	0..7 zero bytes of padding to the next multiple of 8
//
// Every segment starts with a segment record (sequence, first index), the
// metadata given to Create, the latest HardState and the latest snapshot
// marker (when there are any), so removing older segments loses nothing a
// replay needs. Payloads of HardState, entry and snapshot records are the
// proto.Marshal encodings of raftpb.HardState, raftpb.Entry and
// raftpb.SnapshotMetadata. Putting the record's offset under its CRC means a
// record copied to another place (a stale or misdirected write) does not
// verify.
//
// # Recovery
//
// Open reads every segment. Reading stops at a zero length followed only by
// zeros. A bad record (truncated, failing its CRC) in the last segment with no
// valid record anywhere after it is a torn tail from a crash during a write
// that was never acknowledged: the segment is cut there, zeroed, synced and
// the repair logged at Warn. Any other bad data (a bad record with a valid one
// after it, a bad record in a segment that is not the last, a record whose CRC
// verifies but whose payload does not decode, a missing segment) is an error
// wrapping ErrCorrupt that names the file and byte offset.
//
// # Crash safety
//
// Save and SaveSnapshot return only after one fsync covering everything they
// wrote. A new segment is written to a temporary name, synced, renamed into
// place and the directory synced, after the previous segment was synced. A
// failed write or fsync leaves the WAL's on-disk state unknown, so the WAL
// then refuses every further Save or SaveSnapshot: the node must stop and
// recover by reopening.
package wal
