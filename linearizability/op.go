package linearizability

import (
	"fmt"
	"strconv"
	"strings"
)

// Kind names the operation an Op performs.
type Kind string

// The operation kinds. Each model accepts a subset of them (see RegisterModel, KVModel and
// LeaseModel).
const (
	// KindGet reads one key. Response: Found, and Value when Found.
	KindGet Kind = "get"
	// KindPut writes one key, detaching it from any lease. Response: nothing but Revision.
	KindPut Kind = "put"
	// KindDelete deletes one key. Response: Deleted (0 or 1).
	KindDelete Kind = "delete"
	// KindCAS is a compare-and-set transaction: if the key's value equals Expected (or, with
	// ExpectAbsent, if the key does not exist: create_revision == 0) then put Value.
	// Response: Succeeded.
	KindCAS Kind = "cas"
	// KindRange reads the keys selected by Key, End and Prefix (see Op). Response: KVs,
	// sorted by key.
	KindRange Kind = "range"
	// KindTxn is a multi-key transaction: if every Cmp holds, apply Then in order; otherwise
	// read the keys in Else. Response: Succeeded, and when it did not succeed, KVs holding one
	// entry per existing key of Else, in the order of Else. A successful Txn that wrote nothing
	// (only deletes of absent keys) does not bump the revision. etcd rejects a Then that
	// touches one key twice (ErrDuplicateKey); the model applies such writes in order.
	KindTxn Kind = "txn"
	// KindLeaseGrant grants the lease with the client-chosen ID Lease. Response: Succeeded
	// (false means the lease already existed).
	KindLeaseGrant Kind = "lease-grant"
	// KindLeaseRevoke revokes lease Lease and deletes every key attached to it; a lease
	// expiry is recorded as a revoke whose outcome is unknown (see Recorder.Unknown).
	// Response: Succeeded (false means the lease did not exist).
	KindLeaseRevoke Kind = "lease-revoke"
	// KindPutWithLease writes one key attached to lease Lease. Response: Succeeded (false
	// means the lease did not exist and nothing was written).
	KindPutWithLease Kind = "put-lease"
)

// Op is the input of one client operation. Which fields matter depends on Kind; build Ops
// with the constructors (Get, Put, ...) rather than by hand.
type Op struct {
	Kind Kind `json:"kind"`
	// Key is the key of single-key operations and the start of a Range.
	Key string `json:"key,omitempty"`
	// End is the end of a Range, as in etcd's range_end: "" selects Key alone, "\x00"
	// selects every key >= Key, anything else selects [Key, End).
	End string `json:"end,omitempty"`
	// Prefix makes a Range select every key starting with Key (End is ignored).
	Prefix bool `json:"prefix,omitempty"`
	// Value is the value written by Put, PutWithLease and a successful CAS.
	Value string `json:"value,omitempty"`
	// Expected is the value a CAS compares against, unless ExpectAbsent is set.
	Expected     string `json:"expected,omitempty"`
	ExpectAbsent bool   `json:"expectAbsent,omitempty"`
	// Lease is the lease ID of lease operations; it is never 0.
	Lease int64 `json:"lease,omitempty"`
	// Cmps, Then and Else describe a Txn.
	Cmps []Cmp    `json:"cmps,omitempty"`
	Then []Write  `json:"then,omitempty"`
	Else []string `json:"else,omitempty"`
}

// Cmp is one comparison of a Txn: the key's value equals Value, or, with Absent, the key does
// not exist (create_revision == 0). As in etcd, a value comparison on a missing key is false.
type Cmp struct {
	Key    string `json:"key"`
	Value  string `json:"value,omitempty"`
	Absent bool   `json:"absent,omitempty"`
}

// Write is one request of a Txn's success branch: a put of Value, or, with Delete, a delete.
type Write struct {
	Key    string `json:"key"`
	Value  string `json:"value,omitempty"`
	Delete bool   `json:"delete,omitempty"`
}

