package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cairnkv/cairn/linearizability"
)

// Verdicts of a check.
const (
	Pass = "PASS"
	Fail = "FAIL"
	Skip = "SKIP"
)

// Check is the verdict of one end-of-run check.
type Check struct {
	Name, Verdict, Detail string
}

func pass(name, format string, args ...any) Check {
	return Check{Name: name, Verdict: Pass, Detail: fmt.Sprintf(format, args...)}
}

func fail(name, format string, args ...any) Check {
	return Check{Name: name, Verdict: Fail, Detail: fmt.Sprintf(format, args...)}
}

// waitServing waits until every member answers a linearizable read and a
// write, and returns how long that took after heal, or an error at the
// deadline.
func waitServing(clis []*clientv3.Client, deadline time.Time) (time.Duration, error) {
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, len(clis))
	for i, cli := range clis {
		wg.Go(func() {
			for {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				_, err := cli.Put(ctx, "chaos/probe", fmt.Sprintf("m%d", i))
				if err == nil {
					_, err = cli.Get(ctx, "chaos/probe")
				}
				cancel()
				if err == nil {
					return
				}
				if time.Now().After(deadline) {
					errs[i] = fmt.Errorf("m%d: %w", i, err)
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	return time.Since(start), errors.Join(errs...)
}

// finalReads reads every key on every member with linearizable reads,
// recording them in the history so that a lost acknowledged write shows up
// as a linearizability violation. It returns the reads that never
// completed before the deadline.
func (w *workload) finalReads(keys []string, deadline time.Time) []string {
	var mu sync.Mutex
	var missing []string
	var wg sync.WaitGroup
	for m, cli := range w.clis {
		wg.Go(func() {
			for _, k := range keys {
				for {
					ctx, cancel := context.WithTimeout(context.Background(), w.opTimeout)
					_, _, ok := w.get(ctx, w.finalClient(m), cli, k)
					cancel()
					if ok {
						break
					}
					if time.Now().After(deadline) {
						mu.Lock()
						missing = append(missing, fmt.Sprintf("%s on m%d", k, m))
						mu.Unlock()
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	slices.Sort(missing)
	return missing
}

// checkLeases checks the lease invariants once the cluster serves again:
// no kept-alive lease vanished while a renewal promised it alive, kept
// leases still renewed hold their key, and every abandoned lease is gone
// together with its key.
func (w *workload) checkLeases(cli *clientv3.Client) []Check {
	w.mu.Lock()
	leases := slices.Clone(w.leases)
	w.mu.Unlock()
	var keptProblems, abandonedProblems []string
	kept, keptChecked, lapsed, abandoned := 0, 0, 0, 0
	for _, l := range leases {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		switch l.kind {
		case leaseKept:
			kept++
			l.mu.Lock()
			violation, gone, last := l.violation, l.gone, l.lastRenew
			l.mu.Unlock()
			if violation != "" {
				keptProblems = append(keptProblems, violation)
				break
			}
			sent := time.Now()
			if gone || last.IsZero() || !sent.Before(last.Add(l.ttl-expiryMargin)) {
				lapsed++ // renewals failed long enough for it to expire
				break
			}
			keptChecked++
			ttl, err := cli.TimeToLive(ctx, clientv3.LeaseID(l.id))
			if err != nil {
				keptProblems = append(keptProblems, fmt.Sprintf("lease %x: TimeToLive: %v", l.id, err))
				break
			}
			if ttl.TTL <= 0 {
				keptProblems = append(keptProblems, fmt.Sprintf("kept lease %x is gone (TTL %d) though renewed at %s", l.id, ttl.TTL, fmtDur(last.Sub(w.start))))
			}
		case leaseAbandoned:
			abandoned++
			ttl, err := cli.TimeToLive(ctx, clientv3.LeaseID(l.id))
			if err != nil {
				abandonedProblems = append(abandonedProblems, fmt.Sprintf("lease %x: TimeToLive: %v", l.id, err))
				break
			}
			if ttl.TTL != -1 {
				abandonedProblems = append(abandonedProblems, fmt.Sprintf("abandoned lease %x (ttl %s, granted at %s) still has TTL %d", l.id, l.ttl, fmtDur(l.grantCall.Sub(w.start)), ttl.TTL))
			}
			resp, err := cli.Get(ctx, l.key)
			switch {
			case err != nil:
				abandonedProblems = append(abandonedProblems, fmt.Sprintf("get %s: %v", l.key, err))
			case len(resp.Kvs) != 0:
				abandonedProblems = append(abandonedProblems, fmt.Sprintf("key %s of abandoned lease %x is still there (lease %x)", l.key, l.id, resp.Kvs[0].Lease))
			}
		}
		cancel()
	}
	out := []Check{}
	if len(keptProblems) > 0 {
		out = append(out, fail("leases-kept-alive", "%d problems: %s", len(keptProblems), strings.Join(first(keptProblems, 3), "; ")))
	} else {
		out = append(out, pass("leases-kept-alive", "%d kept leases: %d alive as promised, %d lapsed during faults", kept, keptChecked, lapsed))
	}
	if len(abandonedProblems) > 0 {
		out = append(out, fail("leases-expired", "%d problems: %s", len(abandonedProblems), strings.Join(first(abandonedProblems, 3), "; ")))
	} else {
		out = append(out, pass("leases-expired", "%d abandoned leases gone with their keys", abandoned))
	}
	return out
}

func first(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], fmt.Sprintf("and %d more", len(s)-n))
	}
	return s
}

// checkConvergence waits until every member reports the same revision and
// then compares their HashKV at that revision.
// It also returns that revision (0 if they never agreed).
func checkConvergence(clis []*clientv3.Client, urls []string, deadline time.Time) (Check, int64) {
	var last string
	for {
		revs := make([]int64, len(clis))
		var err error
		for i, cli := range clis {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			st, e := cli.Status(ctx, urls[i])
			cancel()
			if e != nil {
				err = fmt.Errorf("status of m%d: %w", i, e)
				break
			}
			revs[i] = st.Header.Revision
		}
		switch {
		case err != nil:
			last = err.Error()
		case slices.Min(revs) != slices.Max(revs):
			last = fmt.Sprintf("revisions differ: %v", revs)
		default:
			rev := revs[0]
			hashes := make([]uint32, len(clis))
			for i, cli := range clis {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				h, e := cli.HashKV(ctx, urls[i], rev)
				cancel()
				if e != nil {
					err = fmt.Errorf("HashKV of m%d at %d: %w", i, rev, e)
					break
				}
				hashes[i] = h.Hash
			}
			if err != nil {
				last = err.Error()
				break
			}
			if slices.Min(hashes) == slices.Max(hashes) {
				return pass("converged", "every member at revision %d with HashKV %08x", rev, hashes[0]), rev
			}
			parts := make([]string, len(hashes))
			for i, h := range hashes {
				parts[i] = fmt.Sprintf("m%d=%08x", i, h)
			}
			return fail("converged", "members diverged: HashKV at revision %d: %s", rev, strings.Join(parts, " ")), rev
		}
		if time.Now().After(deadline) {
			return fail("converged", "members did not catch up: %s", last), 0
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkLinearizable checks the history with the lease model (single-key
// ops and leases, partitioned by the keys and leases ops connect), saves
// it, and writes the visualisation when it is not linearizable.
func checkLinearizable(h []porcupine.Operation, dir string, timeout time.Duration) Check {
	histPath := filepath.Join(dir, "history.jsonl")
	if err := linearizability.SaveHistory(histPath, h); err != nil {
		return fail("linearizable", "%v", err)
	}
	m := linearizability.LeaseModel()
	res, err := linearizability.Check(m, h, timeout)
	if err != nil {
		return fail("linearizable", "%v", err)
	}
	switch res.Outcome {
	case porcupine.Ok:
		return pass("linearizable", "%d operations", len(h))
	case porcupine.Unknown:
		return fail("linearizable", "no verdict within %v on %d operations (history in %s)", timeout, len(h), histPath)
	}
	viz := filepath.Join(dir, "history.html")
	if err := linearizability.WriteVisualization(viz, m, res); err != nil {
		return fail("linearizable", "NOT linearizable (%d operations); %v", len(h), err)
	}
	return fail("linearizable", "NOT linearizable (%d operations): see %s", len(h), viz)
}

// watchAvailable reports whether the member serves the Watch API.
func watchAvailable(cli *clientv3.Client) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stream, err := pb.NewWatchClient(cli.ActiveConnection()).Watch(ctx)
	if err == nil {
		err = stream.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: &pb.WatchCreateRequest{Key: []byte("chaos/probe")}}})
		// io.EOF from Send means the server already ended the stream:
		// Recv has its status.
		if err == nil || errors.Is(err, io.EOF) {
			_, err = stream.Recv()
		}
	}
	if status.Code(err) == codes.Unimplemented {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, nil
}
