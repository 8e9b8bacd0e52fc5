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

// The bucket key of a revision is etcd's: 8 bytes of main, the separator
// '_', 8 bytes of sub, big-endian, and the byte 't' after them for a
// deletion. Keys sort in revision order. A database written by a Cairn
// build before this format (16-byte keys, no separator) is refused at open:
// legacyRevKey.
const (
	revBytesLen  = 17  // main, '_', sub
	revSeparator = '_' // 9th byte
	tombstoneTag = 't' // 18th byte of the bucket key of a deletion
)

// revKey returns the bucket key of r.
func revKey(r Revision, tomb bool) []byte {
	n := revBytesLen
	if tomb {
		n++
	}
	b := make([]byte, n)
	binary.BigEndian.PutUint64(b, uint64(r.Main))
	b[8] = revSeparator
	binary.BigEndian.PutUint64(b[9:], uint64(r.Sub))
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
	if b[8] != revSeparator {
		return Revision{}, false, false
	}
	r.Main = int64(binary.BigEndian.Uint64(b))
	r.Sub = int64(binary.BigEndian.Uint64(b[9:]))
	return r, len(b) == revBytesLen+1, true
}

// legacyRevKey tells whether b is a revision key in the format of Cairn
// builds before etcd's (16 bytes, then the tombstone tag).
func legacyRevKey(b []byte) bool {
	return len(b) == 16 || (len(b) == 17 && b[16] == tombstoneTag && b[8] != revSeparator)
}
