package linearizability

import (
	"errors"
	"testing"

	"github.com/anishathalye/porcupine"
)

// v2o builds one completed v2 operation.
func v2o(client int, call, ret int64, in V2Op, out V2Response) porcupine.Operation {
	return porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret}
}

// v2u builds one v2 write whose outcome is unknown.
func v2u(client int, call int64, in V2Op) porcupine.Operation {
	return porcupine.Operation{ClientId: client, Input: in, Call: call, Output: V2Response{Unknown: true}, Return: Infinity}
}

func v2set(key, val string) V2Op { return V2Op{Kind: V2Set, Key: key, Value: val} }
func v2setTTL(key, val string) V2Op {
	return V2Op{Kind: V2Set, Key: key, Value: val, TTL: true}
}
func v2create(key, val string) V2Op { return V2Op{Kind: V2Create, Key: key, Value: val} }
func v2casValue(key, prev, val string) V2Op {
	return V2Op{Kind: V2CAS, Key: key, PrevValue: prev, Value: val}
}
func v2casIndex(key string, prev uint64, val string) V2Op {
	return V2Op{Kind: V2CAS, Key: key, PrevIndex: prev, Value: val}
}
func v2del(key string) V2Op { return V2Op{Kind: V2Delete, Key: key} }
func v2cadIndex(key string, prev uint64) V2Op {
	return V2Op{Kind: V2CAD, Key: key, PrevIndex: prev}
}
func v2get(key string) V2Op { return V2Op{Kind: V2Get, Key: key} }

// wrote is a successful write's answer at index i with no prevNode.
func wrote(val string, i uint64) V2Response {
	return V2Response{Value: val, ModifiedIndex: i, Index: i}
}

// over is a successful write's answer at index i replacing prev@pi.
func over(val string, i uint64, prev string, pi uint64) V2Response {
	return V2Response{Value: val, ModifiedIndex: i, Index: i, HasPrev: true, PrevValue: prev, PrevIndex: pi}
}

// removed is a successful delete's answer at index i of prev@pi.
func removed(i uint64, prev string, pi uint64) V2Response {
	return V2Response{ModifiedIndex: i, Index: i, HasPrev: true, PrevValue: prev, PrevIndex: pi}
}

func read(val string, mi, i uint64) V2Response {
	return V2Response{Value: val, ModifiedIndex: mi, Index: i}
}

func v2err(code int, i uint64) V2Response { return V2Response{ErrorCode: code, Index: i} }

func checkV2(t *testing.T, h []porcupine.Operation) Verdict {
	t.Helper()
	res, err := CheckV2Steps(h, 100_000)
	if err != nil {
		t.Fatalf("CheckV2Steps: %v", err)
	}
	if res.Verdict == Inconclusive {
		t.Fatalf("inconclusive with 100000 steps (%d steps)", res.Steps)
	}
	// Porcupine's own search must agree.
	full, err := CheckV2(h, 0)
	if err != nil {
		t.Fatalf("CheckV2: %v", err)
	}
	if full.Ok() != (res.Verdict == Linearizable) {
		t.Fatalf("CheckV2 says %v, CheckV2Steps %v", full.Outcome, res.Verdict)
	}
	return res.Verdict
}

