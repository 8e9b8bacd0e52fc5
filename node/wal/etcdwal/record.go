package etcdwal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Record types (walpb.Record.type).
const (
	typeMetadata int64 = 1
	typeEntry    int64 = 2
	typeState    int64 = 3
	typeCRC      int64 = 4
	typeSnapshot int64 = 5
)

func typeName(t int64) string {
	switch t {
	case typeMetadata:
		return "metadata"
	case typeEntry:
		return "entry"
	case typeState:
		return "state"
	case typeCRC:
		return "crc"
	case typeSnapshot:
		return "snapshot"
	}
	return fmt.Sprintf("type %d", t)
}

// frameHeaderSize is the size of a frame's length word.
const frameHeaderSize = 8

// sectorSize is the unit of etcd's torn-write detection: a record one of
// whose 512-byte sectors reads as all zeros was never completely written.
const sectorSize = 512

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// record is one decoded walpb.Record. data aliases the segment's bytes.
type record struct {
	typ    int64
	crc    uint32
	data   []byte
	hasCRC bool
	off    int64 // offset of the frame in its file
}

// splitLengthWord decodes a frame's length word into the record size and
// the padding after it. ok is false when the word is not one etcd writes
// (padding flagged but bits other than the pad count set in the top byte,
// or a size and padding that do not end on an 8-byte boundary).
func splitLengthWord(w uint64) (size, pad int64, ok bool) {
	size = int64(w & (1<<56 - 1))
	top := byte(w >> 56)
	if top&0x80 != 0 {
		pad = int64(top & 0x7)
	}
	ok = (top == 0 || top&0x78 == 0 && top&0x80 != 0) && (size+pad)%8 == 0
	return size, pad, ok
}

// parseRecord decodes the protobuf of a walpb.Record. Unknown fields are
// skipped, as proto2 readers do; a known field with the wrong wire type is
// an error.
func parseRecord(b []byte) (record, error) {
	var r record
	for len(b) > 0 {
		num, wt, n := protowire.ConsumeTag(b)
		if n < 0 {
			return record{}, protowire.ParseError(n)
		}
		b = b[n:]
		switch {
		case num == 1 && wt == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return record{}, protowire.ParseError(n)
			}
			r.typ, b = int64(v), b[n:]
		case num == 2 && wt == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return record{}, protowire.ParseError(n)
			}
			r.crc, r.hasCRC, b = uint32(v), true, b[n:]
		case num == 3 && wt == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return record{}, protowire.ParseError(n)
			}
			r.data, b = v, b[n:]
		case num >= 1 && num <= 3:
			return record{}, fmt.Errorf("field %d has wire type %d", num, wt)
		default:
			n := protowire.ConsumeFieldValue(num, wt, b)
			if n < 0 {
				return record{}, protowire.ParseError(n)
			}
			b = b[n:]
		}
	}
	return r, nil
}

// Metadata is what etcd stores at the head of every WAL segment
// (etcdserverpb.Metadata): the member's and the cluster's IDs.
type Metadata struct {
	NodeID    uint64
	ClusterID uint64
}

// parseMetadata decodes an etcdserverpb.Metadata.
func parseMetadata(b []byte) (Metadata, error) {
	var m Metadata
	err := parseUint64Fields(b, func(num protowire.Number, v uint64) {
		switch num {
		case 1:
			m.NodeID = v
		case 2:
			m.ClusterID = v
		}
	}, 1, 2)
	return m, err
}

// parseUint64Fields walks a message whose fields numbered in known are
// varints, calling set for each; other fields are skipped.
func parseUint64Fields(b []byte, set func(protowire.Number, uint64), known ...protowire.Number) error {
	for len(b) > 0 {
		num, wt, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		isKnown := false
		for _, k := range known {
			isKnown = isKnown || k == num
		}
		if isKnown {
			if wt != protowire.VarintType {
				return fmt.Errorf("field %d has wire type %d", num, wt)
			}
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			set(num, v)
			b = b[n:]
			continue
		}
		n = protowire.ConsumeFieldValue(num, wt, b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
	}
	return nil
}

// parseSnapshotMarker decodes a walpb.Snapshot into raft's
// SnapshotMetadata, which has the same fields. ConfState stays nil when the
// marker has none (markers written before etcd 3.5).
func parseSnapshotMarker(b []byte) (*raftpb.SnapshotMetadata, error) {
	var index, term uint64
	var cs *raftpb.ConfState
	for len(b) > 0 {
		num, wt, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		b = b[n:]
		switch {
		case (num == 1 || num == 2) && wt == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return nil, protowire.ParseError(n)
			}
			if num == 1 {
				index = v
			} else {
				term = v
			}
			b = b[n:]
		case num == 3 && wt == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, protowire.ParseError(n)
			}
			// A repeated occurrence of a message field merges into the
			// first, as proto decoding does.
			if cs == nil {
				cs = &raftpb.ConfState{}
			}
			if err := (proto.UnmarshalOptions{Merge: true}).Unmarshal(v, cs); err != nil {
				return nil, fmt.Errorf("conf_state: %w", err)
			}
			b = b[n:]
		case num >= 1 && num <= 3:
			return nil, fmt.Errorf("field %d has wire type %d", num, wt)
		default:
			n := protowire.ConsumeFieldValue(num, wt, b)
			if n < 0 {
				return nil, protowire.ParseError(n)
			}
			b = b[n:]
		}
	}
	return &raftpb.SnapshotMetadata{Index: proto.Uint64(index), Term: proto.Uint64(term), ConfState: cs}, nil
}