// KV is one key/value pair returned by a Range or a failed Txn.
type KV struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Response is the observed output of one operation. Which fields matter depends on the Op's
// Kind (see the Kind constants); the others must be zero.
type Response struct {
	Succeeded bool   `json:"ok,omitempty"`
	Found     bool   `json:"found,omitempty"`
	Value     string `json:"value,omitempty"`
	KVs       []KV   `json:"kvs,omitempty"`
	Deleted   int64  `json:"deleted,omitempty"`
	// Revision is the response header revision, or 0 when it was not recorded. Recorded
	// revisions are checked: see the models' documentation.
	Revision int64 `json:"rev,omitempty"`
	// Unknown means the outcome was never observed (timeout, connection lost): the operation
	// may have taken effect at any time after its invocation, or never, and every other field
	// is ignored. Recorder.Unknown sets it.
	Unknown bool `json:"unknown,omitempty"`
}

// Get reads key.
func Get(key string) Op { return Op{Kind: KindGet, Key: key} }

// Put writes value to key without a lease.
func Put(key, value string) Op { return Op{Kind: KindPut, Key: key, Value: value} }

// Delete deletes key.
func Delete(key string) Op { return Op{Kind: KindDelete, Key: key} }

// CAS puts value to key if key currently holds expected.
func CAS(key, expected, value string) Op {
	return Op{Kind: KindCAS, Key: key, Expected: expected, Value: value}
}

// CASAbsent puts value to key if key does not exist (create_revision == 0).
func CASAbsent(key, value string) Op {
	return Op{Kind: KindCAS, Key: key, ExpectAbsent: true, Value: value}
}

// Range reads the keys in [start, end), with etcd's conventions for end (see Op.End).
func Range(start, end string) Op { return Op{Kind: KindRange, Key: start, End: end} }

// RangePrefix reads every key that starts with prefix.
func RangePrefix(prefix string) Op { return Op{Kind: KindRange, Key: prefix, Prefix: true} }

// Txn is a multi-key transaction: if all cmps hold, apply then, else read the keys in els.
func Txn(cmps []Cmp, then []Write, els []string) Op {
	return Op{Kind: KindTxn, Cmps: cmps, Then: then, Else: els}
}

// LeaseGrant grants the lease with ID id.
func LeaseGrant(id int64) Op { return Op{Kind: KindLeaseGrant, Lease: id} }

// LeaseRevoke revokes the lease with ID id, deleting the keys attached to it.
func LeaseRevoke(id int64) Op { return Op{Kind: KindLeaseRevoke, Lease: id} }

// PutWithLease writes value to key attached to lease.
func PutWithLease(key, value string, lease int64) Op {
	return Op{Kind: KindPutWithLease, Key: key, Value: value, Lease: lease}
}

// IsRead reports whether op never changes the store. An unknown-outcome read is dropped from
// a history instead of being checked.
func (op Op) IsRead() bool {
	switch op.Kind {
	case KindGet, KindRange:
		return true
	case KindTxn:
		return len(op.Then) == 0
	}
	return false
}

// validate reports whether op is well formed.
func (op Op) validate() error {
	switch op.Kind {
	case KindGet, KindPut, KindDelete, KindCAS, KindRange:
		if op.Key == "" {
			return fmt.Errorf("%s with an empty key", op.Kind)
		}
	case KindTxn:
		for _, c := range op.Cmps {
			if c.Key == "" {
				return fmt.Errorf("txn comparison on an empty key")
			}
		}
		for _, w := range op.Then {
			if w.Key == "" {
				return fmt.Errorf("txn write to an empty key")
			}
		}
		for _, k := range op.Else {
			if k == "" {
				return fmt.Errorf("txn read of an empty key")
			}
		}
	case KindLeaseGrant, KindLeaseRevoke:
		if op.Lease == 0 {
			return fmt.Errorf("%s of lease 0", op.Kind)
		}
	case KindPutWithLease:
		if op.Key == "" || op.Lease == 0 {
			return fmt.Errorf("put-lease needs a key and a nonzero lease")
		}
	default:
		return fmt.Errorf("unknown operation kind %q", op.Kind)
	}
	return nil
}