func TestV2LinearizableHistories(t *testing.T) {
	for _, c := range []struct {
		name string
		h    []porcupine.Operation
	}{
		{"set then quorum get", []porcupine.Operation{
			v2o(0, 0, 10, v2set("/k", "a"), wrote("a", 1)),
			v2o(1, 20, 30, v2get("/k"), read("a", 1, 1)),
		}},
		{"get of a missing key", []porcupine.Operation{
			v2o(0, 0, 10, v2get("/k"), v2err(V2ErrKeyNotFound, 0)),
		}},
		{"set over set shows the previous node", []porcupine.Operation{
			v2o(0, 0, 10, v2set("/k", "a"), wrote("a", 3)),
			v2o(0, 20, 30, v2set("/k", "b"), over("b", 5, "a", 3)),
		}},
		{"cas on prevIndex and prevValue", []porcupine.Operation{
			v2o(0, 0, 10, v2set("/k", "a"), wrote("a", 3)),
			v2o(0, 20, 30, v2casIndex("/k", 3, "b"), over("b", 4, "a", 3)),
			v2o(1, 40, 50, v2casIndex("/k", 3, "c"), v2err(V2ErrTestFailed, 4)),
			v2o(1, 60, 70, v2casValue("/k", "b", "c"), over("c", 6, "b", 4)),
			v2o(0, 80, 90, v2casValue("/k", "b", "d"), v2err(V2ErrTestFailed, 6)),
			v2o(0, 100, 110, v2casValue("/missing", "b", "d"), v2err(V2ErrKeyNotFound, 6)),
		}},
		{"create only when absent", []porcupine.Operation{
			v2o(0, 0, 10, v2create("/k", "a"), wrote("a", 1)),
			v2o(1, 20, 30, v2create("/k", "b"), v2err(V2ErrNodeExist, 1)),
			v2o(0, 40, 50, v2del("/k"), removed(2, "a", 1)),
			v2o(1, 60, 70, v2create("/k", "c"), wrote("c", 3)),
		}},
		{"compare and delete", []porcupine.Operation{
			v2o(0, 0, 10, v2set("/k", "a"), wrote("a", 7)),
			v2o(1, 20, 30, v2cadIndex("/k", 6), v2err(V2ErrTestFailed, 7)),
			v2o(1, 40, 50, v2cadIndex("/k", 7), removed(8, "a", 7)),
			v2o(0, 60, 70, v2del("/k"), v2err(V2ErrKeyNotFound, 8)),
		}},
		{"concurrent writes in either order", []porcupine.Operation{
			v2o(0, 0, 50, v2set("/k", "a"), wrote("a", 2)),
			v2o(1, 0, 50, v2set("/k", "b"), over("b", 3, "a", 2)),
			v2o(2, 60, 70, v2get("/k"), read("b", 3, 3)),
		}},
		{"an unknown write may have taken effect, its index learnt later", []porcupine.Operation{
			v2o(0, 0, 10, v2set("/k", "a"), wrote("a", 1)),
			v2u(1, 20, v2set("/k", "b")),
			v2o(0, 40, 50, v2get("/k"), read("b", 2, 2)),
			v2o(0, 60, 70, v2casIndex("/k", 2, "c"), over("c", 3, "b", 2)),
		}},
		{"an unknown write may never have taken effect", []porcupine.Operation{
			v2o(0, 0, 10, v2set("/k", "a"), wrote("a", 1)),
			v2u(1, 20, v2set("/k", "b")),
			v2o(0, 40, 50, v2get("/k"), read("a", 1, 1)),
		}},
		{"a cas on the unknown index of an unknown write may succeed", []porcupine.Operation{
			v2u(1, 0, v2set("/k", "b")),
			v2o(0, 40, 50, v2casIndex("/k", 9, "c"), over("c", 10, "b", 9)),
		}},
		{"a cas on the unknown index of an unknown write may fail", []porcupine.Operation{
			v2u(1, 0, v2set("/k", "b")),
			v2o(0, 40, 50, v2casIndex("/k", 9, "c"), v2err(V2ErrTestFailed, 12)),
			v2o(0, 60, 70, v2get("/k"), read("b", 11, 12)),
		}},
		{"a TTL key may expire at any time", []porcupine.Operation{
			v2o(0, 0, 10, v2setTTL("/k", "a"), wrote("a", 1)),
			v2o(1, 20, 30, v2get("/k"), read("a", 1, 1)),
			v2o(1, 40, 50, v2get("/k"), v2err(V2ErrKeyNotFound, 2)),
			v2o(0, 60, 70, v2create("/k", "b"), wrote("b", 3)),
		}},
		{"a TTL key may expire before a cas on it", []porcupine.Operation{
			v2o(0, 0, 10, v2setTTL("/k", "a"), wrote("a", 1)),
			v2o(1, 20, 30, v2casValue("/k", "a", "b"), v2err(V2ErrKeyNotFound, 2)),
		}},
		{"a refused request has no effect", []porcupine.Operation{
			v2o(0, 0, 10, v2set("/k", "a"), wrote("a", 1)),
			v2o(1, 20, 30, v2set("/k", "b"), v2err(V2ErrUnauthorized, 1)),
			v2o(0, 40, 50, v2get("/k"), read("a", 1, 1)),
		}},
		{"other keys' writes move the index", []porcupine.Operation{
			v2o(0, 0, 10, v2set("/k", "a"), wrote("a", 1)),
			v2o(1, 20, 30, v2set("/j", "x"), wrote("x", 2)),
			v2o(0, 40, 50, v2get("/k"), read("a", 1, 2)),
			v2o(0, 60, 70, v2set("/k", "b"), over("b", 5, "a", 1)),
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if v := checkV2(t, c.h); v != Linearizable {
				t.Fatalf("verdict %v, want linearizable", v)
			}
		})
	}
}

