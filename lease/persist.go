package lease

import (
	"encoding/binary"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// BucketName is the Backend bucket the lessor keeps its leases in.
const BucketName = "lease"

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

// A lease record is etcd's leasepb.Lease message: ID (field 1), TTL
// (field 2) and the checkpointed RemainingTTL (field 3), varints, zero
// fields left out, so etcd reads Cairn's leases and Cairn etcd's.
const (
	fieldID        = 1
	fieldTTL       = 2
	fieldRemaining = 3
)

func encodeRecord(id, ttl, remaining int64) []byte {
	var b []byte
	for _, f := range []struct {
		num protowire.Number
		v   int64
	}{{fieldID, id}, {fieldTTL, ttl}, {fieldRemaining, remaining}} {
		if f.v != 0 {
			b = protowire.AppendTag(b, f.num, protowire.VarintType)
			b = protowire.AppendVarint(b, uint64(f.v))
		}
	}
	return b
}

// decodeRecord parses one bucket entry; a malformed one is an error
// naming the key, never silently skipped.
func decodeRecord(k, v []byte) (id, ttl, remaining int64, err error) {
	if len(k) != 8 {
		return 0, 0, 0, fmt.Errorf("lease: bucket %q: key %x is not an 8-byte lease ID", BucketName, k)
	}
	keyID := int64(binary.BigEndian.Uint64(k))
	bad := func(why string) error {
		return fmt.Errorf("lease: bucket %q: lease %x: malformed record %x: %s", BucketName, k, v, why)
	}
	for len(v) > 0 {
		num, typ, n := protowire.ConsumeTag(v)
		if n < 0 {
			return 0, 0, 0, bad(protowire.ParseError(n).Error())
		}
		v = v[n:]
		if typ != protowire.VarintType {
			n = protowire.ConsumeFieldValue(num, typ, v) // a field Cairn does not know
			if n < 0 {
				return 0, 0, 0, bad(protowire.ParseError(n).Error())
			}
			v = v[n:]
			continue
		}
		x, n := protowire.ConsumeVarint(v)
		if n < 0 {
			return 0, 0, 0, bad(protowire.ParseError(n).Error())
		}
		v = v[n:]
		switch num {
		case fieldID:
			id = int64(x)
		case fieldTTL:
			ttl = int64(x)
		case fieldRemaining:
			remaining = int64(x)
		}
	}
	if id != keyID {
		return 0, 0, 0, bad(fmt.Sprintf("its ID %x is not its key's", id))
	}
	return id, ttl, remaining, nil
}

func (l *Lessor) persist(le *lease) {
	l.b.AuxPut([]byte(BucketName), leaseKey(le.id), encodeRecord(le.id, le.ttl, le.remaining))
}
