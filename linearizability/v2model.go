package linearizability

import (
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// The v2 model checks histories of etcd's v2 keys API (Cairn's --enable-v2) on plain keys:
// sets, creates (prevExist=false), compare-and-swaps on prevValue and/or prevIndex, deletes,
// compare-and-deletes and quorum gets, some of them writing keys with a TTL. Histories hold
// V2Op inputs and V2Response outputs; V2Model partitions them by key, and CheckV2Steps checks
// them with a step budget, as CheckSteps checks the v3 models.
//
// Each key is a register with the v2 store's indexes: a write's modifiedIndex, a prevNode's
// value and index, a get's value and modifiedIndex, and the store index every answer carries
// (X-Etcd-Index, or an error's index) are all checked. The store index is global, so per key
// the model checks that it never goes backwards along a linearization and that every write
// takes an index above every index seen before it on the key.
//
// TTL expiry: a key is expired by the leader's SYNC request, proposed through raft with the
// leader's clock once the expiration time the proposing member's clock computed has passed.
// Neither clock is the client's, and members' clocks may be skewed by any amount, so the
// model gives no deadline: once a write gave a key a TTL (and until a write without one), the
// key may vanish at any point of the linearization, and only then. That is sound (a real
// expiry is one such point), and still strict: a TTL key seen absent cannot come back with its
// old value, a read of it must see its latest value or nothing, and keys without a TTL are
// checked exactly.
//
// The model is nondeterministic in two ways (the expiry above, and an index no answer told
// because the write that made it had an unknown outcome), so its state is the set of
// concrete states the history so far allows; a step keeps every concrete state the answer
// fits, and is illegal when none is left.

// V2Kind names a v2 operation.
type V2Kind string

// The v2 operation kinds.
const (
	// V2Set is PUT value (with ttl when TTL): it always succeeds (prevNode: the old key).
	V2Set V2Kind = "v2-set"
	// V2Create is PUT value with prevExist=false: 105 "Key already exists" if the key exists.
	V2Create V2Kind = "v2-create"
	// V2CAS is PUT value with prevValue and/or prevIndex (whichever is set): 100 if the key
	// does not exist, 101 "Compare failed" if a comparison fails. A CAS without TTL makes the
	// key permanent, as etcd's does.
	V2CAS V2Kind = "v2-cas"
	// V2Delete is DELETE: 100 if the key does not exist.
	V2Delete V2Kind = "v2-delete"
	// V2CAD is DELETE with prevValue and/or prevIndex: 100 or 101 as V2CAS.
	V2CAD V2Kind = "v2-cad"
	// V2Get is GET with quorum=true (through raft): the value and modifiedIndex, or 100.
	V2Get V2Kind = "v2-get"
)

// The v2 error codes the model knows; any other code is an invalid history.
const (
	V2ErrKeyNotFound = 100
	V2ErrTestFailed  = 101
	V2ErrNodeExist   = 105
	// V2ErrUnauthorized: the request was refused (Cairn refuses the v2 API while v3
	// authentication is on) and had no effect, whatever the key held.
	V2ErrUnauthorized = 110
)

// V2Op is the input of one v2 operation on a key (not a directory).
type V2Op struct {
	Kind  V2Kind `json:"kind"`
	Key   string `json:"key"`
	Value string `json:"value,omitempty"`
	// PrevValue and PrevIndex are V2CAS's and V2CAD's comparisons (empty, 0: not compared).
	PrevValue string `json:"prevValue,omitempty"`
	PrevIndex uint64 `json:"prevIndex,omitempty"`
	// TTL tells the write gave the key a TTL (V2Set, V2Create, V2CAS).
	TTL bool `json:"ttl,omitempty"`
}

// V2Response is the observed answer of one v2 operation.
type V2Response struct {
	// ErrorCode is the v2 error code, 0 on success.
	ErrorCode int `json:"errorCode,omitempty"`
	// Value and ModifiedIndex are the answer's node: the key read by a V2Get, the key
	// written by a write (a delete's node carries the delete's index).
	Value         string `json:"value,omitempty"`
	ModifiedIndex uint64 `json:"modifiedIndex,omitempty"`
	// HasPrev tells the answer had a prevNode, with PrevValue and PrevIndex (its
	// modifiedIndex).
	HasPrev   bool   `json:"hasPrev,omitempty"`
	PrevValue string `json:"prevValue,omitempty"`
	PrevIndex uint64 `json:"prevIndex,omitempty"`
	// Index is the store index of the answer (X-Etcd-Index, or the error's index); 0: not
	// recorded.
	Index uint64 `json:"index,omitempty"`
	// Unknown: the outcome was never observed (see Response.Unknown).
	Unknown bool `json:"unknown,omitempty"`
}

// IsRead tells whether op never changes the store.
func (op V2Op) IsRead() bool { return op.Kind == V2Get }

func (op V2Op) validate() error {
	if op.Key == "" {
		return fmt.Errorf("%s with an empty key", op.Kind)
	}
	switch op.Kind {
	case V2Set, V2Create, V2Delete, V2Get:
	case V2CAS, V2CAD:
		if op.PrevValue == "" && op.PrevIndex == 0 {
			return fmt.Errorf("%s without prevValue or prevIndex", op.Kind)
		}
	default:
		return fmt.Errorf("unknown v2 operation kind %q", op.Kind)
	}
	if op.TTL && (op.Kind == V2Delete || op.Kind == V2CAD || op.Kind == V2Get) {
		return fmt.Errorf("%s with a TTL", op.Kind)
	}
	return nil
}

func (op V2Op) String() string {
	q := strconv.Quote
	var b strings.Builder
	b.WriteString(string(op.Kind) + "(" + q(op.Key))
	if op.Kind == V2Set || op.Kind == V2Create || op.Kind == V2CAS {
		b.WriteString(", " + q(op.Value))
	}
	if op.PrevValue != "" {
		b.WriteString(", prevValue=" + q(op.PrevValue))
	}
	if op.PrevIndex != 0 {
		b.WriteString(", prevIndex=" + strconv.FormatUint(op.PrevIndex, 10))
	}
	if op.TTL {
		b.WriteString(", ttl")
	}
	b.WriteString(")")
	return b.String()
}

func (r V2Response) String() string {
	if r.Unknown {
		return "unknown"
	}
	var s string
	if r.ErrorCode != 0 {
		s = "error " + strconv.Itoa(r.ErrorCode)
	} else {
		s = "ok " + strconv.Quote(r.Value) + "@" + strconv.FormatUint(r.ModifiedIndex, 10)
		if r.HasPrev {
			s += " prev " + strconv.Quote(r.PrevValue) + "@" + strconv.FormatUint(r.PrevIndex, 10)
		}
	}
	if r.Index != 0 {
		s += " index " + strconv.FormatUint(r.Index, 10)
	}
	return s
}

// v2Key is one concrete state of a key.
type v2Key struct {
	exists bool
	value  string
	// modified is the key's modifiedIndex, 0 while no answer told it (the write that made it
	// had an unknown outcome).
	modified uint64
	// ttl: the key may expire at any point.
	ttl bool
	// floor is the highest store index seen so far along the linearization.
	floor uint64
}

func (k v2Key) less(o v2Key) bool {
	switch {
	case k.exists != o.exists:
		return !k.exists
	case k.value != o.value:
		return k.value < o.value
	case k.modified != o.modified:
		return k.modified < o.modified
	case k.ttl != o.ttl:
		return !k.ttl
	}
	return k.floor < o.floor
}

// v2State is the set of concrete states a key may be in, sorted and without duplicates.
type v2State []v2Key

func (s v2State) String() string {
	parts := make([]string, len(s))
	for i, k := range s {
		if !k.exists {
			parts[i] = "absent"
		} else {
			parts[i] = strconv.Quote(k.value) + "@" + strconv.FormatUint(k.modified, 10)
			if k.ttl {
				parts[i] += " ttl"
			}
		}
		parts[i] += " floor " + strconv.FormatUint(k.floor, 10)
	}
	return "{" + strings.Join(parts, " | ") + "}"
}

// v2MaxStates bounds a key's set of concrete states; a step that would exceed it keeps the
// first ones in order. (It is never reached by the histories the simulator and chaos make: a
// key has at most a few states at once, one per way its unknown writes may have gone.)
const v2MaxStates = 64

// v2Step applies op with answer got to every concrete state in s.
func v2Step(s v2State, op V2Op, got V2Response) (bool, v2State) {
	var next v2State
	add := func(k v2Key) {
		next = append(next, k)
	}
	for _, k := range s {
		v2Apply(k, op, got, add)
		if k.exists && k.ttl {
			// The key may have expired just before op: a SYNC took the next index.
			v2Apply(v2Key{floor: k.floor}, op, got, add)
		}
	}
	if len(next) == 0 {
		return false, nil
	}
	slices.SortFunc(next, func(a, b v2Key) int {
		switch {
		case a.less(b):
			return -1
		case b.less(a):
			return 1
		}
		return 0
	})
	next = slices.Compact(next)
	if len(next) > v2MaxStates {
		next = next[:v2MaxStates]
	}
	return true, next
}

// v2Apply calls add with each state k can move to by op answering got.
func v2Apply(k v2Key, op V2Op, got V2Response, add func(v2Key)) {
	if got.Unknown {
		v2Unknown(k, op, add)
		return
	}
	// The answer's store index never goes backwards.
	if got.Index != 0 && got.Index < k.floor {
		return
	}
	if got.ErrorCode == V2ErrUnauthorized {
		k.floor = max(k.floor, got.Index)
		add(k)
		return
	}
	switch op.Kind {
	case V2Get:
		if !k.exists {
			if got.ErrorCode == V2ErrKeyNotFound {
				k.floor = max(k.floor, got.Index)
				add(k)
			}
			return
		}
		if got.ErrorCode != 0 || got.Value != k.value || !k.learn(got.ModifiedIndex) {
			return
		}
		if got.Index != 0 && got.Index < k.modified {
			return
		}
		k.floor = max(k.floor, got.Index, k.modified)
		add(k)
	case V2Set, V2Create, V2CAS, V2Delete, V2CAD:
		fail := v2Check(k, op)
		if fail != 0 || got.ErrorCode != 0 {
			// Unknown comparison: either answer may be right.
			if got.ErrorCode == fail || (fail == -1 && got.ErrorCode == V2ErrTestFailed) {
				k.floor = max(k.floor, got.Index)
				add(k)
			}
			if fail != -1 {
				return
			}
		}
		if got.ErrorCode != 0 {
			return
		}
		if fail == -1 {
			k.modified = op.PrevIndex // the comparison held: now it is known
		}
		if !v2Written(k, op, got) {
			return
		}
		add(v2After(k, op, got.ModifiedIndex, max(k.floor, got.ModifiedIndex, got.Index)))
	}
}

// learn checks an answered modifiedIndex m against k's (learning it if unknown).
func (k *v2Key) learn(m uint64) bool {
	if k.modified == 0 {
		if m == 0 {
			return false
		}
		k.modified = m
		return true
	}
	return m == k.modified
}

// v2Check is the error a write answers on k: 0 (it succeeds), an error code, or -1 when it
// depends on a prevIndex comparison against an index the model does not know.
func v2Check(k v2Key, op V2Op) int {
	switch op.Kind {
	case V2Set:
		return 0
	case V2Create:
		if k.exists {
			return V2ErrNodeExist
		}
		return 0
	case V2Delete:
		if !k.exists {
			return V2ErrKeyNotFound
		}
		return 0
	}
	if !k.exists {
		return V2ErrKeyNotFound
	}
	if op.PrevValue != "" && op.PrevValue != k.value {
		return V2ErrTestFailed
	}
	if op.PrevIndex != 0 {
		if k.modified == 0 {
			return -1
		}
		if op.PrevIndex != k.modified {
			return V2ErrTestFailed
		}
	}
	return 0
}

// v2Written checks a successful write's answer against k, the state it applied to.
func v2Written(k v2Key, op V2Op, got V2Response) bool {
	if got.ModifiedIndex <= k.floor {
		return false // a write takes the next index
	}
	if got.Index != 0 && got.Index != got.ModifiedIndex {
		return false
	}
	if got.HasPrev != k.exists {
		return false
	}
	if k.exists {
		if got.PrevValue != k.value {
			return false
		}
		if k.modified != 0 && got.PrevIndex != k.modified {
			return false
		}
	}
	switch op.Kind {
	case V2Set, V2Create, V2CAS:
		return got.Value == op.Value
	}
	return true
}

// v2After is k after op took effect at index idx (0: unknown).
func v2After(k v2Key, op V2Op, idx, floor uint64) v2Key {
	switch op.Kind {
	case V2Delete, V2CAD:
		return v2Key{floor: floor}
	}
	return v2Key{exists: true, value: op.Value, modified: idx, ttl: op.TTL, floor: floor}
}

// v2Unknown calls add with each state k can move to by op with an unknown outcome (it took
// effect here: porcupine places it, or leaves it after every other op for "never").
func v2Unknown(k v2Key, op V2Op, add func(v2Key)) {
	switch v2Check(k, op) {
	case 0:
		add(v2After(k, op, 0, k.floor))
	case -1:
		add(k) // the comparison failed
		k.modified = 0
		add(v2After(k, op, 0, k.floor))
	default:
		add(k)
	}
}

func v2Hash(s v2State) uint64 {
	h := fnv.New64a()
	var b []byte
	for _, k := range s {
		b = b[:0]
		b = strconv.AppendBool(b, k.exists)
		b = append(b, k.value...)
		b = append(b, 0)
		b = strconv.AppendUint(b, k.modified, 10)
		b = strconv.AppendBool(b, k.ttl)
		b = strconv.AppendUint(b, k.floor, 10)
		b = append(b, 1)
		_, _ = h.Write(b)
	}
	return h.Sum64()
}

// V2Model is the porcupine model of the v2 keys API described above, partitioned by key.
func V2Model() porcupine.Model {
	return porcupine.Model{
		Init: func() interface{} { return v2State{{}} },
		Step: func(st, in, out interface{}) (bool, interface{}) {
			return v2Step(st.(v2State), in.(V2Op), out.(V2Response))
		},
		Equal: func(a, b interface{}) bool { return slices.Equal(a.(v2State), b.(v2State)) },
		Hash:  func(s interface{}) uint64 { return v2Hash(s.(v2State)) },
		Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
			index := map[string]int{}
			var out [][]porcupine.Operation
			for _, o := range history {
				k := o.Input.(V2Op).Key
				j, ok := index[k]
				if !ok {
					j = len(out)
					index[k] = j
					out = append(out, nil)
				}
				out[j] = append(out[j], o)
			}
			return out
		},
		DescribeOperation: func(in, out interface{}) string {
			return in.(V2Op).String() + " → " + out.(V2Response).String()
		},
		DescribeState: func(s interface{}) string { return s.(v2State).String() },
	}
}