func TestV2ViolationsAreFound(t *testing.T) {
	for _, c := range []struct {
		name string
		h    []porcupine.Operation
	}{
		{"stale quorum get", []porcupine.Operation{
			v2o(0, 0, 10, v2set("/k", "a"), wrote("a", 1)),
			v2o(0, 20, 30, v2set("/k", "b"), over("b", 2, "a", 1)),
			v2o(1, 40, 50, v2get("/k"), read("a", 1, 1)),
		}},
		{"a read sees the right value at the wrong index", []porcupine.Operation{
			v2o(0, 0, 10, v2set("/k", "a"), wrote("a", 4)),
			v2o(1, 40, 50, v2get("/k"), read("a", 3, 4)),
		}},
		{"cas ignoring prevIndex", []porcupine.Operation{
			v2o(0, 0, 10, v2set("/k", "a"), wrote("a", 3)),
			v2o(0, 20, 30, v2set("/k", "b"), over("b", 4, "a", 3)),
			v2o(1, 40, 50, v2casIndex("/k", 3, "c"), over("c", 5, "b", 4)),
		}},
		{"cas ignoring prevValue", []porcupine.Operation{
			v2o(0, 0, 10, v2set("/k", "a"), wrote("a", 3)),
			v2o(1, 40, 50, v2casValue("/k", "x", "c"), over("c", 5, "a", 3)),
		}},
		{"cas failing though it holds", []porcupine.Operation{
			v2o(0, 0, 10, v2set("/k", "a"), wrote("a", 3)),
			v2o(1, 40, 50, v2casIndex("/k", 3, "c"), v2err(V2ErrTestFailed, 3)),
		}},
		{"create over an existing key", []porcupine.Operation{
			v2o(0, 0, 10, v2set("/k", "a"), wrote("a", 1)),
			v2o(1, 20, 30, v2create("/k", "b"), wrote("b", 2)),
		}},
		{"a permanent key vanishes", []porcupine.Operation{
			v2o(0, 0, 10, v2set("/k", "a"), wrote("a", 1)),
			v2o(1, 20, 30, v2get("/k"), v2err(V2ErrKeyNotFound, 1)),
		}},
		{"an expired TTL key comes back", []porcupine.Operation{
			v2o(0, 0, 10, v2setTTL("/k", "a"), wrote("a", 1)),
			v2o(1, 20, 30, v2get("/k"), v2err(V2ErrKeyNotFound, 2)),
			v2o(1, 40, 50, v2get("/k"), read("a", 1, 2)),
		}},
		{"a set without TTL makes the key permanent", []porcupine.Operation{
			v2o(0, 0, 10, v2setTTL("/k", "a"), wrote("a", 1)),
			v2o(0, 20, 30, v2set("/k", "b"), over("b", 2, "a", 1)),
			v2o(1, 40, 50, v2get("/k"), v2err(V2ErrKeyNotFound, 3)),
		}},
		{"the store index goes backwards", []porcupine.Operation{
			v2o(0, 0, 10, v2set("/k", "a"), wrote("a", 5)),
			v2o(1, 20, 30, v2casValue("/k", "x", "b"), v2err(V2ErrTestFailed, 4)),
		}},
		{"a write reuses an index", []porcupine.Operation{
			v2o(0, 0, 10, v2set("/k", "a"), wrote("a", 5)),
			v2o(1, 20, 30, v2get("/k"), read("a", 5, 7)),
			v2o(0, 40, 50, v2set("/k", "b"), over("b", 6, "a", 5)),
		}},
		{"a wrong prevNode", []porcupine.Operation{
			v2o(0, 0, 10, v2set("/k", "a"), wrote("a", 1)),
			v2o(0, 20, 30, v2set("/k", "b"), over("b", 2, "z", 1)),
		}},
		{"a delete of a missing key succeeds", []porcupine.Operation{
			v2o(0, 0, 10, v2del("/k"), removed(1, "a", 0)),
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if v := checkV2(t, c.h); v != NotLinearizable {
				t.Fatalf("verdict %v, want not linearizable", v)
			}
		})
	}
}

