package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/cairnkv/cairn/linearizability"
)

// The v2 workload (-v2, issue #17): the members run with --enable-v2, and
// besides the v3 clients one v2 client per member sets, creates
// (prevExist=false), compare-and-swaps on prevIndex or prevValue, deletes,
// compare-and-deletes and quorum-gets the keys /chaos/v2k*, over HTTP as
// curl or etcd's v2 client would, some writes with a TTL; a slow client
// writes /chaos/v2t0 and /chaos/v2t1 only with a TTL of 1 or 2 s, rarely
// enough that the leader expires them (its SYNC, through raft). After
// healing, every key is read with quorum=true on every member, and the
// history is checked with the v2 model (linearizability/v2model.go) with
// a step budget: check "v2-linearizable", history in v2-history.jsonl.

// v2Budget is the v2 check's step budget per key.
const v2Budget = 5_000_000

// v2Usage is the -v2 flag's help.
const v2Usage = "also run a v2 API workload (members get --enable-v2) checked with the v2 model"

type v2Workload struct {
	urls      []string // client URLs, one per member
	hc        *http.Client
	rec       *linearizability.V2Recorder
	start     time.Time
	seed      int64
	opTimeout time.Duration
	think     time.Duration
	keys      []string
	ttlKeys   []string
	log       func(format string, args ...any)

	ok, failed, unknown, refused, casFailed atomic.Int64
}

func newV2Workload(urls []string, seed int64, start time.Time, opTimeout, think time.Duration, log func(string, ...any)) *v2Workload {
	w := &v2Workload{
		urls: urls, hc: &http.Client{}, start: start, seed: seed, opTimeout: opTimeout, think: think, log: log,
		ttlKeys: []string{"/chaos/v2t0", "/chaos/v2t1"},
	}
	// Six busy keys: an unknown outcome (a request lost to a fault) stays
	// open to the end of the history, and the check's search grows with
	// the open ones a key has, so they are spread.
	for i := range 6 {
		w.keys = append(w.keys, fmt.Sprintf("/chaos/v2k%d", i))
	}
	w.rec = linearizability.NewV2Recorder(w.now)
	return w
}

// newV2WorkloadFor is the v2 workload of run o on cluster c (nil unless
// -v2).
func newV2WorkloadFor(o *options, c *cluster, start time.Time, log func(string, ...any)) *v2Workload {
	if !o.v2 {
		return nil
	}
	urls := make([]string, len(c.members))
	for i, m := range c.members {
		urls[i] = m.ClientURL
	}
	return newV2Workload(urls, o.seed, start, o.opTimeout, o.think, log)
}

// finalChecks reads every v2 key on every member after healing (check
// "v2-final-reads") and checks the history ("v2-linearizable").
func (w *v2Workload) finalChecks(dir string, deadline time.Time) []Check {
	var checks []Check
	if missing := w.finalReads(deadline); len(missing) > 0 {
		checks = append(checks, fail("v2-final-reads", "%d v2 quorum reads never completed: %s", len(missing), strings.Join(first(missing, 3), ", ")))
	} else {
		checks = append(checks, pass("v2-final-reads", "%d v2 keys read with quorum=true on each of %d members", len(w.keys)+len(w.ttlKeys), len(w.urls)))
	}
	w.log("v2 keys expired by the leaders' SYNCs: %d", w.expired())
	return append(checks, w.check(dir))
}

// expired is the most expirations a member's /v2/stats/store counts.
func (w *v2Workload) expired() int64 {
	var most int64
	for _, u := range w.urls {
		ctx, cancel := context.WithTimeout(context.Background(), w.opTimeout)
		req, _ := http.NewRequestWithContext(ctx, "GET", u+"/v2/stats/store", nil)
		if resp, err := w.hc.Do(req); err == nil {
			var st struct {
				ExpireCount int64 `json:"expireCount"`
			}
			if json.NewDecoder(resp.Body).Decode(&st) == nil {
				most = max(most, st.ExpireCount)
			}
			resp.Body.Close()
		}
		cancel()
	}
	return most
}

