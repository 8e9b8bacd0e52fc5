package linearizability

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/anishathalye/porcupine"
)

// benchHistory is a seeded history of n ops over keys k0..k(keys-1) run against a refStore,
// each op's interval spanning about `overlap` neighbouring ops, every 20th write unknown.
func benchHistory(seed uint64, n, keys, overlap int, withRange bool) []porcupine.Operation {
	rng := rand.New(rand.NewPCG(seed, seed))
	ref := newRefStore()
	h := make([]porcupine.Operation, 0, n)
	for i := range n {
		k := fmt.Sprintf("k%d", rng.IntN(keys))
		v := fmt.Sprintf("%d", rng.IntN(4))
		var op Op
		switch r := rng.IntN(10); {
		case r < 3:
			op = Put(k, v)
		case r < 4:
			op = Delete(k)
		case r < 6:
			op = CAS(k, fmt.Sprintf("%d", rng.IntN(4)), v)
		case r < 7 && withRange:
			op = RangePrefix("k")
		default:
			op = Get(k)
		}
		p := int64(10*i + 5)
		call := p - rng.Int64N(int64(10*overlap))
		if !op.IsRead() && i%20 == 0 {
			ref.do(op)
			h = append(h, porcupine.Operation{ClientId: i % 8, Input: op, Call: call, Output: Response{Unknown: true}, Return: Infinity})
			continue
		}
		h = append(h, porcupine.Operation{ClientId: i % 8, Input: op, Call: call, Output: ref.do(op), Return: p + rng.Int64N(int64(10*overlap))})
	}
	return h
}

func benchCheck(b *testing.B, m Model, h []porcupine.Operation) {
	b.ReportAllocs()
	for b.Loop() {
		res, err := Check(m, h, 0)
		if err != nil || !res.Ok() {
			b.Fatalf("outcome %s, err %v", res.Outcome, err)
		}
	}
}

func BenchmarkCheckRegister10000Ops(b *testing.B) {
	benchCheck(b, RegisterModel(), benchHistory(1, 10000, 16, 4, false))
}

func BenchmarkCheckKV1000Ops(b *testing.B) {
	benchCheck(b, KVModel(), benchHistory(1, 1000, 4, 4, true))
}

func BenchmarkRecorderInvokeReturn(b *testing.B) {
	r := NewRecorder(ticker())
	op := Put("k", "v")
	b.ReportAllocs()
	for b.Loop() {
		r.Return(r.Invoke(0, op), Response{Revision: 1})
	}
}
