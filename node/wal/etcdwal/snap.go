package etcdwal

import (
	"fmt"
	"hash/crc32"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/cairnkv/cairn/vfs"
)

// SnapFileName is the name etcd gives the snapshot file of the snapshot at
// index taken in term.
func SnapFileName(term, index uint64) string {
	return fmt.Sprintf("%016x-%016x.snap", term, index)
}

// ReadSnapFile reads and checks an etcd snapshot file (a snappb.Snapshot
// holding a marshaled raftpb.Snapshot and its CRC-32C). Bad data gives an
// error wrapping ErrCorrupt.
func ReadSnapFile(fsys vfs.FS, path string) (*raftpb.Snapshot, error) {
	b, err := readFile(fsys, path)
	if err != nil {
		return nil, err
	}
	return decodeSnapFile(path, b)
}

// decodeSnapFile decodes the contents b of the snapshot file path.
func decodeSnapFile(path string, b []byte) (*raftpb.Snapshot, error) {
	if len(b) == 0 {
		return nil, corruptf(path, 0, "empty snapshot file")
	}
	var crc uint32
	var data []byte
	for p := b; len(p) > 0; {
		off := int64(len(b) - len(p))
		num, wt, n := protowire.ConsumeTag(p)
		if n < 0 {
			return nil, corruptf(path, off, "undecodable snapshot file: %v", protowire.ParseError(n))
		}
		p = p[n:]
		switch {
		case num == 1 && wt == protowire.VarintType:
			v, n := protowire.ConsumeVarint(p)
			if n < 0 {
				return nil, corruptf(path, off, "undecodable snapshot file: %v", protowire.ParseError(n))
			}
			crc, p = uint32(v), p[n:]
		case num == 2 && wt == protowire.BytesType:
			v, n := protowire.ConsumeBytes(p)
			if n < 0 {
				return nil, corruptf(path, off, "undecodable snapshot file: %v", protowire.ParseError(n))
			}
			data, p = v, p[n:]
		case num == 1 || num == 2:
			return nil, corruptf(path, off, "undecodable snapshot file: field %d has wire type %d", num, wt)
		default:
			n := protowire.ConsumeFieldValue(num, wt, p)
			if n < 0 {
				return nil, corruptf(path, off, "undecodable snapshot file: %v", protowire.ParseError(n))
			}
			p = p[n:]
		}
	}
	if len(data) == 0 || crc == 0 {
		return nil, corruptf(path, 0, "snapshot file without data or checksum")
	}
	if sum := crc32.Checksum(data, castagnoli); sum != crc {
		return nil, corruptf(path, 0, "crc mismatch (stored %08x, computed %08x)", crc, sum)
	}
	snap := &raftpb.Snapshot{}
	if err := proto.Unmarshal(data, snap); err != nil {
		return nil, corruptf(path, 0, "undecodable raft snapshot: %v", err)
	}
	return snap, nil
}
