package mvcc

import "encoding/binary"

// Revision identifies one change: Main is the store revision of the write
// transaction, Sub the position of the change inside it (from 0).
type Revision struct{ Main, Sub int64 }

// GreaterThan reports whether r is after o.
func (r Revision) GreaterThan(o Revision) bool {
	if r.Main != o.Main {
		return r.Main > o.Main
	}
	return r.Sub > o.Sub
}

const (
	revBytesLen  = 16  // 8 bytes main, 8 bytes sub, big-endian
	tombstoneTag = 't' // 17th byte of the bucket key of a deletion
)

// revKey returns the bucket key of r: big-endian main and sub, followed by
// tombstoneTag when r deleted its key. Keys sort in revision order.
func revKey(r Revision, tomb bool) []byte {
	n := revBytesLen
	if tomb {
		n++
	}
	b := make([]byte, n)
	binary.BigEndian.PutUint64(b, uint64(r.Main))
	binary.BigEndian.PutUint64(b[8:], uint64(r.Sub))
	if tomb {
		b[revBytesLen] = tombstoneTag
	}
	return b
}

// parseRevKey decodes a bucket key written by revKey.
func parseRevKey(b []byte) (r Revision, tomb bool, ok bool) {
	if len(b) != revBytesLen && !(len(b) == revBytesLen+1 && b[revBytesLen] == tombstoneTag) {
		return Revision{}, false, false
	}
	r.Main = int64(binary.BigEndian.Uint64(b))
	r.Sub = int64(binary.BigEndian.Uint64(b[8:]))
	return r, len(b) == revBytesLen+1, true
}
