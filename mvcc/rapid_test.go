package mvcc

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cairnkv/cairn/clock"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"
	"pgregory.net/rapid"
)

// TestMain makes 1000 rapid checks the default unless -rapid.checks or
// RAPID_CHECKS says otherwise.
func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "rapid.checks" })
	if _, env := os.LookupEnv("RAPID_CHECKS"); !set && !env {
		if err := flag.Set("rapid.checks", "1000"); err != nil {
			panic(err)
		}
	}
	os.Exit(m.Run())
}

var (
	smKeys   = []string{"a", "ab", "b", "c", "cd", "d"}
	smEnds   = []string{"", "", "", "\x00", "a", "b", "c", "d", "e"}
	smValues = []string{"", "x", "y", "z"}
)

const smInterval = 100 * time.Millisecond

// smState is the Store under test, its model, and the model as of the last
// commit (what a crash rolls back to).
type smState struct {
	t         *rapid.T
	cfg       Config
	fc        *clock.Fake
	s         *Store
	m         *model
	committed *model
	// hash of the key space at the last commit, and at which revision.
	committedHash uint32
}

func (st *smState) open() {
	s, err := Open(st.cfg)
	if err != nil {
		st.t.Fatalf("Open: %v", err)
	}
	st.s = s
}

// markCommitted records that everything so far is durable.
func (st *smState) markCommitted() {
	st.committed = st.m.clone()
	h, _, _, err := st.s.HashKV(0)
	if err != nil {
		st.t.Fatalf("HashKV: %v", err)
	}
	st.committedHash = h
}

func sameErr(got, want error) bool {
	if want == nil {
		return got == nil
	}
	return errors.Is(got, want)
}

func genKey(t *rapid.T, label string) []byte {
	return []byte(rapid.SampledFrom(smKeys).Draw(t, label))
}

func genPut(t *rapid.T) *pb.PutRequest {
	p := &pb.PutRequest{
		Key:    genKey(t, "key"),
		Value:  []byte(rapid.SampledFrom(smValues).Draw(t, "value")),
		Lease:  rapid.Int64Range(0, 2).Draw(t, "lease"),
		PrevKv: rapid.Bool().Draw(t, "prevKV"),
	}
	switch rapid.IntRange(0, 7).Draw(t, "ignore") {
	case 0:
		p.IgnoreValue, p.Value = true, nil
	case 1:
		p.IgnoreLease, p.Lease = true, 0
	}
	return p
}

func genDelete(t *rapid.T) *pb.DeleteRangeRequest {
	return &pb.DeleteRangeRequest{Key: genKey(t, "key"), RangeEnd: []byte(rapid.SampledFrom(smEnds).Draw(t, "end")), PrevKv: rapid.Bool().Draw(t, "prevKV")}
}

func genRange(t *rapid.T, rev int64) *pb.RangeRequest {
	r := &pb.RangeRequest{Key: genKey(t, "key"), RangeEnd: []byte(rapid.SampledFrom(smEnds).Draw(t, "end"))}
	if rapid.IntRange(0, 2).Draw(t, "past") == 0 {
		r.Revision = rapid.Int64Range(-1, rev+1).Draw(t, "revision")
	}
	r.Limit = rapid.Int64Range(0, 3).Draw(t, "limit")
	if rapid.IntRange(0, 2).Draw(t, "sort") == 0 {
		r.SortOrder = pb.RangeRequest_SortOrder(rapid.IntRange(0, 2).Draw(t, "order"))
		r.SortTarget = pb.RangeRequest_SortTarget(rapid.IntRange(0, 4).Draw(t, "target"))
	}
	r.KeysOnly = rapid.IntRange(0, 4).Draw(t, "keysOnly") == 0
	r.CountOnly = rapid.IntRange(0, 4).Draw(t, "countOnly") == 0
	if rapid.IntRange(0, 3).Draw(t, "filter") == 0 {
		r.MinModRevision = rapid.Int64Range(0, rev).Draw(t, "minMod")
		r.MaxModRevision = rapid.Int64Range(0, rev).Draw(t, "maxMod")
		r.MinCreateRevision = rapid.Int64Range(0, rev).Draw(t, "minCreate")
		r.MaxCreateRevision = rapid.Int64Range(0, rev).Draw(t, "maxCreate")
	}
	return r
}

