package linearizability

import (
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/anishathalye/porcupine"
)

// ticker returns a time source that advances by one on every call.
func ticker() func() int64 {
	var n atomic.Int64
	return func() int64 { return n.Add(1) }
}

func TestRecorderHistory(t *testing.T) {
	r := NewRecorder(ticker())
	put := r.Invoke(0, Put("x", "1"))                       // call 1
	get := r.Invoke(1, Get("x"))                            // call 2
	r.Return(put, Response{Revision: 2})                    // return 3
	r.Return(get, Response{Found: true, Value: "1"})        // return 4
	lostRead := r.Invoke(1, Range("a", "z"))                // call 5, dropped
	lostWrite := r.Invoke(0, Delete("x"))                   // call 6
	r.Unknown(lostRead)                                     //
	r.Unknown(lostWrite)                                    //
	r.Invoke(2, Get("x"))                                   // call 7, pending read: dropped
	r.Invoke(2, CAS("x", "1", "2"))                         // call 8, pending write: unknown
	viaResp := r.Invoke(3, Put("y", "1"))                   // call 9
	r.Return(viaResp, Response{Unknown: true, Found: true}) // unknown: no clock read

	want := []porcupine.Operation{
		{ClientId: 0, Input: Put("x", "1"), Call: 1, Output: Response{Revision: 2}, Return: 3},
		{ClientId: 1, Input: Get("x"), Call: 2, Output: Response{Found: true, Value: "1"}, Return: 4},
		{ClientId: 0, Input: Delete("x"), Call: 6, Output: Response{Unknown: true}, Return: Infinity},
		{ClientId: 2, Input: CAS("x", "1", "2"), Call: 8, Output: Response{Unknown: true}, Return: Infinity},
		{ClientId: 3, Input: Put("y", "1"), Call: 9, Output: Response{Unknown: true}, Return: Infinity},
	}
	if got := r.History(); !reflect.DeepEqual(got, want) {
		t.Fatalf("History =\n%+v\nwant\n%+v", got, want)
	}
}

func TestRecorderCopiesCallerSlices(t *testing.T) {
	r := NewRecorder(ticker())
	els := []string{"a"}
	tok := r.Invoke(0, Txn(nil, nil, els))
	kvs := []KV{{"a", "1"}}
	r.Return(tok, Response{KVs: kvs})
	els[0], kvs[0].Value = "changed", "changed"
	h := r.History()
	if got := h[0].Input.(Op).Else[0]; got != "a" {
		t.Fatalf("recorded Else changed with the caller's slice: %q", got)
	}
	if got := h[0].Output.(Response).KVs[0].Value; got != "1" {
		t.Fatalf("recorded KVs changed with the caller's slice: %q", got)
	}
}

func TestRecorderPanicsOnDoubleFinish(t *testing.T) {
	r := NewRecorder(ticker())
	tok := r.Invoke(0, Put("x", "1"))
	r.Return(tok, Response{})
	for name, finish := range map[string]func(){
		"return":         func() { r.Return(tok, Response{}) },
		"unknown":        func() { r.Unknown(tok) },
		"foreign token":  func() { r.Unknown(Token(7)) },
		"negative token": func() { r.Return(Token(-1), Response{}) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			finish()
		})
	}
}

// lockedStore is a trivially linearizable store: every op runs under one mutex.
type lockedStore struct {
	mu sync.Mutex
	s  state
}

func (l *lockedStore) do(op Op) Response {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, resp, changed := apply(l.s, op)
	if changed {
		n.rev = l.s.rev + 1
	}
	l.s = n
	resp.Revision = n.rev
	return resp
}

func TestRecorderConcurrentClientsAgainstLinearizableStore(t *testing.T) {
	const clients, opsPerClient = 8, 40
	r := NewRecorder(ticker())
	store := &lockedStore{s: state{rev: 1}}
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range opsPerClient {
				key := fmt.Sprintf("k%d", (c+i)%3)
				var op Op
				switch i % 5 {
				case 0:
					op = Put(key, fmt.Sprintf("%d-%d", c, i))
				case 1:
					op = Get(key)
				case 2:
					op = CAS(key, fmt.Sprintf("%d-%d", c, i-2), fmt.Sprintf("%d-%d", c, i))
				case 3:
					op = Range("k", "\x00")
				case 4:
					op = Delete(key)
				}
				tok := r.Invoke(c, op)
				resp := store.do(op)
				if i%7 == 6 && !op.IsRead() {
					r.Unknown(tok) // the write happened, its response was lost
					continue
				}
				r.Return(tok, resp)
			}
		}()
	}
	wg.Wait()
	h := r.History()
	if len(h) != clients*opsPerClient {
		t.Fatalf("history has %d ops, want %d", len(h), clients*opsPerClient)
	}
	res, err := Check(KVModel(), h, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Ok() {
		t.Fatalf("history of a locked store judged %s", res.Outcome)
	}
}