// ValidateV2 returns an error wrapping ErrInvalidHistory if history is not a v2 history the
// model can check.
func ValidateV2(history []porcupine.Operation) error {
	for i, o := range history {
		op, ok := o.Input.(V2Op)
		if !ok {
			return fmt.Errorf("%w: operation %d: input is %T, not linearizability.V2Op", ErrInvalidHistory, i, o.Input)
		}
		resp, ok := o.Output.(V2Response)
		if !ok {
			return fmt.Errorf("%w: operation %d: output is %T, not linearizability.V2Response", ErrInvalidHistory, i, o.Output)
		}
		if err := op.validate(); err != nil {
			return fmt.Errorf("%w: operation %d: %w", ErrInvalidHistory, i, err)
		}
		switch resp.ErrorCode {
		case 0, V2ErrKeyNotFound, V2ErrTestFailed, V2ErrNodeExist, V2ErrUnauthorized:
		default:
			return fmt.Errorf("%w: operation %d: v2 error code %d is not modelled", ErrInvalidHistory, i, resp.ErrorCode)
		}
		if o.Return < o.Call {
			return fmt.Errorf("%w: operation %d: returns at %d before its call at %d", ErrInvalidHistory, i, o.Return, o.Call)
		}
	}
	return nil
}

// CheckV2Steps checks a v2 history as CheckSteps checks a v3 one: key by key, each key's
// search bounded by maxSteps model transitions, so the verdict depends on the history alone.
func CheckV2Steps(history []porcupine.Operation, maxSteps int) (StepsResult, error) {
	if err := ValidateV2(history); err != nil {
		return StepsResult{}, err
	}
	return checkModelSteps(V2Model(), history, maxSteps)
}