func genCompare(t *rapid.T, rev int64) *pb.Compare {
	c := &pb.Compare{
		Key:    genKey(t, "key"),
		Result: pb.Compare_CompareResult(rapid.IntRange(0, 3).Draw(t, "result")),
		Target: pb.Compare_CompareTarget(rapid.IntRange(0, 4).Draw(t, "target")),
	}
	if rapid.IntRange(0, 3).Draw(t, "ranged") == 0 {
		c.RangeEnd = []byte(rapid.SampledFrom(smEnds).Draw(t, "end"))
	}
	n := rapid.Int64Range(0, rev+1).Draw(t, "n")
	switch c.Target {
	case pb.Compare_VERSION:
		c.TargetUnion = &pb.Compare_Version{Version: n % 4}
	case pb.Compare_CREATE:
		c.TargetUnion = &pb.Compare_CreateRevision{CreateRevision: n}
	case pb.Compare_MOD:
		c.TargetUnion = &pb.Compare_ModRevision{ModRevision: n}
	case pb.Compare_VALUE:
		c.TargetUnion = &pb.Compare_Value{Value: []byte(rapid.SampledFrom(smValues).Draw(t, "value"))}
	case pb.Compare_LEASE:
		c.TargetUnion = &pb.Compare_Lease{Lease: n % 3}
	}
	return c
}

func genOps(t *rapid.T, rev int64, depth int) []*pb.RequestOp {
	n := rapid.IntRange(0, 3).Draw(t, "ops")
	ops := make([]*pb.RequestOp, 0, n)
	for range n {
		kind := rapid.IntRange(0, 3).Draw(t, "op")
		if kind == 3 && depth > 0 {
			kind = 0
		}
		switch kind {
		case 0:
			ops = append(ops, &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: genPut(t)}})
		case 1:
			ops = append(ops, &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: genDelete(t)}})
		case 2:
			ops = append(ops, &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: genRange(t, rev)}})
		case 3:
			ops = append(ops, &pb.RequestOp{Request: &pb.RequestOp_RequestTxn{RequestTxn: genTxn(t, rev, depth+1)}})
		}
	}
	return ops
}

func genTxn(t *rapid.T, rev int64, depth int) *pb.TxnRequest {
	r := &pb.TxnRequest{}
	for range rapid.IntRange(0, 2).Draw(t, "compares") {
		r.Compare = append(r.Compare, genCompare(t, rev))
	}
	r.Success = genOps(t, rev, depth)
	r.Failure = genOps(t, rev, depth)
	return r
}

