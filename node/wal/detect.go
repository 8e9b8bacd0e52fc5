package wal

// SegmentHeadSize is how many bytes of a file StartsWithSegmentRecord needs:
// the size of a segment record.
const SegmentHeadSize = headerSize + (1+segmentPayloadLen+7)&^7

// StartsWithSegmentRecord reports whether head, the first bytes of a file
// (at least SegmentHeadSize of them), begins with the segment record every
// segment of a Cairn WAL starts with: the right kind and format version and
// a checksum that verifies. etcd's WAL segments carry the same file names
// but never start this way (package etcdwal tells them apart).
func StartsWithSegmentRecord(head []byte) bool {
	rec, _, st, _ := decodeRecord(head, 0)
	if st != frameOK || rec.kind != kindSegment {
		return false
	}
	_, _, err := decodeSegmentPayload(rec.payload)
	return err == nil
}
