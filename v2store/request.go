package v2store

import (
	"fmt"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/encoding/protowire"
)

// Request is etcd's v2 request (etcdserverpb.Request of etcd 3.5), field
// for field. etcd 3.6 removed the message and reserved its field (2,
// "v2") in InternalRaftRequest, so the generated types Cairn builds with no
// longer have it; Cairn encodes it by hand with etcd 3.5's field numbers and
// carries it in that field, so a v2 entry in Cairn's log has etcd 3.5's bytes.
type Request struct {
	ID         uint64
	Method     string // PUT, POST, DELETE, QGET, SYNC
	Path       string
	Val        string
	Dir        bool
	PrevValue  string
	PrevIndex  uint64
	PrevExist  *bool
	Expiration int64 // unix nanoseconds, the proposer's clock; 0: permanent
	Wait       bool
	Since      uint64
	Recursive  bool
	Sorted     bool
	Quorum     bool
	Time       int64 // unix nanoseconds, the proposer's clock (SYNC)
	Stream     bool
	Refresh    *bool
}

// internalField is InternalRaftRequest's reserved field "v2".
const internalField = 2

// Marshal encodes r as etcd 3.5's gogoproto code did (every non-nullable
// field written, in field order).
func (r *Request) Marshal() []byte {
	var b []byte
	u := func(n protowire.Number, v uint64) {
		b = protowire.AppendTag(b, n, protowire.VarintType)
		b = protowire.AppendVarint(b, v)
	}
	s := func(n protowire.Number, v string) {
		b = protowire.AppendTag(b, n, protowire.BytesType)
		b = protowire.AppendString(b, v)
	}
	bo := func(n protowire.Number, v bool) { u(n, protowire.EncodeBool(v)) }
	u(1, r.ID)
	s(2, r.Method)
	s(3, r.Path)
	s(4, r.Val)
	bo(5, r.Dir)
	s(6, r.PrevValue)
	u(7, r.PrevIndex)
	if r.PrevExist != nil {
		bo(8, *r.PrevExist)
	}
	u(9, uint64(r.Expiration))
	bo(10, r.Wait)
	u(11, r.Since)
	bo(12, r.Recursive)
	bo(13, r.Sorted)
	bo(14, r.Quorum)
	u(15, uint64(r.Time))
	bo(16, r.Stream)
	if r.Refresh != nil {
		bo(17, *r.Refresh)
	}
	return b
}

// Unmarshal decodes etcd 3.5's encoding of a v2 request.
func Unmarshal(b []byte) (*Request, error) {
	r := &Request{}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, fmt.Errorf("v2store: decoding request: %w", protowire.ParseError(n))
		}
		b = b[n:]
		switch typ {
		case protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return nil, fmt.Errorf("v2store: decoding request: %w", protowire.ParseError(n))
			}
			b = b[n:]
			bv := protowire.DecodeBool(v)
			switch num {
			case 1:
				r.ID = v
			case 5:
				r.Dir = bv
			case 7:
				r.PrevIndex = v
			case 8:
				r.PrevExist = &bv
			case 9:
				r.Expiration = int64(v)
			case 10:
				r.Wait = bv
			case 11:
				r.Since = v
			case 12:
				r.Recursive = bv
			case 13:
				r.Sorted = bv
			case 14:
				r.Quorum = bv
			case 15:
				r.Time = int64(v)
			case 16:
				r.Stream = bv
			case 17:
				r.Refresh = &bv
			}
		case protowire.BytesType:
			v, n := protowire.ConsumeString(b)
			if n < 0 {
				return nil, fmt.Errorf("v2store: decoding request: %w", protowire.ParseError(n))
			}
			b = b[n:]
			switch num {
			case 2:
				r.Method = v
			case 3:
				r.Path = v
			case 4:
				r.Val = v
			case 6:
				r.PrevValue = v
			}
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return nil, fmt.Errorf("v2store: decoding request: %w", protowire.ParseError(n))
			}
			b = b[n:]
		}
	}
	return r, nil
}

// Attach puts v2 in raft request r's field 2, where etcd 3.5 carried it.
func Attach(r *pb.InternalRaftRequest, v2 *Request) {
	b := protowire.AppendTag(nil, internalField, protowire.BytesType)
	b = protowire.AppendBytes(b, v2.Marshal())
	r.ProtoReflect().SetUnknown(b)
}

// FromInternal returns the v2 request r carries, if it carries one.
func FromInternal(r *pb.InternalRaftRequest) (*Request, bool, error) {
	b := r.ProtoReflect().GetUnknown()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, false, fmt.Errorf("v2store: decoding raft request: %w", protowire.ParseError(n))
		}
		b = b[n:]
		if num == internalField && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, false, fmt.Errorf("v2store: decoding raft request: %w", protowire.ParseError(n))
			}
			req, err := Unmarshal(v)
			return req, err == nil, err
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return nil, false, fmt.Errorf("v2store: decoding raft request: %w", protowire.ParseError(n))
		}
		b = b[n:]
	}
	return nil, false, nil
}