func (st *smState) actions() map[string]func(*rapid.T) {
	return map[string]func(*rapid.T){
		"put": func(t *rapid.T) {
			p := genPut(t)
			got, err := st.s.Put(p)
			want, werr := (&mtxn{m: st.m}).put(p)
			if werr == nil {
				st.m.rev++
			}
			if !sameErr(err, werr) || !proto.Equal(got, want) {
				t.Fatalf("Put(%v) = %v, %v; want %v, %v", p, got, err, want, werr)
			}
		},
		"delete": func(t *rapid.T) {
			d := genDelete(t)
			got, err := st.s.DeleteRange(d)
			mt := &mtxn{m: st.m}
			want, werr := mt.del(d)
			if mt.changed {
				st.m.rev++
			}
			if !sameErr(err, werr) || !proto.Equal(got, want) {
				t.Fatalf("DeleteRange(%v) = %v, %v; want %v, %v", d, got, err, want, werr)
			}
		},
		"range": func(t *rapid.T) {
			r := genRange(t, st.m.rev)
			got, err := st.s.Range(r)
			want, werr := st.m.rangeResp(r, st.m.rev)
			if !sameErr(err, werr) || !proto.Equal(got, want) {
				t.Fatalf("Range(%v) = %v, %v; want %v, %v", r, got, err, want, werr)
			}
		},
		"txn": func(t *rapid.T) {
			r := genTxn(t, st.m.rev, 0)
			got, err := st.s.Txn(r)
			want, werr := st.m.doTxn(r)
			if !sameErr(err, werr) || !proto.Equal(got, want) {
				t.Fatalf("Txn(%v) = %v, %v; want %v, %v", r, got, err, want, werr)
			}
		},
		"compact": func(t *rapid.T) {
			rev := rapid.Int64Range(0, st.m.rev+1).Draw(t, "rev")
			err := st.s.Compact(rev)
			var werr error
			switch {
			case rev <= st.m.compactRev:
				werr = ErrCompacted
			case rev > st.m.rev:
				werr = ErrFutureRev
			default:
				st.m.compactRev = rev
			}
			if !sameErr(err, werr) {
				t.Fatalf("Compact(%d) = %v, want %v", rev, err, werr)
			}
		},
		"compactStep": func(t *rapid.T) {
			n := rapid.IntRange(1, 5).Draw(t, "steps")
			for range n {
				done, err := st.s.CompactStep()
				if err != nil {
					t.Fatalf("CompactStep: %v", err)
				}
				if done {
					break
				}
			}
		},
		"maybeCommit": func(t *rapid.T) {
			d := time.Duration(rapid.Int64Range(0, int64(2*smInterval)).Draw(t, "advance"))
			st.fc.Advance(d)
			elapsed := st.fc.Now().Sub(st.s.batchStart)
			nonEmpty := st.s.batchN > 0
			if err := st.s.MaybeCommit(); err != nil {
				t.Fatalf("MaybeCommit: %v", err)
			}
			committed := st.s.batchN == 0
			if nonEmpty && committed != (elapsed >= smInterval) {
				t.Fatalf("MaybeCommit after %v committed=%v", elapsed, committed)
			}
			if committed {
				st.markCommitted()
			}
		},
		"commit": func(t *rapid.T) {
			if err := st.s.Commit(); err != nil {
				t.Fatalf("Commit: %v", err)
			}
			st.markCommitted()
		},
		"reopen": func(t *rapid.T) {
			h, _, _, err := st.s.HashKV(0)
			if err != nil {
				t.Fatalf("HashKV: %v", err)
			}
			if err := st.s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			st.open()
			if h2, _, _, err := st.s.HashKV(0); err != nil || h2 != h {
				t.Fatalf("HashKV after reopen = %d, %v; want %d", h2, err, h)
			}
			st.markCommitted()
		},
		"crash": func(t *rapid.T) {
			if err := st.s.Abandon(); err != nil {
				t.Fatalf("Abandon: %v", err)
			}
			st.open()
			st.m = st.committed.clone()
			if h, _, _, err := st.s.HashKV(0); err != nil || h != st.committedHash {
				t.Fatalf("HashKV after crash = %d, %v; want %d (last commit)", h, err, st.committedHash)
			}
		},
		"defrag": func(t *rapid.T) {
			if err := st.s.Defrag(nil); err != nil {
				t.Fatalf("Defrag: %v", err)
			}
			st.markCommitted()
		},
		"snapshotReplace": func(t *rapid.T) {
			var buf bytes.Buffer
			if _, err := st.s.Snapshot(&buf); err != nil {
				t.Fatalf("Snapshot: %v", err)
			}
			if err := st.s.ReplaceDB(&buf); err != nil {
				t.Fatalf("ReplaceDB: %v", err)
			}
			st.markCommitted()
		},
		"": func(t *rapid.T) {
			if got := st.s.Rev(); got != st.m.rev {
				t.Fatalf("Rev() = %d, want %d", got, st.m.rev)
			}
			if got := st.s.CompactRev(); got != st.m.compactRev {
				t.Fatalf("CompactRev() = %d, want %d", got, st.m.compactRev)
			}
			all := &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}}
			got, err := st.s.Range(all)
			want, _ := st.m.rangeResp(all, st.m.rev)
			if err != nil || !proto.Equal(got, want) {
				t.Fatalf("all keys = %v, %v; want %v", got, err, want)
			}
		},
	}
}

func TestStoreMatchesModel(t *testing.T) {
	dir := t.TempDir()
	n := 0
	rapid.Check(t, func(rt *rapid.T) {
		n++
		fc := clock.NewFake(time.Unix(1000, 0))
		st := &smState{
			t:   rt,
			cfg: Config{Path: filepath.Join(dir, fmt.Sprintf("db%d", n)), NoSync: true, Clock: fc, BatchInterval: smInterval, BatchLimit: 1 << 30, CompactionBatchLimit: rapid.IntRange(1, 4).Draw(rt, "compactionBatch")},
			fc:  fc,
			m:   newModel(),
		}
		st.open()
		defer func() { _ = st.s.Close() }()
		st.markCommitted()
		rt.Repeat(st.actions())
	})
}
