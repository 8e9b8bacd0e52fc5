package linearizability

import (
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/anishathalye/porcupine"
)

// Infinity is the return time of an operation whose outcome is unknown: porcupine may then
// linearize it anywhere after its call, including after every other operation (which is how
// "it never took effect" is expressed).
const Infinity int64 = math.MaxInt64

// Token identifies one invoked operation of a Recorder.
type Token int

type outcome uint8

const (
	pending outcome = iota
	returned
	unknown
)

type recorded struct {
	client    int
	op        Op
	call, ret int64
	resp      Response
	outcome   outcome
}

// Recorder records a history of client operations. It is safe for concurrent use; its time
// source must be monotonic (virtual nanoseconds in the simulator, nanoseconds since the start
// of the run on a monotonic clock for real clusters). Call Invoke just before the request is
// sent and Return or Unknown just after its outcome is known, so each recorded interval
// contains the moment the store executed the operation.
type Recorder struct {
	now func() int64

	mu  sync.Mutex
	ops []recorded
}

// NewRecorder returns an empty Recorder that timestamps with now.
func NewRecorder(now func() int64) *Recorder {
	return &Recorder{now: now}
}

// Invoke records that client clientID (zero-based; the visualisation draws one row per
// client) invoked op, and returns the token to finish it with.
func (r *Recorder) Invoke(clientID int, op Op) Token {
	r.mu.Lock()
	defer r.mu.Unlock()
	op.Cmps, op.Then, op.Else = slices.Clone(op.Cmps), slices.Clone(op.Then), slices.Clone(op.Else)
	r.ops = append(r.ops, recorded{client: clientID, op: op, call: r.now()})
	return Token(len(r.ops) - 1)
}

// Return records the observed response of the operation t. A response with Unknown set is
// the same as calling Unknown. Finishing a token twice, or a token this Recorder never
// returned, panics: it is a bug in the caller.
func (r *Recorder) Return(t Token, resp Response) {
	if resp.Unknown {
		r.Unknown(t)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	o := r.finish(t)
	resp.KVs = slices.Clone(resp.KVs)
	o.ret, o.resp, o.outcome = r.now(), resp, returned
}

// Unknown records that the outcome of operation t will never be known (timeout, lost
// connection): a write may have taken effect at any time after its invocation, or never.
// Operations neither returned nor marked unknown when History is called count as unknown.
func (r *Recorder) Unknown(t Token) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.finish(t).outcome = unknown
}

func (r *Recorder) finish(t Token) *recorded {
	if int(t) < 0 || int(t) >= len(r.ops) {
		panic(fmt.Sprintf("linearizability: unknown token %d", t))
	}
	o := &r.ops[t]
	if o.outcome != pending {
		panic(fmt.Sprintf("linearizability: token %d (%s) finished twice", t, o.op))
	}
	return o
}

// History returns the operations recorded so far, in invocation order, for Check. An
// unknown (or still pending) write gets return time Infinity and a Response with Unknown set;
// an unknown read is left out, as it constrains nothing.
func (r *Recorder) History() []porcupine.Operation {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := make([]porcupine.Operation, 0, len(r.ops))
	for _, o := range r.ops {
		if o.outcome == returned {
			h = append(h, porcupine.Operation{ClientId: o.client, Input: o.op, Call: o.call, Output: o.resp, Return: o.ret})
			continue
		}
		if o.op.IsRead() {
			continue
		}
		h = append(h, porcupine.Operation{ClientId: o.client, Input: o.op, Call: o.call, Output: Response{Unknown: true}, Return: Infinity})
	}
	return h
}