func TestV2CheckStepsIsBoundedAndDeterministic(t *testing.T) {
	// Many concurrent unknown writes on one key: the search has many orders to try.
	var h []porcupine.Operation
	for i := 0; i < 12; i++ {
		h = append(h, v2u(i, int64(i), v2casValue("/k", string(rune('a'+i)), string(rune('b'+i)))))
	}
	h = append(h, v2o(20, 100, 110, v2get("/k"), read("zz", 99, 99)))
	a, err := CheckV2Steps(h, 50)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := CheckV2Steps(h, 50)
	if a.Verdict != Inconclusive || a.Steps != 50 || b.Steps != a.Steps {
		t.Fatalf("with 50 steps: %v after %d steps, then %d steps; want inconclusive after 50 both times", a.Verdict, a.Steps, b.Steps)
	}
	if _, err := CheckV2Steps(h, 0); err == nil {
		t.Fatal("a zero budget was accepted")
	}
}

func TestV2PartitionsByKey(t *testing.T) {
	h := []porcupine.Operation{
		v2o(0, 0, 10, v2set("/a", "1"), wrote("1", 1)),
		v2o(0, 20, 30, v2set("/b", "1"), wrote("1", 2)),
		v2o(1, 40, 50, v2get("/a"), read("1", 1, 2)),
	}
	res, err := CheckV2Steps(h, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if res.Partitions != 2 || res.Verdict != Linearizable {
		t.Fatalf("%d partitions, %v; want 2, linearizable", res.Partitions, res.Verdict)
	}
}

func TestV2InvalidHistories(t *testing.T) {
	for name, h := range map[string][]porcupine.Operation{
		"v3 op":               {o(0, 0, 1, Get("k"), absent())},
		"cas without compare": {v2o(0, 0, 1, V2Op{Kind: V2CAS, Key: "/k", Value: "v"}, wrote("v", 1))},
		"empty key":           {v2o(0, 0, 1, V2Op{Kind: V2Get}, v2err(V2ErrKeyNotFound, 0))},
		"delete with ttl":     {v2o(0, 0, 1, V2Op{Kind: V2Delete, Key: "/k", TTL: true}, v2err(V2ErrKeyNotFound, 0))},
		"unmodelled error":    {v2o(0, 0, 1, v2get("/k"), v2err(102, 0))},
		"return before call":  {v2o(0, 5, 1, v2get("/k"), v2err(V2ErrKeyNotFound, 0))},
	} {
		if _, err := CheckV2Steps(h, 100); !errors.Is(err, ErrInvalidHistory) {
			t.Errorf("%s: err %v, want ErrInvalidHistory", name, err)
		}
	}
}

func TestV2Recorder(t *testing.T) {
	now := int64(0)
	r := NewV2Recorder(func() int64 { now++; return now })
	w := r.Invoke(0, v2set("/k", "a"))
	g := r.Invoke(1, v2get("/k"))
	lost := r.Invoke(2, v2set("/k", "b"))
	lostRead := r.Invoke(3, v2get("/k"))
	r.Return(w, wrote("a", 1))
	r.Return(g, read("a", 1, 1))
	r.Unknown(lost)
	r.Return(lostRead, V2Response{Unknown: true})
	r.Drop(r.Invoke(4, v2set("/k", "never sent")))
	h := r.History()
	if len(h) != 3 || r.Len() != 5 {
		t.Fatalf("history of %d ops (%d invoked); want 3 (the unknown read and the dropped write left out) of 5", len(h), r.Len())
	}
	if h[2].Return != Infinity || !h[2].Output.(V2Response).Unknown {
		t.Fatalf("the unknown write is %+v; want it returning at Infinity, unknown", h[2])
	}
	if v := checkV2(t, h); v != Linearizable {
		t.Fatalf("recorded history: %v", v)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("finishing a token twice did not panic")
		}
	}()
	r.Return(w, wrote("a", 1))
}