// segmentDecoder frames and checksums the records of one segment file.
type segmentDecoder struct {
	file string
	buf  []byte
	last bool   // the WAL's last segment: the only one allowed a torn tail
	off  int64  // offset of the next frame
	crc  uint32 // running checksum
}

// errSegmentEnd is returned by next at the end of a segment.
var errSegmentEnd = errors.New("end of segment")

// tornError is returned by next for a torn tail of the last segment: the
// record at its offset and everything after it are to be dropped.
type tornError struct{ *CorruptError }

// next returns the segment's next record. It returns errSegmentEnd at a zero
// length word or the end of the file, a *tornError for a torn tail and a
// *CorruptError for anything else that is wrong with the record. Crc records
// are checked against the running checksum (unless it is 0: a reader that
// started at this segment) and then replace it, as etcd does.
func (d *segmentDecoder) next() (record, error) {
	off := d.off
	rest := int64(len(d.buf)) - off
	if rest == 0 {
		return record{}, errSegmentEnd
	}
	if rest < frameHeaderSize {
		return record{}, d.truncated(off, "%d bytes left, too few for a length word", rest)
	}
	word := binary.LittleEndian.Uint64(d.buf[off:])
	if word == 0 {
		return record{}, errSegmentEnd
	}
	size, pad, ok := splitLengthWord(word)
	if size > rest-frameHeaderSize || pad > rest-frameHeaderSize-size {
		return record{}, d.truncated(off, "record of %d bytes (+%d padding) runs past the end of the file (%d bytes left)", size, pad, rest-frameHeaderSize)
	}
	frame := d.buf[off+frameHeaderSize : off+frameHeaderSize+size+pad]
	if !ok {
		return record{}, d.bad(off, frame, "bad length word %#016x", word)
	}
	rec, err := parseRecord(frame[:size])
	if err != nil {
		return record{}, d.bad(off, frame, "undecodable record: %v", err)
	}
	rec.off = off
	if rec.typ == typeCRC {
		if d.crc != 0 && rec.crc != d.crc {
			return record{}, corruptf(d.file, off, "crc record says %08x, the records before it sum to %08x", rec.crc, d.crc)
		}
		d.crc = rec.crc
	} else {
		sum := crc32.Update(d.crc, castagnoli, rec.data)
		if sum != rec.crc {
			return record{}, d.bad(off, frame, "%s record: crc mismatch (stored %08x, computed %08x)", typeName(rec.typ), rec.crc, sum)
		}
		d.crc = sum
	}
	d.off = off + frameHeaderSize + size + pad
	return rec, nil
}

// truncated reports a frame cut short by the end of the file: a torn tail in
// the last segment, corruption in any other.
func (d *segmentDecoder) truncated(off int64, format string, args ...any) error {
	ce := corruptf(d.file, off, format, args...)
	if d.last {
		return &tornError{ce}
	}
	ce.Reason += " (not the last segment)"
	return ce
}

// bad reports a record that does not decode or verify: a torn tail if it is
// in the last segment and one of the sectors it spans is all zeros (a write
// that never completed), corruption otherwise.
func (d *segmentDecoder) bad(off int64, frame []byte, format string, args ...any) error {
	ce := corruptf(d.file, off, format, args...)
	if d.last && hasZeroSector(frame, off+frameHeaderSize) {
		ce.Reason += " (a sector it spans is all zeros)"
		return &tornError{ce}
	}
	return ce
}

// hasZeroSector reports whether any piece of b, cut at the 512-byte sector
// boundaries of the file (b starts at file offset start), is all zeros.
func hasZeroSector(b []byte, start int64) bool {
	for len(b) > 0 {
		n := min(int64(len(b)), sectorSize-start%sectorSize)
		zero := true
		for _, c := range b[:n] {
			if c != 0 {
				zero = false
				break
			}
		}
		if zero {
			return true
		}
		b, start = b[n:], start+n
	}
	return false
}
