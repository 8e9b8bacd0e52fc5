package mvcc

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// kvKey reads the key proto.Unmarshal reads, and refuses what it refuses:
// whole KeyValues, their truncations and corruptions, a repeated key
// field, unknown fields and a key field of the wrong wire type.
func TestKvKeyAgreesWithUnmarshal(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	check := func(v []byte) {
		t.Helper()
		var kv mvccpb.KeyValue
		uerr := proto.Unmarshal(v, &kv)
		key, err := kvKey(v)
		if (err != nil) != (uerr != nil) {
			t.Fatalf("%x: kvKey error %v, proto.Unmarshal error %v", v, err, uerr)
		}
		if err == nil && !bytes.Equal(key, kv.Key) {
			t.Fatalf("%x: kvKey %q, proto.Unmarshal %q", v, key, kv.Key)
		}
	}
	for i := 0; i < 2000; i++ {
		kv := &mvccpb.KeyValue{
			Key:            randBytes(rng, rng.IntN(40)),
			CreateRevision: rng.Int64N(1 << 40),
			ModRevision:    rng.Int64N(1 << 40),
			Version:        rng.Int64N(100),
			Value:          randBytes(rng, rng.IntN(300)),
			Lease:          rng.Int64N(1 << 50),
		}
		v, err := proto.Marshal(kv)
		if err != nil {
			t.Fatal(err)
		}
		check(v)
		for cut := 0; cut < len(v); cut += 1 + rng.IntN(7) {
			check(v[:cut])
		}
		bad := bytes.Clone(v)
		for j := 0; j < 3 && len(bad) > 0; j++ {
			bad[rng.IntN(len(bad))] = byte(rng.Uint32())
		}
		check(bad)
		// A second key field (the last wins), an unknown field, and a key
		// field of the wrong wire type (an unknown field to proto).
		more := protowire.AppendTag(bytes.Clone(v), kvKeyField, protowire.BytesType)
		more = protowire.AppendBytes(more, randBytes(rng, rng.IntN(20)))
		more = protowire.AppendTag(more, 99, protowire.VarintType)
		more = protowire.AppendVarint(more, rng.Uint64())
		check(more)
		odd := protowire.AppendTag(bytes.Clone(v), kvKeyField, protowire.Fixed64Type)
		check(protowire.AppendFixed64(odd, rng.Uint64()))
	}
	check(nil)
}

func randBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}