func (w *v2Workload) now() int64 { return time.Since(w.start).Nanoseconds() }

// run runs the clients until ctx ends.
func (w *v2Workload) run(ctx context.Context) {
	var wg sync.WaitGroup
	for i := range w.urls {
		wg.Go(func() { w.client(ctx, i, i, false) })
	}
	wg.Go(func() { w.client(ctx, len(w.urls), 0, true) })
	wg.Wait()
	w.log("v2 workload: ok %d (refused %d, compare failed %d), failed %d, unknown %d",
		w.ok.Load(), w.refused.Load(), w.casFailed.Load(), w.failed.Load(), w.unknown.Load())
}

// client is one v2 client: id in the history, bound to member m (the slow
// TTL client moves from member to member).
func (w *v2Workload) client(ctx context.Context, id, m int, ttlOnly bool) {
	rng := rand.New(rand.NewPCG(uint64(w.seed), 0x7632+uint64(id)))
	seen := map[string]uint64{}
	for seq := 1; ctx.Err() == nil; seq++ {
		think := time.Duration(rng.Int64N(int64(2*w.think) + 1))
		if ttlOnly {
			think = 300*time.Millisecond + time.Duration(rng.Int64N(int64(600*time.Millisecond)))
			m = rng.IntN(len(w.urls))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(think):
		}
		op, form := w.nextOp(rng, id, seq, seen, ttlOnly)
		if w.do(id, m, op, form, seen) == nil && !op.IsRead() {
			// The member did not answer in time: wait for it rather
			// than pile up writes of unknown outcome.
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

// nextOp draws the next operation and the request parameters that make it.
func (w *v2Workload) nextOp(rng *rand.Rand, id, seq int, seen map[string]uint64, ttlOnly bool) (linearizability.V2Op, url.Values) {
	key := w.keys[rng.IntN(len(w.keys))]
	ttl := 0
	if ttlOnly {
		key, ttl = w.ttlKeys[rng.IntN(len(w.ttlKeys))], 1+rng.IntN(2)
	} else if rng.IntN(4) == 0 {
		ttl = 1 + rng.IntN(2)
	}
	val := fmt.Sprintf("c%d-%d", id, seq)
	other := fmt.Sprintf("c%d-%d", rng.IntN(len(w.urls)), max(1, seq-rng.IntN(4)))
	prevIndex := seen[key]
	if prevIndex == 0 || rng.IntN(4) == 0 {
		prevIndex = 1 + uint64(rng.IntN(int(prevIndex)+3))
	}
	op := linearizability.V2Op{Key: key}
	form := url.Values{}
	switch r := rng.IntN(20); {
	case r < 4:
		op.Kind, op.Value = linearizability.V2Set, val
	case r < 6:
		op.Kind, op.Value = linearizability.V2Create, val
		form.Set("prevExist", "false")
	case r < 10:
		op.Kind, op.Value, op.PrevIndex = linearizability.V2CAS, val, prevIndex
		form.Set("prevIndex", strconv.FormatUint(prevIndex, 10))
	case r < 12:
		op.Kind, op.Value, op.PrevValue = linearizability.V2CAS, val, other
		form.Set("prevValue", other)
	case r < 13:
		op.Kind = linearizability.V2Delete
	case r < 15:
		op.Kind = linearizability.V2CAD
		if rng.IntN(2) == 0 {
			op.PrevIndex = prevIndex
			form.Set("prevIndex", strconv.FormatUint(prevIndex, 10))
		} else {
			op.PrevValue = other
			form.Set("prevValue", other)
		}
	default:
		op.Kind = linearizability.V2Get
		form.Set("quorum", "true")
	}
	switch op.Kind {
	case linearizability.V2Set, linearizability.V2Create, linearizability.V2CAS:
		form.Set("value", op.Value)
		if ttl > 0 {
			op.TTL = true
			form.Set("ttl", strconv.Itoa(ttl))
		}
	}
	return op, form
}

// v2Answer is etcd's v2 JSON answer, as much of it as the model needs.
type v2Answer struct {
	ErrorCode int        `json:"errorCode"`
	Index     uint64     `json:"index"`
	Node      *v2AnsNode `json:"node"`
	PrevNode  *v2AnsNode `json:"prevNode"`
}

type v2AnsNode struct {
	Value         *string `json:"value"`
	ModifiedIndex uint64  `json:"modifiedIndex"`
}

// notSent is request's answer for a request that never reached the
// member.
const notSent = -1

// request sends op to member m and returns the model's answer, or nil
// when the outcome is unknown (no answer, or an error the model does not
// know, such as a timeout inside the member).
func (w *v2Workload) request(m int, op linearizability.V2Op, form url.Values) *linearizability.V2Response {
	ctx, cancel := context.WithTimeout(context.Background(), w.opTimeout)
	defer cancel()
	u := w.urls[m] + "/v2/keys" + op.Key
	var req *http.Request
	var err error
	switch op.Kind {
	case linearizability.V2Get:
		req, err = http.NewRequestWithContext(ctx, "GET", u+"?"+form.Encode(), nil)
	case linearizability.V2Delete, linearizability.V2CAD:
		req, err = http.NewRequestWithContext(ctx, "DELETE", u+"?"+form.Encode(), nil)
	default:
		req, err = http.NewRequestWithContext(ctx, "PUT", u, strings.NewReader(form.Encode()))
		if req != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	}
	if err != nil {
		return nil
	}
	resp, err := w.hc.Do(req)
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		// Never sent (the member is down): no operation at all.
		return &linearizability.V2Response{ErrorCode: notSent}
	}
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil
	}
	return decodeV2Answer(op, resp.StatusCode, resp.Header.Get("X-Etcd-Index"), b)
}

// decodeV2Answer turns an HTTP answer into the model's (nil: unknown).
func decodeV2Answer(op linearizability.V2Op, status int, etcdIndex string, body []byte) *linearizability.V2Response {
	var a v2Answer
	if err := json.Unmarshal(body, &a); err != nil {
		return nil
	}
	if status >= 300 {
		switch a.ErrorCode {
		case linearizability.V2ErrKeyNotFound, linearizability.V2ErrTestFailed, linearizability.V2ErrNodeExist, linearizability.V2ErrUnauthorized:
			return &linearizability.V2Response{ErrorCode: a.ErrorCode, Index: a.Index}
		}
		return nil
	}
	if a.Node == nil {
		return nil
	}
	idx, err := strconv.ParseUint(etcdIndex, 10, 64)
	if err != nil {
		return nil
	}
	out := &linearizability.V2Response{ModifiedIndex: a.Node.ModifiedIndex, Index: idx}
	if a.Node.Value != nil {
		out.Value = *a.Node.Value
	}
	if p := a.PrevNode; p != nil && op.Kind != linearizability.V2Get {
		out.HasPrev, out.PrevIndex = true, p.ModifiedIndex
		if p.Value != nil {
			out.PrevValue = *p.Value
		}
	}
	return out
}

// do runs one operation and records it.
func (w *v2Workload) do(id, m int, op linearizability.V2Op, form url.Values, seen map[string]uint64) *linearizability.V2Response {
	tok := w.rec.Invoke(id, op)
	resp := w.request(m, op, form)
	if resp != nil && resp.ErrorCode == notSent {
		// Never sent: left out of the history; the client waits for its
		// member to come back.
		w.rec.Drop(tok)
		w.failed.Add(1)
		time.Sleep(50 * time.Millisecond)
		return nil
	}
	if resp == nil {
		w.rec.Unknown(tok)
		if op.IsRead() {
			w.failed.Add(1)
		} else {
			w.unknown.Add(1)
		}
		return nil
	}
	w.rec.Return(tok, *resp)
	w.ok.Add(1)
	switch resp.ErrorCode {
	case 0:
		if op.Kind == linearizability.V2Delete || op.Kind == linearizability.V2CAD {
			delete(seen, op.Key)
		} else if seen != nil {
			seen[op.Key] = resp.ModifiedIndex
		}
	case linearizability.V2ErrUnauthorized:
		w.refused.Add(1)
	case linearizability.V2ErrTestFailed:
		w.casFailed.Add(1)
	case linearizability.V2ErrKeyNotFound:
		delete(seen, op.Key)
	}
	return resp
}

// finalReads reads every key with quorum=true on every member, retrying
// until deadline; it returns the reads that never completed.
func (w *v2Workload) finalReads(deadline time.Time) []string {
	var missing []string
	id := len(w.urls) + 1
	for m := range w.urls {
		for _, k := range append(append([]string(nil), w.keys...), w.ttlKeys...) {
			op := linearizability.V2Op{Kind: linearizability.V2Get, Key: k}
			for {
				if w.do(id, m, op, url.Values{"quorum": {"true"}}, nil) != nil {
					break
				}
				if time.Now().After(deadline) {
					missing = append(missing, fmt.Sprintf("m%d:%s", m, k))
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
		id++
	}
	return missing
}

// check saves the history to dir/v2-history.jsonl and checks it.
func (w *v2Workload) check(dir string) Check {
	h := w.rec.History()
	path := filepath.Join(dir, "v2-history.jsonl")
	if err := saveV2History(path, h); err != nil {
		return fail("v2-linearizable", "%v", err)
	}
	return checkV2History(h, dir, v2Budget)
}

// checkV2History checks a v2 history with the v2 model and a step budget
// per key; a violation is drawn to dir/v2-history.html.
func checkV2History(h []porcupine.Operation, dir string, budget int) Check {
	res, err := linearizability.CheckV2Steps(h, budget)
	if err != nil {
		return fail("v2-linearizable", "%v", err)
	}
	switch res.Verdict {
	case linearizability.Linearizable:
		return pass("v2-linearizable", "%d operations on %d keys, %d steps", len(h), res.Partitions, res.Steps)
	case linearizability.Inconclusive:
		return fail("v2-linearizable", "no verdict within %d steps a key on %d operations (%d of %d keys inconclusive)", budget, len(h), res.Inconclusive, res.Partitions)
	}
	viz := filepath.Join(dir, "v2-history.html")
	key := res.Failed[0].Input.(linearizability.V2Op).Key
	full, err := linearizability.CheckV2(res.Failed, time.Minute)
	if err == nil {
		err = linearizability.WriteV2Visualization(viz, full)
	}
	if err != nil {
		return fail("v2-linearizable", "NOT linearizable (key %s, %d operations); %v", key, len(h), err)
	}
	return fail("v2-linearizable", "NOT linearizable (key %s, %d operations): see %s", key, len(h), viz)
}

// v2Line is one operation of v2-history.jsonl.
type v2Line struct {
	Client int                        `json:"client"`
	Call   int64                      `json:"call"`
	Return int64                      `json:"return"`
	Op     linearizability.V2Op       `json:"op"`
	Resp   linearizability.V2Response `json:"resp"`
}

func saveV2History(path string, h []porcupine.Operation) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(f)
	enc := json.NewEncoder(bw)
	for _, o := range h {
		if err := enc.Encode(v2Line{Client: o.ClientId, Call: o.Call, Return: o.Return, Op: o.Input.(linearizability.V2Op), Resp: o.Output.(linearizability.V2Response)}); err != nil {
			f.Close()
			return err
		}
	}
	return errors.Join(bw.Flush(), f.Close())
}

// loadV2History reads a file saveV2History wrote.
func loadV2History(path string) ([]porcupine.Operation, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var h []porcupine.Operation
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for sc.Scan() {
		var l v2Line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, err
		}
		h = append(h, porcupine.Operation{ClientId: l.Client, Call: l.Call, Return: l.Return, Input: l.Op, Output: l.Resp})
	}
	return h, sc.Err()
}
