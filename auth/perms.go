package auth

import (
	"bytes"
	"sort"

	"go.etcd.io/etcd/api/v3/authpb"
)

// interval is a half-open key range [begin, end); end nil means no end
// (etcd's range_end "\x00").
type interval struct {
	begin, end []byte
}

// userPerms are one user's permissions merged over its roles, as etcd's
// range permission cache holds them.
type userPerms struct {
	read, write []interval
}

// isOpenEnded: etcd's range_end "\x00", every key from key on.
func isOpenEnded(rangeEnd []byte) bool { return len(rangeEnd) == 1 && rangeEnd[0] == 0 }

// validPermissionRange is etcd's rule for a permission's range: a key, and
// either no range end, one after the key, or "\x00".
func validPermissionRange(key, rangeEnd []byte) bool {
	if len(key) == 0 {
		return false
	}
	if len(rangeEnd) == 0 {
		return true
	}
	return bytes.Compare(key, rangeEnd) < 0 || isOpenEnded(rangeEnd)
}

// permInterval is the keys a permission covers: one key, a range, or
// every key from Key on.
func permInterval(p *authpb.Permission) interval {
	switch {
	case len(p.RangeEnd) == 0:
		return interval{begin: p.Key, end: append(append([]byte(nil), p.Key...), 0)}
	case isOpenEnded(p.RangeEnd):
		return interval{begin: p.Key}
	default:
		return interval{begin: p.Key, end: p.RangeEnd}
	}
}

func (p *userPerms) add(kp *authpb.Permission) {
	ivl := permInterval(kp)
	switch kp.PermType {
	case authpb.Permission_READ:
		p.read = append(p.read, ivl)
	case authpb.Permission_WRITE:
		p.write = append(p.write, ivl)
	case authpb.Permission_READWRITE:
		p.read = append(p.read, ivl)
		p.write = append(p.write, ivl)
	}
}

func (p *userPerms) sort() {
	for _, l := range [][]interval{p.read, p.write} {
		sort.Slice(l, func(i, j int) bool { return bytes.Compare(l[i].begin, l[j].begin) < 0 })
	}
}

// permitted tells whether the permissions of type typ cover the request's
// keys: key alone when rangeEnd is empty, else [key, rangeEnd), where
// "\x00" means every key from key on.
func (p *userPerms) permitted(key, rangeEnd []byte, typ authpb.Permission_Type) bool {
	ivls := p.read
	if typ == authpb.Permission_WRITE {
		ivls = p.write
	}
	if len(rangeEnd) == 0 {
		for _, iv := range ivls {
			if bytes.Compare(iv.begin, key) <= 0 && (iv.end == nil || bytes.Compare(key, iv.end) < 0) {
				return true
			}
		}
		return false
	}
	var end []byte // nil: no end
	if !isOpenEnded(rangeEnd) {
		end = rangeEnd
		if bytes.Compare(key, end) >= 0 {
			// An empty range: etcd's interval tree finds no interval that
			// contains it.
			return false
		}
	}
	// The union of the sorted intervals must cover [key, end) without a gap.
	cur := key
	for _, iv := range ivls {
		if bytes.Compare(iv.begin, cur) > 0 {
			return false // a gap before this interval; later ones start later
		}
		if iv.end == nil {
			return true
		}
		if bytes.Compare(iv.end, cur) > 0 {
			cur = iv.end
			if end != nil && bytes.Compare(cur, end) >= 0 {
				return true
			}
		}
	}
	return false
}
