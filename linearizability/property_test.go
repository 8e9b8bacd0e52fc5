package linearizability

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/anishathalye/porcupine"
	"pgregory.net/rapid"
)

// refStore is a reference store written independently of the models: maps, applied one op
// at a time. Revisions start at 1 as in etcd.
type refStore struct {
	vals   map[string]string
	leases map[string]int64 // key -> lease it is attached to
	live   map[int64]bool
	rev    int64
}

func newRefStore() *refStore {
	return &refStore{vals: map[string]string{}, leases: map[string]int64{}, live: map[int64]bool{}, rev: 1}
}

func (r *refStore) set(k, v string, lease int64) {
	r.vals[k] = v
	if lease == 0 {
		delete(r.leases, k)
	} else {
		r.leases[k] = lease
	}
}

func (r *refStore) del(k string) bool {
	_, ok := r.vals[k]
	delete(r.vals, k)
	delete(r.leases, k)
	return ok
}

func (r *refStore) do(op Op) Response {
	var resp Response
	changed := false
	switch op.Kind {
	case KindGet:
		resp.Value, resp.Found = r.vals[op.Key]
	case KindPut:
		r.set(op.Key, op.Value, 0)
		changed = true
	case KindDelete:
		if r.del(op.Key) {
			resp.Deleted, changed = 1, true
		}
	case KindCAS:
		v, ok := r.vals[op.Key]
		if (op.ExpectAbsent && !ok) || (!op.ExpectAbsent && ok && v == op.Expected) {
			r.set(op.Key, op.Value, 0)
			resp.Succeeded, changed = true, true
		}
	case KindRange:
		for k, v := range r.vals {
			in := false
			switch {
			case op.Prefix:
				in = strings.HasPrefix(k, op.Key)
			case op.End == "":
				in = k == op.Key
			case op.End == "\x00":
				in = k >= op.Key
			default:
				in = op.Key <= k && k < op.End
			}
			if in {
				resp.KVs = append(resp.KVs, KV{k, v})
			}
		}
		slices.SortFunc(resp.KVs, func(a, b KV) int { return strings.Compare(a.Key, b.Key) })
	case KindTxn:
		resp.Succeeded = true
		for _, c := range op.Cmps {
			v, ok := r.vals[c.Key]
			if c.Absent == ok || (!c.Absent && v != c.Value) {
				resp.Succeeded = false
			}
		}
		if !resp.Succeeded {
			for _, k := range op.Else {
				if v, ok := r.vals[k]; ok {
					resp.KVs = append(resp.KVs, KV{k, v})
				}
			}
			break
		}
		for _, w := range op.Then {
			if w.Delete {
				changed = r.del(w.Key) || changed
			} else {
				r.set(w.Key, w.Value, 0)
				changed = true
			}
		}
	case KindLeaseGrant:
		if !r.live[op.Lease] {
			r.live[op.Lease], resp.Succeeded = true, true
		}
	case KindLeaseRevoke:
		if r.live[op.Lease] {
			delete(r.live, op.Lease)
			resp.Succeeded = true
			for k, l := range r.leases {
				if l == op.Lease {
					r.del(k)
					changed = true
				}
			}
		}
	case KindPutWithLease:
		if r.live[op.Lease] {
			r.set(op.Key, op.Value, op.Lease)
			resp.Succeeded, changed = true, true
		}
	}
	if changed {
		r.rev++
	}
	resp.Revision = r.rev
	return resp
}

// propKeys are the keys of generated histories; "a" is a prefix of "ab".
func propKeys() []string { return []string{"a", "ab", "b"} }

// propValues are the values of generated histories, few so that writes collide.
func propValues() []string { return []string{"0", "1", "2"} }

func drawOp(t *rapid.T, m Model) Op {
	var kinds []Kind
	for _, k := range []Kind{KindGet, KindPut, KindDelete, KindCAS, KindRange, KindTxn, KindLeaseGrant, KindLeaseRevoke, KindPutWithLease} {
		if m.Supports(k) {
			kinds = append(kinds, k)
		}
	}
	key := func(label string) string { return rapid.SampledFrom(propKeys()).Draw(t, label) }
	val := func(label string) string { return rapid.SampledFrom(propValues()).Draw(t, label) }
	lease := func() int64 { return rapid.Int64Range(1, 2).Draw(t, "lease") }
	switch rapid.SampledFrom(kinds).Draw(t, "kind") {
	case KindGet:
		return Get(key("key"))
	case KindPut:
		return Put(key("key"), val("value"))
	case KindDelete:
		return Delete(key("key"))
	case KindCAS:
		if rapid.Bool().Draw(t, "absent") {
			return CASAbsent(key("key"), val("value"))
		}
		return CAS(key("key"), val("expected"), val("value"))
	case KindRange:
		switch rapid.IntRange(0, 3).Draw(t, "rangeKind") {
		case 0:
			return RangePrefix(key("prefix"))
		case 1:
			return Range(key("start"), "")
		case 2:
			return Range(key("start"), "\x00")
		}
		return Range(key("start"), key("end"))
	case KindTxn:
		var op Op
		op.Kind = KindTxn
		for range rapid.IntRange(0, 2).Draw(t, "cmps") {
			op.Cmps = append(op.Cmps, Cmp{Key: key("cmpKey"), Value: val("cmpValue"), Absent: rapid.Bool().Draw(t, "cmpAbsent")})
		}
		for range rapid.IntRange(0, 2).Draw(t, "writes") {
			op.Then = append(op.Then, Write{Key: key("writeKey"), Value: val("writeValue"), Delete: rapid.Bool().Draw(t, "writeDelete")})
		}
		for range rapid.IntRange(0, 2).Draw(t, "reads") {
			op.Else = append(op.Else, key("readKey"))
		}
		return op
	case KindLeaseGrant:
		return LeaseGrant(lease())
	case KindLeaseRevoke:
		return LeaseRevoke(lease())
	}
	return PutWithLease(key("key"), val("value"), lease())
}

