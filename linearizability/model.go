package linearizability

import (
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/anishathalye/porcupine"
)

// ErrInvalidHistory is wrapped by the errors Check and Model.Validate return for a history
// that the model cannot check: foreign input or output types, malformed ops, or op kinds the
// model does not support.
var ErrInvalidHistory = errors.New("linearizability: invalid history")

// Model is a porcupine model of Cairn's key space together with the op kinds it accepts.
// Histories hold Op inputs and Response outputs. Models are values: build them with
// RegisterModel, KVModel or LeaseModel.
type Model struct {
	// Name identifies the model in error messages.
	Name string
	// Porcupine is the model itself, usable with porcupine's own functions.
	Porcupine porcupine.Model
	kinds     []Kind
}

// revMode says how a model checks recorded revisions.
type revMode int

const (
	// revExact: the model sees every write, so a write that changed the key space has
	// revision previous+1 and every other op has revision previous.
	revExact revMode = iota
	// revMonotone: the model sees one partition of the writes, so revisions only never go
	// backwards, and a write that changed the key space has a revision above every one seen.
	revMonotone
)

// RegisterModel checks single-key operations (Get, Put, Delete, CAS), partitioned by key:
// each key is a register checked on its own, which keeps checking fast on long histories.
// Recorded revisions must never go backwards along a key's linearization, and a write that
// changed the key must carry a revision above every revision seen before it on that key.
func RegisterModel() Model {
	return newModel("register", revMonotone, true,
		KindGet, KindPut, KindDelete, KindCAS)
}

// KVModel checks every op kind against the whole key space at once (no partitioning), as
// Range and multi-key Txn require; it includes leases, so a whole mixed history can be
// checked with it. It expects to see every write to the store: recorded revisions must be
// exactly previous+1 for an op that changed the key space (a put, a delete that removed a key,
// a successful CAS or Txn that wrote, a revoke that deleted attached keys) and exactly
// previous otherwise. The first recorded revision anchors the count, so the store need not
// start empty of history, but it must start with none of the checked keys present.
func KVModel() Model {
	return newModel("kv", revExact, false,
		KindGet, KindPut, KindDelete, KindCAS, KindRange, KindTxn,
		KindLeaseGrant, KindLeaseRevoke, KindPutWithLease)
}

// LeaseModel checks leases and the keys attached to them: LeaseGrant, PutWithLease,
// LeaseRevoke (which deletes the attached keys; record an expiry as a revoke with an unknown
// outcome), and the single-key ops Get, Put (which detaches a key from its lease), Delete and
// CAS. The history is partitioned into groups of keys and leases that ops connect, and
// revisions are checked as in RegisterModel.
func LeaseModel() Model {
	return newModel("lease", revMonotone, true,
		KindGet, KindPut, KindDelete, KindCAS,
		KindLeaseGrant, KindLeaseRevoke, KindPutWithLease)
}

func newModel(name string, mode revMode, partition bool, kinds ...Kind) Model {
	pm := porcupine.Model{
		Init: func() interface{} { return state{} },
		Step: func(st, in, out interface{}) (bool, interface{}) {
			return step(mode, st.(state), in.(Op), out.(Response))
		},
		Equal: func(a, b interface{}) bool { return stateEqual(a.(state), b.(state)) },
		Hash:  func(s interface{}) uint64 { return stateHash(s.(state)) },
		DescribeOperation: func(in, out interface{}) string {
			op := in.(Op)
			return op.String() + " → " + out.(Response).describe(op.Kind)
		},
		DescribeState: func(s interface{}) string { return s.(state).String() },
	}
	if partition {
		pm.Partition = partitionByFootprint
	}
	return Model{Name: name, Porcupine: pm, kinds: kinds}
}

// Supports reports whether the model accepts ops of the given kind.
func (m Model) Supports(k Kind) bool { return slices.Contains(m.kinds, k) }

