package api

import (
	"bytes"
	"context"
	"math"
	"sort"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// initialStreamChunkLimit is the number of keys in the first chunk of a
// RangeStream, as in etcd.
const initialStreamChunkLimit = 10

// checkRangeStream is etcd's validation of a RangeStream request: a
// Range's, then no sort order other than the natural one and no revision
// filters, both refused with codes.Unimplemented.
func checkRangeStream(r *pb.RangeRequest) error {
	if err := checkRange(r); err != nil {
		return err
	}
	if !naturalOrder(r) {
		return status.Errorf(codes.Unimplemented, "RangeStream does not support custom sort orders")
	}
	if r.MinModRevision != 0 || r.MaxModRevision != 0 || r.MinCreateRevision != 0 || r.MaxCreateRevision != 0 {
		return status.Errorf(codes.Unimplemented, "RangeStream does not support revision filters")
	}
	return nil
}

// naturalOrder reports whether r asks for keys in ascending key order,
// etcd's "default ordering": no sort order, or KEY ascending. A target
// other than KEY with no order passes: etcd then sorts each chunk
// ascending by the target.
func naturalOrder(r *pb.RangeRequest) bool {
	return r.SortOrder == pb.RangeRequest_NONE ||
		(r.SortTarget == pb.RangeRequest_KEY && r.SortOrder == pb.RangeRequest_ASCEND)
}

// rangeStream serves a checked RangeStream request as etcd 3.7 does, from
// Range reads of be:
//
//   - count_only: one message, header and count.
//   - otherwise chunks of consecutive keys: the first has at most 10 keys;
//     each next one doubles the key limit while the last chunk's encoding
//     was under half of targetBytes (etcd's --max-request-bytes) and
//     halves it while it was over twice that; a limit bounds the total.
//     A negative limit reads everything into one chunk, as in etcd.
//   - every chunk but the last carries kvs only; the last also carries
//     the header (revision: the store's revision when the stream began),
//     more (true when the limit cut the range short) and count (every key
//     of the requested range), so that merging the chunks gives the Range
//     response.
//
// The first read is linearizable unless r is serializable; the following
// ones are serializable reads pinned at r's revision, or at the first
// read's when r names none.
//
// A sort target other than KEY (with no order) sorts each chunk ascending
// by the target, as etcd does; a last chunk cut by the limit keeps the
// first by target of one key more, as etcd's does. etcd then continues the
// range, and counts what is left of it, from after the chunk's last kv by
// target: when that is not the chunk's last key, keys come twice and
// count is off. Cairn continues and counts from after the chunk's last
// key, so every key comes once and count is exact; streams etcd gets right
// are the same in both.
func rangeStream(ctx context.Context, be KVBackend, r *pb.RangeRequest, targetBytes int, send func(*pb.RangeResponse) error) error {
	if r.CountOnly {
		resp, err := be.Range(ctx, r)
		if err != nil {
			return err
		}
		return send(&pb.RangeResponse{Header: resp.Header, Count: resp.Count})
	}

	total := r.Limit
	if total == 0 {
		total = math.MaxInt64
	}
	limit := min(int64(initialStreamChunkLimit), total)
	byTarget := r.SortTarget != pb.RangeRequest_KEY
	req := &pb.RangeRequest{
		Key:      r.Key,
		RangeEnd: r.RangeEnd,
		Revision: r.Revision,
		// Values are needed to sort by value; they are dropped after.
		KeysOnly:     r.KeysOnly && r.SortTarget != pb.RangeRequest_VALUE,
		Serializable: r.Serializable,
	}
	var sent, headerRev int64
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		// One key more than the chunk tells whether there are more, and is
		// what a last chunk sorted by target is cut from, as in etcd.
		req.Limit = limit
		if limit > 0 {
			req.Limit = limit + 1
		}
		resp, err := be.Range(ctx, req)
		if err != nil {
			return err
		}
		if headerRev == 0 {
			headerRev = resp.GetHeader().GetRevision()
			if req.Revision == 0 {
				req.Revision = headerRev
			}
			req.Serializable = true
		}
		kvs := resp.Kvs
		read := int64(len(kvs)) // the keys etcd's chunk read visits: at most limit+1
		more := limit > 0 && read > limit
		done := !more || sent+limit == total
		var next []byte
		if more {
			next = append(bytes.Clone(kvs[limit-1].Key), 0)
			if byTarget && done {
				sortByTarget(kvs, r.SortTarget)
			}
			kvs = kvs[:limit]
		}
		if byTarget && !(more && done) {
			sortByTarget(kvs, r.SortTarget)
		}
		if r.KeysOnly {
			for _, kv := range kvs {
				kv.Value, kv.Lease = nil, 0
			}
		}
		out := &pb.RangeResponse{Kvs: kvs}
		if done {
			h := resp.Header // the backend's own: cluster, member and term of now
			if h == nil {
				h = &pb.ResponseHeader{}
			}
			h.Revision = headerRev
			// resp.Count is every key from this chunk's first one on.
			out.Header, out.More, out.Count = h, more, sent+resp.Count
		}
		if err := send(out); err != nil {
			return err
		}
		if done {
			return nil
		}
		sent += int64(len(kvs))
		// The size etcd measures: its chunk read's response, whose count
		// is the keys it visited and whose header has the revision only.
		size := proto.Size(&pb.RangeResponse{
			Header: &pb.ResponseHeader{Revision: resp.GetHeader().GetRevision()},
			Kvs:    kvs, More: more, Count: read,
		})
		req.Key = next
		limit = min(adjustChunkLimit(limit, size, targetBytes), total-sent)
	}
}

// adjustChunkLimit is etcd's choice of the next chunk's key limit: double
// it after a chunk under half the target size, halve it after one over
// twice the target, else keep it; never below 1.
func adjustChunkLimit(last int64, lastSize, targetSize int) int64 {
	switch {
	case lastSize < targetSize/2:
		last *= 2
	case lastSize > targetSize*2:
		last /= 2
	}
	return max(last, 1)
}

// sortByTarget orders kvs ascending by target, ties in key order.
func sortByTarget(kvs []*mvccpb.KeyValue, target pb.RangeRequest_SortTarget) {
	var less func(a, b *mvccpb.KeyValue) bool
	switch target {
	case pb.RangeRequest_VERSION:
		less = func(a, b *mvccpb.KeyValue) bool { return a.Version < b.Version }
	case pb.RangeRequest_CREATE:
		less = func(a, b *mvccpb.KeyValue) bool { return a.CreateRevision < b.CreateRevision }
	case pb.RangeRequest_MOD:
		less = func(a, b *mvccpb.KeyValue) bool { return a.ModRevision < b.ModRevision }
	case pb.RangeRequest_VALUE:
		less = func(a, b *mvccpb.KeyValue) bool { return bytes.Compare(a.Value, b.Value) < 0 }
	default:
		return
	}
	sort.SliceStable(kvs, func(i, j int) bool { return less(kvs[i], kvs[j]) })
}
