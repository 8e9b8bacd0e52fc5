package node

import (
	"fmt"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"
)

// Every normal raft entry Cairn proposes carries one etcdserverpb.InternalRaftRequest,
// encoded with deterministic protobuf marshalling. Its ID field is the proposing member's
// request ID, used only to find the waiting caller; exactly one of its request fields is set.
// Empty entries (a new leader's no-op) carry no data.

var marshalOpts = proto.MarshalOptions{Deterministic: true}

func encodeRequest(r *pb.InternalRaftRequest) ([]byte, error) {
	b, err := marshalOpts.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("node: encoding request %d: %w", r.GetID(), err)
	}
	return b, nil
}

func decodeRequest(b []byte) (*pb.InternalRaftRequest, error) {
	r := &pb.InternalRaftRequest{}
	if err := proto.Unmarshal(b, r); err != nil {
		return nil, fmt.Errorf("node: decoding raft request: %w", err)
	}
	return r, nil
}

// idGenerator makes request IDs unique across restarts of a member without
// shared state: the top 16 bits come from the member ID, the next 40 from the
// (injected) clock's milliseconds at start, the low 8 bits count, carrying
// into the time bits. A restarted member starts from a later time, so entries
// proposed before a crash never match a new waiter.
type idGenerator struct {
	prefix uint64
	suffix uint64
}

const (
	idTsBits     = 40
	idCountBits  = 8
	idSuffixBits = idTsBits + idCountBits
	idSuffixMask = 1<<idSuffixBits - 1
)

func newIDGenerator(memberID uint64, unixMilli int64) idGenerator {
	return idGenerator{
		prefix: (memberID & 0xffff) << idSuffixBits,
		suffix: (uint64(unixMilli) & (1<<idTsBits - 1)) << idCountBits,
	}
}

func (g *idGenerator) next() uint64 {
	g.suffix = (g.suffix + 1) & idSuffixMask
	return g.prefix | g.suffix
}