// CheckV2 checks a v2 history with porcupine's own search, bounded by wall-clock time (0:
// none), and returns what WriteV2Visualization draws.
func CheckV2(history []porcupine.Operation, timeout time.Duration) (Result, error) {
	if err := ValidateV2(history); err != nil {
		return Result{}, err
	}
	outcome, info := porcupine.CheckOperationsVerbose(V2Model(), history, timeout)
	return Result{Outcome: outcome, Info: info}, nil
}

// WriteV2Visualization writes porcupine's HTML view of a v2 history checked with CheckV2.
func WriteV2Visualization(path string, res Result) error {
	if err := porcupine.VisualizePath(V2Model(), res.Info, path); err != nil {
		return fmt.Errorf("linearizability: write visualization %s: %w", path, err)
	}
	return nil
}

// V2Recorder records a history of v2 operations, as Recorder does for v3 ones. It is safe
// for concurrent use.
type V2Recorder struct {
	now func() int64

	mu  sync.Mutex
	ops []v2Recorded
}

type v2Recorded struct {
	client    int
	op        V2Op
	call, ret int64
	resp      V2Response
	outcome   outcome
}

// NewV2Recorder returns an empty V2Recorder that timestamps with now (monotonic).
func NewV2Recorder(now func() int64) *V2Recorder { return &V2Recorder{now: now} }

