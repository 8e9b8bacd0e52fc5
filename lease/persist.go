package lease

import (
	"encoding/binary"
	"fmt"
)

// BucketName is the Backend bucket the lessor keeps its leases in.
const BucketName = "lease"

// recordVersion is the first byte of every persisted lease record.
const recordVersion = 1

// recordLen is the length of a persisted lease record: version byte,
// granted TTL and checkpointed remaining TTL (int64 big-endian each).
const recordLen = 1 + 8 + 8

// Backend is where the lessor persists leases. mvcc.Store's auxiliary
// buckets satisfy it, so lease writes share the batch of the KV writes
// and the consistent index of the entry that caused them. AuxForEach
// must see writes not yet committed.
type Backend interface {
	AuxPut(bucket, key, value []byte)
	AuxDelete(bucket, key []byte)
	AuxForEach(bucket []byte, fn func(k, v []byte) error) error
}

// leaseKey is the bucket key of lease id: its 8 big-endian bytes.
func leaseKey(id int64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), uint64(id))
}

func encodeRecord(ttl, remaining int64) []byte {
	b := make([]byte, 1, recordLen)
	b[0] = recordVersion
	b = binary.BigEndian.AppendUint64(b, uint64(ttl))
	return binary.BigEndian.AppendUint64(b, uint64(remaining))
}

// decodeRecord parses one bucket entry; a malformed one is an error
// naming the key, never silently skipped.
func decodeRecord(k, v []byte) (id, ttl, remaining int64, err error) {
	if len(k) != 8 {
		return 0, 0, 0, fmt.Errorf("lease: bucket %q: key %x is not an 8-byte lease ID", BucketName, k)
	}
	if len(v) != recordLen || v[0] != recordVersion {
		return 0, 0, 0, fmt.Errorf("lease: bucket %q: lease %x: malformed record %x", BucketName, k, v)
	}
	id = int64(binary.BigEndian.Uint64(k))
	ttl = int64(binary.BigEndian.Uint64(v[1:9]))
	remaining = int64(binary.BigEndian.Uint64(v[9:17]))
	return id, ttl, remaining, nil
}

func (l *Lessor) persist(le *lease) {
	l.b.AuxPut([]byte(BucketName), leaseKey(le.id), encodeRecord(le.ttl, le.remaining))
}