// Validate returns an error wrapping ErrInvalidHistory if the history cannot be checked with
// m: an input that is not an Op, an output that is not a Response, a malformed op, an op kind
// m does not support, or a return before its call.
func (m Model) Validate(history []porcupine.Operation) error {
	for i, o := range history {
		op, ok := o.Input.(Op)
		if !ok {
			return fmt.Errorf("%w: operation %d: input is %T, not linearizability.Op", ErrInvalidHistory, i, o.Input)
		}
		if _, ok := o.Output.(Response); !ok {
			return fmt.Errorf("%w: operation %d: output is %T, not linearizability.Response", ErrInvalidHistory, i, o.Output)
		}
		if err := op.validate(); err != nil {
			return fmt.Errorf("%w: operation %d: %w", ErrInvalidHistory, i, err)
		}
		if !m.Supports(op.Kind) {
			return fmt.Errorf("%w: operation %d: %s model does not support %s", ErrInvalidHistory, i, m.Name, op.Kind)
		}
		if o.Return < o.Call {
			return fmt.Errorf("%w: operation %d: returns at %d before its call at %d", ErrInvalidHistory, i, o.Return, o.Call)
		}
	}
	return nil
}

// step is the models' transition: the op must produce the observed response from s (unless
// its outcome is unknown) and its recorded revision must fit the revision mode.
func step(mode revMode, s state, op Op, got Response) (bool, interface{}) {
	n, want, changed := apply(s, op)
	if got.Unknown {
		if mode == revExact && changed && s.rev != 0 {
			n.rev = s.rev + 1
		}
		return true, n
	}
	if !matches(op.Kind, want, got) {
		return false, nil
	}
	rev, ok := nextRev(mode, s.rev, changed, got.Revision)
	if !ok {
		return false, nil
	}
	n.rev = rev
	return true, n
}

// nextRev checks the recorded revision got (0: not recorded) of an op applied at model
// revision cur (0: not yet known) and returns the model revision after the op.
func nextRev(mode revMode, cur int64, changed bool, got int64) (int64, bool) {
	if mode == revExact {
		switch {
		case got == 0 && changed && cur != 0:
			return cur + 1, true
		case got == 0 || cur == 0:
			return max(cur, got), true
		case changed:
			return got, got == cur+1
		default:
			return got, got == cur
		}
	}
	switch {
	case got == 0:
		return cur, true
	case changed:
		return got, got > cur
	default:
		return max(cur, got), got >= cur
	}
}

// footprint lists the keys ("k" prefix) and leases ("l" prefix) an op can touch.
func footprint(op Op) []string {
	var f []string
	if op.Key != "" {
		f = append(f, "k"+op.Key)
	}
	if op.Lease != 0 {
		f = append(f, "l"+strconv.FormatInt(op.Lease, 10))
	}
	for _, c := range op.Cmps {
		f = append(f, "k"+c.Key)
	}
	for _, w := range op.Then {
		f = append(f, "k"+w.Key)
	}
	for _, k := range op.Else {
		f = append(f, "k"+k)
	}
	return f
}

// partitionByFootprint splits a history into groups of operations connected through the keys
// and leases they touch; no op of one group can affect another group. Groups appear in the
// order of their first operation and keep the history's order. Ranges are never partitioned
// (models that partition do not accept them).
func partitionByFootprint(history []porcupine.Operation) [][]porcupine.Operation {
	parent := map[string]string{}
	var root func(string) string
	root = func(x string) string {
		p, ok := parent[x]
		if !ok || p == x {
			parent[x] = x
			return x
		}
		r := root(p)
		parent[x] = r
		return r
	}
	prints := make([][]string, len(history))
	for i, o := range history {
		prints[i] = footprint(o.Input.(Op))
		for _, x := range prints[i][min(1, len(prints[i])):] {
			if a, b := root(prints[i][0]), root(x); a != b {
				parent[b] = a
			}
		}
	}
	index := map[string]int{}
	var out [][]porcupine.Operation
	for i, o := range history {
		r := "" // ops touching nothing share one group
		if len(prints[i]) > 0 {
			r = root(prints[i][0])
		}
		j, ok := index[r]
		if !ok {
			j = len(out)
			index[r] = j
			out = append(out, nil)
		}
		out[j] = append(out[j], o)
	}
	return out
}
