package wal

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// kind is a record's type, the first byte of its body.
type kind byte

const (
	kindSegment   kind = 1 // segment header: version, sequence, first index
	kindMetadata  kind = 2 // opaque bytes given to Create
	kindHardState kind = 3 // raftpb.HardState
	kindEntry     kind = 4 // raftpb.Entry
	kindSnapshot  kind = 5 // raftpb.SnapshotMetadata
)

func (k kind) String() string {
	switch k {
	case kindSegment:
		return "segment"
	case kindMetadata:
		return "metadata"
	case kindHardState:
		return "hardstate"
	case kindEntry:
		return "entry"
	case kindSnapshot:
		return "snapshot"
	}
	return fmt.Sprintf("kind(%d)", byte(k))
}

func (k kind) valid() bool { return k >= kindSegment && k <= kindSnapshot }

// headerSize is the size of a record's length and CRC fields.
const headerSize = 8

func align8(n int64) int64 { return (n + 7) &^ 7 }

// recordSize is the on-disk size of a record with a payload of n bytes.
func recordSize(payloadLen int) int64 { return headerSize + align8(int64(1+payloadLen)) }

// recordCRC is the checksum stored in the record at file offset off.
func recordCRC(off int64, body []byte) uint32 {
	tab := crc32.MakeTable(crc32.Castagnoli) // cached by the standard library
	var pre [12]byte
	binary.LittleEndian.PutUint64(pre[0:8], uint64(off))
	binary.LittleEndian.PutUint32(pre[8:12], uint32(len(body)))
	return crc32.Update(crc32.Update(0, tab, pre[:]), tab, body)
}

// appendRecord appends the encoding of a record of kind k carrying payload,
// to be written at file offset off.
func appendRecord(dst []byte, off int64, k kind, payload []byte) []byte {
	start := len(dst)
	bodyLen := 1 + len(payload)
	dst = append(dst, make([]byte, headerSize)...)
	dst = append(dst, byte(k))
	dst = append(dst, payload...)
	if pad := align8(int64(bodyLen)) - int64(bodyLen); pad > 0 {
		dst = append(dst, make([]byte, pad)...)
	}
	body := dst[start+headerSize : start+headerSize+bodyLen]
	binary.LittleEndian.PutUint32(dst[start:], uint32(bodyLen))
	binary.LittleEndian.PutUint32(dst[start+4:], recordCRC(off, body))
	return dst
}

// record is one framed record read from a segment. payload aliases the
// segment's bytes.
type record struct {
	kind    kind
	payload []byte
	off     int64 // offset of the record in its file
}

// frameStatus is the outcome of decodeRecord.
type frameStatus int

const (
	frameOK  frameStatus = iota
	frameEnd             // zero length: nothing was written here
	frameBad             // truncated or failing its CRC
)

// decodeRecord frames the record at offset off of a segment's bytes buf. On
// frameOK it returns the record and its on-disk size; on frameBad, why. It
// checks the frame only (length and CRC): the payload is decoded later. It
// never panics, whatever buf holds.
func decodeRecord(buf []byte, off int64) (rec record, size int64, st frameStatus, reason string) {
	if off < 0 || off > int64(len(buf)) {
		return record{}, 0, frameBad, "offset outside the file"
	}
	rest := int64(len(buf)) - off
	if rest < headerSize {
		if allZero(buf[off:]) {
			return record{}, 0, frameEnd, ""
		}
		return record{}, 0, frameBad, fmt.Sprintf("truncated record header (%d bytes left)", rest)
	}
	bodyLen := int64(binary.LittleEndian.Uint32(buf[off:]))
	if bodyLen == 0 {
		return record{}, 0, frameEnd, ""
	}
	size = headerSize + align8(bodyLen)
	if size > rest {
		return record{}, 0, frameBad, fmt.Sprintf("record of %d bytes runs past the end of the file (%d bytes left)", size, rest)
	}
	body := buf[off+headerSize : off+headerSize+bodyLen]
	if want, got := binary.LittleEndian.Uint32(buf[off+4:]), recordCRC(off, body); want != got {
		return record{}, 0, frameBad, fmt.Sprintf("crc mismatch (stored %08x, computed %08x)", want, got)
	}
	return record{kind: kind(body[0]), payload: body[1:], off: off}, size, frameOK, ""
}

func allZero(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// validRecordAfter reports whether any 8-aligned offset at or after from holds
// a record of a known kind whose CRC verifies. It decides whether a bad record
// is a torn tail (nothing valid after it) or corruption in the middle.
func validRecordAfter(buf []byte, from int64) bool {
	for p := align8(from); p+headerSize < int64(len(buf)); p += 8 {
		bodyLen := int64(binary.LittleEndian.Uint32(buf[p:]))
		if bodyLen == 0 || headerSize+align8(bodyLen) > int64(len(buf))-p {
			continue
		}
		if !kind(buf[p+headerSize]).valid() {
			continue
		}
		if _, _, st, _ := decodeRecord(buf, p); st == frameOK {
			return true
		}
	}
	return false
}

// segmentScan is what scanSegment found in one segment.
type segmentScan struct {
	recs []record
	// end is the offset just past the last good record: where appending
	// resumes in the last segment.
	end int64
	// torn is set when the last segment ends in a torn record at end.
	torn       bool
	tornReason string
}

// scanSegment frames every record of the segment file named file, whose
// bytes are buf. last says whether it is the WAL's last segment, the only one
// allowed a torn tail. Bad data is returned as a *CorruptError.
func scanSegment(file string, buf []byte, last bool) (segmentScan, error) {
	var s segmentScan
	off := int64(0)
	for {
		rec, size, st, reason := decodeRecord(buf, off)
		switch st {
		case frameOK:
			s.recs = append(s.recs, rec)
			off += size
			continue
		case frameEnd:
			if allZero(buf[off:]) {
				s.end = off
				return s, nil
			}
			reason = "zero record length followed by non-zero bytes"
		}
		// A bad record at off.
		if !last {
			return s, corruptf(file, off, "%s (not the last segment)", reason)
		}
		if validRecordAfter(buf, off+headerSize) {
			return s, corruptf(file, off, "%s, with valid records after it", reason)
		}
		s.end, s.torn, s.tornReason = off, true, reason
		return s, nil
	}
}