// inRange reports whether key is selected by the Range op.
func (op Op) inRange(key string) bool {
	switch {
	case op.Prefix:
		return strings.HasPrefix(key, op.Key)
	case op.End == "":
		return key == op.Key
	case op.End == "\x00":
		return key >= op.Key
	default:
		return key >= op.Key && key < op.End
	}
}

// String renders op for humans, e.g. cas("k", "1"→"2").
func (op Op) String() string {
	q := strconv.Quote
	switch op.Kind {
	case KindGet:
		return "get(" + q(op.Key) + ")"
	case KindPut:
		return "put(" + q(op.Key) + ", " + q(op.Value) + ")"
	case KindDelete:
		return "delete(" + q(op.Key) + ")"
	case KindCAS:
		exp := q(op.Expected)
		if op.ExpectAbsent {
			exp = "absent"
		}
		return "cas(" + q(op.Key) + ", " + exp + "→" + q(op.Value) + ")"
	case KindRange:
		switch {
		case op.Prefix:
			return "range(prefix " + q(op.Key) + ")"
		case op.End == "":
			return "range(" + q(op.Key) + ")"
		case op.End == "\x00":
			return "range(>= " + q(op.Key) + ")"
		}
		return "range[" + q(op.Key) + ", " + q(op.End) + ")"
	case KindTxn:
		var b strings.Builder
		b.WriteString("txn(if ")
		for i, c := range op.Cmps {
			if i > 0 {
				b.WriteString(" && ")
			}
			if c.Absent {
				b.WriteString(q(c.Key) + " absent")
			} else {
				b.WriteString(q(c.Key) + "==" + q(c.Value))
			}
		}
		b.WriteString(" then")
		for _, w := range op.Then {
			if w.Delete {
				b.WriteString(" delete(" + q(w.Key) + ")")
			} else {
				b.WriteString(" put(" + q(w.Key) + ", " + q(w.Value) + ")")
			}
		}
		b.WriteString(" else get")
		for _, k := range op.Else {
			b.WriteString(" " + q(k))
		}
		b.WriteString(")")
		return b.String()
	case KindLeaseGrant:
		return "lease-grant(" + strconv.FormatInt(op.Lease, 10) + ")"
	case KindLeaseRevoke:
		return "lease-revoke(" + strconv.FormatInt(op.Lease, 10) + ")"
	case KindPutWithLease:
		return "put(" + q(op.Key) + ", " + q(op.Value) + ", lease " + strconv.FormatInt(op.Lease, 10) + ")"
	}
	return fmt.Sprintf("%s(?)", op.Kind)
}

// describe renders resp as the output of op, e.g. `"v" @rev 7`.
func (resp Response) describe(kind Kind) string {
	if resp.Unknown {
		return "unknown"
	}
	var s string
	switch kind {
	case KindGet:
		s = "absent"
		if resp.Found {
			s = strconv.Quote(resp.Value)
		}
	case KindPut:
		s = "ok"
	case KindDelete:
		s = "deleted " + strconv.FormatInt(resp.Deleted, 10)
	case KindRange:
		s = describeKVs(resp.KVs)
	case KindTxn:
		s = "succeeded"
		if !resp.Succeeded {
			s = "failed " + describeKVs(resp.KVs)
		}
	default:
		s = "ok"
		if !resp.Succeeded {
			s = "failed"
		}
	}
	if resp.Revision != 0 {
		s += " @rev " + strconv.FormatInt(resp.Revision, 10)
	}
	return s
}

func describeKVs(kvs []KV) string {
	parts := make([]string, len(kvs))
	for i, kv := range kvs {
		parts[i] = strconv.Quote(kv.Key) + ":" + strconv.Quote(kv.Value)
	}
	return "{" + strings.Join(parts, ", ") + "}"
}
