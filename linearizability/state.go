package linearizability

import (
	"hash/fnv"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// entry is one live key of the model's key space.
type entry struct {
	key, value string
	lease      int64 // 0: no lease
}

// state is the sequential specification's state: the live keys sorted by key, the live leases
// sorted, and the store revision (0 while unknown). A state is never modified once built: apply
// copies before writing, as porcupine requires.
type state struct {
	kvs    []entry
	leases []int64
	rev    int64
}

func (s state) find(key string) (int, bool) {
	i := sort.Search(len(s.kvs), func(i int) bool { return s.kvs[i].key >= key })
	return i, i < len(s.kvs) && s.kvs[i].key == key
}

func (s state) hasLease(id int64) bool {
	_, ok := slices.BinarySearch(s.leases, id)
	return ok
}

func (s state) clone() state {
	return state{kvs: slices.Clone(s.kvs), leases: slices.Clone(s.leases), rev: s.rev}
}

// put sets key on a state owned by the caller (a clone).
func (s *state) put(key, value string, lease int64) {
	i, ok := s.find(key)
	if ok {
		s.kvs[i] = entry{key, value, lease}
		return
	}
	s.kvs = slices.Insert(s.kvs, i, entry{key, value, lease})
}

// del removes key from a state owned by the caller and reports whether it existed.
func (s *state) del(key string) bool {
	i, ok := s.find(key)
	if ok {
		s.kvs = slices.Delete(s.kvs, i, i+1)
	}
	return ok
}

// apply executes op against s sequentially. It returns the next state, the response a correct
// store gives, and whether the op changed the key space (and so bumped the revision). It never
// modifies s.
func apply(s state, op Op) (state, Response, bool) {
	switch op.Kind {
	case KindGet:
		i, ok := s.find(op.Key)
		if !ok {
			return s, Response{}, false
		}
		return s, Response{Found: true, Value: s.kvs[i].value}, false
	case KindRange:
		var kvs []KV
		for _, e := range s.kvs {
			if op.inRange(e.key) {
				kvs = append(kvs, KV{e.key, e.value})
			}
		}
		return s, Response{KVs: kvs}, false
	case KindPut:
		n := s.clone()
		n.put(op.Key, op.Value, 0)
		return n, Response{}, true
	case KindDelete:
		if _, ok := s.find(op.Key); !ok {
			return s, Response{}, false
		}
		n := s.clone()
		n.del(op.Key)
		return n, Response{Deleted: 1}, true
	case KindCAS:
		i, ok := s.find(op.Key)
		holds := !ok && op.ExpectAbsent || ok && !op.ExpectAbsent && s.kvs[i].value == op.Expected
		if !holds {
			return s, Response{}, false
		}
		n := s.clone()
		n.put(op.Key, op.Value, 0)
		return n, Response{Succeeded: true}, true
	case KindTxn:
		for _, c := range op.Cmps {
			i, ok := s.find(c.Key)
			if c.Absent && ok || !c.Absent && (!ok || s.kvs[i].value != c.Value) {
				var kvs []KV
				for _, k := range op.Else {
					if i, ok := s.find(k); ok {
						kvs = append(kvs, KV{k, s.kvs[i].value})
					}
				}
				return s, Response{KVs: kvs}, false
			}
		}
		n := s.clone()
		changed := false
		for _, w := range op.Then {
			if w.Delete {
				changed = n.del(w.Key) || changed
			} else {
				n.put(w.Key, w.Value, 0)
				changed = true
			}
		}
		if !changed {
			return s, Response{Succeeded: true}, false
		}
		return n, Response{Succeeded: true}, true
	case KindLeaseGrant:
		if s.hasLease(op.Lease) {
			return s, Response{}, false
		}
		n := s.clone()
		i, _ := slices.BinarySearch(n.leases, op.Lease)
		n.leases = slices.Insert(n.leases, i, op.Lease)
		return n, Response{Succeeded: true}, false
	case KindLeaseRevoke:
		if !s.hasLease(op.Lease) {
			return s, Response{}, false
		}
		n := s.clone()
		i, _ := slices.BinarySearch(n.leases, op.Lease)
		n.leases = slices.Delete(n.leases, i, i+1)
		before := len(n.kvs)
		n.kvs = slices.DeleteFunc(n.kvs, func(e entry) bool { return e.lease == op.Lease })
		return n, Response{Succeeded: true}, len(n.kvs) != before
	case KindPutWithLease:
		if !s.hasLease(op.Lease) {
			return s, Response{}, false
		}
		n := s.clone()
		n.put(op.Key, op.Value, op.Lease)
		return n, Response{Succeeded: true}, true
	}
	panic("linearizability: apply of unvalidated op kind " + string(op.Kind))
}

// matches reports whether the observed response agrees with the expected one for an op of the
// given kind, ignoring revisions.
func matches(kind Kind, want, got Response) bool {
	switch kind {
	case KindGet:
		return want.Found == got.Found && (!want.Found || want.Value == got.Value)
	case KindPut:
		return true
	case KindDelete:
		return want.Deleted == got.Deleted
	case KindRange:
		return slices.Equal(want.KVs, got.KVs)
	case KindTxn:
		return want.Succeeded == got.Succeeded && (want.Succeeded || slices.Equal(want.KVs, got.KVs))
	default:
		return want.Succeeded == got.Succeeded
	}
}

func stateEqual(a, b state) bool {
	return a.rev == b.rev && slices.Equal(a.kvs, b.kvs) && slices.Equal(a.leases, b.leases)
}

func stateHash(s state) uint64 {
	h := fnv.New64a()
	var buf [8]byte
	putInt := func(v int64) {
		for i := range buf {
			buf[i] = byte(v >> (8 * i))
		}
		h.Write(buf[:])
	}
	putInt(s.rev)
	for _, e := range s.kvs {
		putInt(int64(len(e.key)))
		h.Write([]byte(e.key))
		putInt(int64(len(e.value)))
		h.Write([]byte(e.value))
		putInt(e.lease)
	}
	putInt(-1)
	for _, l := range s.leases {
		putInt(l)
	}
	return h.Sum64()
}

// String renders the state for the visualisation, e.g. {"a":"1" "b":"2"(lease 5)} leases[5] rev 7.
func (s state) String() string {
	var b strings.Builder
	b.WriteString("{")
	for i, e := range s.kvs {
		if i > 0 {
			b.WriteString(" ")
		}
		b.WriteString(strconv.Quote(e.key) + ":" + strconv.Quote(e.value))
		if e.lease != 0 {
			b.WriteString("(lease " + strconv.FormatInt(e.lease, 10) + ")")
		}
	}
	b.WriteString("}")
	if len(s.leases) > 0 {
		b.WriteString(" leases[")
		for i, l := range s.leases {
			if i > 0 {
				b.WriteString(" ")
			}
			b.WriteString(strconv.FormatInt(l, 10))
		}
		b.WriteString("]")
	}
	if s.rev != 0 {
		b.WriteString(" rev " + strconv.FormatInt(s.rev, 10))
	}
	return b.String()
}