// Invoke records that client invoked op, just before sending it.
func (r *V2Recorder) Invoke(client int, op V2Op) Token {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops = append(r.ops, v2Recorded{client: client, op: op, call: r.now()})
	return Token(len(r.ops) - 1)
}

// Return records op t's observed answer (Unknown set: as Unknown).
func (r *V2Recorder) Return(t Token, resp V2Response) {
	r.mu.Lock()
	defer r.mu.Unlock()
	o := r.finish(t)
	if resp.Unknown {
		o.outcome = unknown
		return
	}
	o.ret, o.resp, o.outcome = r.now(), resp, returned
}

// Unknown records that op t's outcome will never be known.
func (r *V2Recorder) Unknown(t Token) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.finish(t).outcome = unknown
}

// v2Dropped marks an operation the client knows never reached the store.
const v2Dropped = unknown + 1

// Drop records that op t never reached the store (the connection was
// refused before the request was sent): it is left out of the history.
func (r *V2Recorder) Drop(t Token) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.finish(t).outcome = v2Dropped
}

func (r *V2Recorder) finish(t Token) *v2Recorded {
	if int(t) < 0 || int(t) >= len(r.ops) {
		panic(fmt.Sprintf("linearizability: unknown v2 token %d", t))
	}
	o := &r.ops[t]
	if o.outcome != pending {
		panic(fmt.Sprintf("linearizability: v2 token %d (%s) finished twice", t, o.op))
	}
	return o
}

// Len is how many operations were invoked.
func (r *V2Recorder) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ops)
}

// History returns the operations for CheckV2Steps, as Recorder.History does: an unknown write
// returns at Infinity with Unknown set, an unknown read and a dropped op are left out.
func (r *V2Recorder) History() []porcupine.Operation {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := make([]porcupine.Operation, 0, len(r.ops))
	for _, o := range r.ops {
		if o.outcome == returned {
			h = append(h, porcupine.Operation{ClientId: o.client, Input: o.op, Call: o.call, Output: o.resp, Return: o.ret})
			continue
		}
		if o.op.IsRead() || o.outcome == v2Dropped {
			continue
		}
		h = append(h, porcupine.Operation{ClientId: o.client, Input: o.op, Call: o.call, Output: V2Response{Unknown: true}, Return: Infinity})
	}
	return h
}
