package wal

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
)

const (
	segmentExt     = ".wal"
	tmpExt         = ".tmp"
	segmentVersion = 1
	// segmentPayloadLen is the size of a segment record's payload:
	// version byte, sequence, first index.
	segmentPayloadLen = 17
)

// segmentName is the file name of the segment with sequence number seq whose
// first entry is expected at index first. Names sort in sequence order.
func segmentName(seq, first uint64) string {
	return fmt.Sprintf("%016x-%016x%s", seq, first, segmentExt)
}

// parseSegmentName is the inverse of segmentName.
func parseSegmentName(name string) (seq, first uint64, ok bool) {
	base, found := strings.CutSuffix(name, segmentExt)
	if !found || len(base) != 33 || base[16] != '-' {
		return 0, 0, false
	}
	seq, err1 := strconv.ParseUint(base[:16], 16, 64)
	first, err2 := strconv.ParseUint(base[17:], 16, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return seq, first, true
}

func encodeSegmentPayload(seq, first uint64) []byte {
	p := make([]byte, segmentPayloadLen)
	p[0] = segmentVersion
	binary.LittleEndian.PutUint64(p[1:9], seq)
	binary.LittleEndian.PutUint64(p[9:17], first)
	return p
}

func decodeSegmentPayload(p []byte) (seq, first uint64, err error) {
	if len(p) != segmentPayloadLen {
		return 0, 0, fmt.Errorf("segment record payload is %d bytes, want %d", len(p), segmentPayloadLen)
	}
	if p[0] != segmentVersion {
		return 0, 0, fmt.Errorf("unknown segment format version %d", p[0])
	}
	return binary.LittleEndian.Uint64(p[1:9]), binary.LittleEndian.Uint64(p[9:17]), nil
}

// segment is a live segment file.
type segment struct {
	seq   uint64
	first uint64
	name  string // base name
}
