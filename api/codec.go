package api

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
)

// responseBufferPool has a tier for every power of two from 256 B to
// 1 MiB, so a marshalled response never holds more than twice its size.
// gRPC's default pool jumps from 32 KiB to 1 MiB: every watch response of a
// few hundred events held a 1 MiB buffer while it was being sent, which
// made up most of a busy watch server's heap.
var responseBufferPool = func() mem.BufferPool {
	p, err := mem.NewBinaryTieredBufferPool(8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20)
	if err != nil {
		panic(err) // the exponents are constants
	}
	return p
}()

// protoCodec is gRPC's proto codec with responseBufferPool. It counts the
// bytes it encodes and decodes, as etcd's codec does for
// etcd_network_client_grpc_{sent,received}_bytes_total; nil counters count
// nothing.
type protoCodec struct {
	sent, received prometheus.Counter
}

var _ encoding.CodecV2 = protoCodec{}

func (protoCodec) Name() string { return "proto" }

func (c protoCodec) Marshal(v any) (mem.BufferSlice, error) {
	m := messageOf(v)
	if m == nil {
		return nil, fmt.Errorf("proto: failed to marshal, message is %T, want proto.Message", v)
	}
	size := proto.Size(m)
	if c.sent != nil {
		c.sent.Add(float64(size))
	}
	opts := proto.MarshalOptions{UseCachedSize: true} // Size just ran
	if mem.IsBelowBufferPoolingThreshold(size) {
		b, err := opts.Marshal(m)
		if err != nil {
			return nil, err
		}
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	buf := responseBufferPool.Get(size)
	if _, err := opts.MarshalAppend((*buf)[:0], m); err != nil {
		responseBufferPool.Put(buf)
		return nil, err
	}
	return mem.BufferSlice{mem.NewBuffer(buf, responseBufferPool)}, nil
}

func (c protoCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m := messageOf(v)
	if m == nil {
		return fmt.Errorf("proto: failed to unmarshal, message is %T, want proto.Message", v)
	}
	if c.received != nil {
		c.received.Add(float64(data.Len()))
	}
	buf := data.MaterializeToBuffer(responseBufferPool)
	defer buf.Free()
	return proto.Unmarshal(buf.ReadOnlyData(), m)
}

func messageOf(v any) proto.Message {
	switch v := v.(type) {
	case protoadapt.MessageV1:
		return protoadapt.MessageV2Of(v)
	case protoadapt.MessageV2:
		return v
	}
	return nil
}