// drawHistory runs random ops one after another against a refStore, each at its own
// linearization point 10*i+5, and records them with random intervals around that point, so
// concurrent ops overlap but the real-time order is respected. Some writes get an unknown
// outcome: they take effect at their point, or never. Some responses record their revision.
func drawHistory(t *rapid.T, m Model) []porcupine.Operation {
	ref := newRefStore()
	var h []porcupine.Operation
	n := rapid.IntRange(1, 24).Draw(t, "ops")
	for i := range n {
		op := drawOp(t, m)
		p := int64(10*i + 5)
		call := p - rapid.Int64Range(0, 25).Draw(t, "before")
		ret := p + rapid.Int64Range(0, 25).Draw(t, "after")
		if !op.IsRead() && rapid.IntRange(0, 5).Draw(t, "unknown") == 0 {
			if rapid.Bool().Draw(t, "tookEffect") {
				ref.do(op)
			}
			h = append(h, porcupine.Operation{ClientId: i, Input: op, Call: call, Output: Response{Unknown: true}, Return: Infinity})
			continue
		}
		resp := ref.do(op)
		if !rapid.Bool().Draw(t, "recordRevision") {
			resp.Revision = 0
		}
		h = append(h, porcupine.Operation{ClientId: i, Input: op, Call: call, Output: resp, Return: ret})
	}
	// A final read, so that every history has a read to corrupt.
	last := Get(rapid.SampledFrom(propKeys()).Draw(t, "lastKey"))
	p := int64(10*n + 5)
	h = append(h, porcupine.Operation{ClientId: n, Input: last, Call: p - 3, Output: ref.do(last), Return: p + 3})
	return h
}

// corrupt makes one read of h return a value no op ever wrote, which no linearization explains.
func corrupt(t *rapid.T, h []porcupine.Operation) []porcupine.Operation {
	var reads []int
	for i, o := range h {
		if k := o.Input.(Op).Kind; k == KindGet || k == KindRange {
			reads = append(reads, i)
		}
	}
	i := rapid.SampledFrom(reads).Draw(t, "corrupted")
	bad := slices.Clone(h)
	op, resp := bad[i].Input.(Op), bad[i].Output.(Response)
	const never = "never-written"
	if op.Kind == KindGet {
		resp.Found, resp.Value = true, never
	} else if len(resp.KVs) > 0 {
		resp.KVs = slices.Clone(resp.KVs)
		resp.KVs[0].Value = never
	} else {
		resp.KVs = []KV{{op.Key, never}}
	}
	bad[i].Output = resp
	return bad
}

func TestPropertySequentialHistoriesAreLinearizable(t *testing.T) {
	for _, m := range []Model{RegisterModel(), KVModel(), LeaseModel()} {
		t.Run(m.Name, func(t *testing.T) {
			rapid.Check(t, func(t *rapid.T) {
				h := drawHistory(t, m)
				res, err := Check(m, h, 0)
				if err != nil {
					t.Fatal(err)
				}
				if !res.Ok() {
					t.Fatalf("history generated by a sequential store judged %s:\n%s", res.Outcome, dump(h))
				}
				bad := corrupt(t, h)
				res, err = Check(m, bad, 0)
				if err != nil {
					t.Fatal(err)
				}
				if res.Outcome != porcupine.Illegal {
					t.Fatalf("history with a corrupted read judged %s:\n%s", res.Outcome, dump(bad))
				}
			})
		})
	}
}

func dump(h []porcupine.Operation) string {
	var b strings.Builder
	for _, o := range h {
		op := o.Input.(Op)
		fmt.Fprintf(&b, "[%d, %d] %s → %s\n", o.Call, o.Return, op, o.Output.(Response).describe(op.Kind))
	}
	return b.String()
}
