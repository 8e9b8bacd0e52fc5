package etcdcompat

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// kv is a key as a read returns it.
type kv struct {
	Key, Value                                  string
	CreateRevision, ModRevision, Version, Lease int64
}

// hash is a HashKV answer.
type hash struct {
	Hash                          uint32
	HashRevision, CompactRevision int64
}

// lease is a lease as TimeToLive shows it, less its remaining TTL (which
// runs down, and which a restarted or restored lessor renews).
type lease struct {
	ID, GrantedTTL int64
	Keys           []string
}

// state is what a client sees of a member's keyspace: every key at every
// revision it can still read, HashKV at each of them, and the leases.
type state struct {
	Revision, CompactRevision int64
	// Reads holds every key at each revision from CompactRevision (or 1)
	// to Revision.
	Reads map[int64][]kv
	// Hashes holds HashKV at the same revisions, and at 0 (the latest).
	Hashes map[int64]hash
	Leases []lease
}

// capture reads s's state, checking on the way that reads below the
// compacted revision fail as compacted and reads past the current one as
// future revisions.
func capture(t *testing.T, s *server) state {
	t.Helper()
	ctx := opCtx(t)
	st := state{Reads: map[int64][]kv{}, Hashes: map[int64]hash{}}
	resp, err := s.cli.Get(ctx, "", clientv3.WithPrefix())
	if err != nil {
		t.Fatalf("%s: read: %v", s, err)
	}
	st.Revision = resp.Header.Revision
	st.Hashes[0] = hashKV(t, s, 0)
	st.CompactRevision = st.Hashes[0].CompactRevision
	for r := max(st.CompactRevision, 1); r <= st.Revision; r++ {
		resp, err := s.cli.Get(ctx, "", clientv3.WithPrefix(), clientv3.WithRev(r))
		if err != nil {
			t.Fatalf("%s: read at revision %d (current %d, compacted %d): %v", s, r, st.Revision, st.CompactRevision, err)
		}
		st.Reads[r] = kvs(resp.Kvs)
		st.Hashes[r] = hashKV(t, s, r)
	}
	if r := st.CompactRevision - 1; r >= 1 {
		if _, err := s.cli.Get(ctx, "", clientv3.WithPrefix(), clientv3.WithRev(r)); !errors.Is(err, rpctypes.ErrCompacted) {
			t.Errorf("%s: read at revision %d, below the compacted %d: got error %v, want %v", s, r, st.CompactRevision, err, rpctypes.ErrCompacted)
		}
		if _, err := s.cli.HashKV(ctx, s.ClientURL, r); !errors.Is(err, rpctypes.ErrCompacted) {
			t.Errorf("%s: HashKV at revision %d, below the compacted %d: got error %v, want %v", s, r, st.CompactRevision, err, rpctypes.ErrCompacted)
		}
	}
	if _, err := s.cli.Get(ctx, "", clientv3.WithPrefix(), clientv3.WithRev(st.Revision+1)); !errors.Is(err, rpctypes.ErrFutureRev) {
		t.Errorf("%s: read at revision %d, past the current %d: got error %v, want %v", s, st.Revision+1, st.Revision, err, rpctypes.ErrFutureRev)
	}

	leases, err := s.cli.Leases(ctx)
	if err != nil {
		t.Fatalf("%s: lease list: %v", s, err)
	}
	for _, l := range leases.Leases {
		ttl, err := s.cli.TimeToLive(ctx, l.ID, clientv3.WithAttachedKeys())
		if err != nil {
			t.Fatalf("%s: time to live of lease %x: %v", s, l.ID, err)
		}
		if ttl.TTL <= 0 || ttl.TTL > ttl.GrantedTTL {
			t.Errorf("%s: lease %x has %d s to live of %d granted", s, l.ID, ttl.TTL, ttl.GrantedTTL)
		}
		keys := []string{}
		for _, k := range ttl.Keys {
			keys = append(keys, string(k))
		}
		sort.Strings(keys)
		st.Leases = append(st.Leases, lease{ID: int64(ttl.ID), GrantedTTL: ttl.GrantedTTL, Keys: keys})
	}
	sort.Slice(st.Leases, func(i, j int) bool { return st.Leases[i].ID < st.Leases[j].ID })
	return st
}

func kvs(in []*mvccpb.KeyValue) []kv {
	out := []kv{}
	for _, k := range in {
		out = append(out, kv{
			Key: string(k.Key), Value: string(k.Value),
			CreateRevision: k.CreateRevision, ModRevision: k.ModRevision, Version: k.Version, Lease: k.Lease,
		})
	}
	return out
}

func hashKV(t *testing.T, s *server, rev int64) hash {
	t.Helper()
	resp, err := s.cli.HashKV(opCtx(t), s.ClientURL, rev)
	if err != nil {
		t.Fatalf("%s: HashKV at revision %d: %v", s, rev, err)
	}
	return hash{Hash: resp.Hash, HashRevision: resp.HashRevision, CompactRevision: resp.CompactRevision}
}

// compareStates fails the test if got (read from gotFrom) differs from
// want (read from wantFrom), saying where. HashKV is not compared at the
// revisions skipHashAt.
func compareStates(t *testing.T, wantFrom, gotFrom *server, want, got state, skipHashAt ...int64) {
	t.Helper()
	var diffs []string
	add := func(format string, args ...any) { diffs = append(diffs, fmt.Sprintf(format, args...)) }
	if want.Revision != got.Revision {
		add("revision: %s %d, %s %d", wantFrom, want.Revision, gotFrom, got.Revision)
	}
	if want.CompactRevision != got.CompactRevision {
		add("compacted revision: %s %d, %s %d", wantFrom, want.CompactRevision, gotFrom, got.CompactRevision)
	}
	for _, r := range revisions(want.Reads, got.Reads) {
		if d := cmp.Diff(want.Reads[r], got.Reads[r]); d != "" {
			add("keys at revision %d (-%s +%s):\n%s", r, wantFrom, gotFrom, d)
		}
	}
	// Answers that differ only in their compact_revision are told once
	// for each pair of compact_revisions.
	type compactPair struct{ want, got int64 }
	var pairs []compactPair
	onlyCompact := map[compactPair][]int64{}
	for _, r := range revisions(want.Hashes, got.Hashes) {
		w, wok := want.Hashes[r]
		g, gok := got.Hashes[r]
		switch {
		case slices.Contains(skipHashAt, r) || (w == g && wok == gok):
		case wok && gok && w.Hash == g.Hash && w.HashRevision == g.HashRevision:
			p := compactPair{w.CompactRevision, g.CompactRevision}
			if onlyCompact[p] == nil {
				pairs = append(pairs, p)
			}
			onlyCompact[p] = append(onlyCompact[p], r)
		default:
			add("HashKV at revision %d: %s %+v, %s %+v", r, wantFrom, w, gotFrom, g)
		}
	}
	for _, p := range pairs {
		add("HashKV at revisions %v (0: the latest): the same hashes, but compact_revision %d from %s, %d from %s",
			onlyCompact[p], p.want, wantFrom, p.got, gotFrom)
	}
	if d := cmp.Diff(want.Leases, got.Leases); d != "" {
		add("leases (-%s +%s):\n%s", wantFrom, gotFrom, d)
	}
	if len(diffs) > 0 {
		t.Errorf("%s differs from %s:\n%s", gotFrom, wantFrom, strings.Join(diffs, "\n"))
	}
}

// revisions returns the keys of a and b, in order.
func revisions[V any](a, b map[int64]V) []int64 {
	set := map[int64]bool{}
	for r := range a {
		set[r] = true
	}
	for r := range b {
		set[r] = true
	}
	var out []int64
	for r := range set {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// checkSnapshotFile checks the snapshot file snap, saved from a member in
// state want, with etcdutl (on copies of it: etcdutl opens the file it is
// given for writing, and changes it): snapshot status gives want's
// revision and the storage version (3.7.0), and hashkv the member's HashKV.
func checkSnapshotFile(t *testing.T, snap string, want state) {
	t.Helper()
	var status struct {
		Hash      uint32 `json:"hash"`
		Revision  int64  `json:"revision"`
		TotalKey  int    `json:"totalKey"`
		TotalSize int64  `json:"totalSize"`
		Version   string `json:"version"`
	}
	out := etcdutl(t, "snapshot", "status", copyFile(t, snap), "-w", "json")
	if err := json.Unmarshal(out, &status); err != nil {
		t.Fatalf("etcdutl snapshot status: %v: %s", err, out)
	}
	if status.Revision != want.Revision || status.Version != storageVersion {
		t.Errorf("etcdutl snapshot status: %s; want revision %d and version %s", out, want.Revision, storageVersion)
	}
	var h struct {
		Hash            uint32 `json:"hash"`
		HashRevision    int64  `json:"hashRevision"`
		CompactRevision int64  `json:"compactRevision"`
	}
	out = etcdutl(t, "hashkv", copyFile(t, snap), "-w", "json")
	if err := json.Unmarshal(out, &h); err != nil {
		t.Fatalf("etcdutl hashkv: %v: %s", err, out)
	}
	if got := (hash{Hash: h.Hash, HashRevision: h.HashRevision, CompactRevision: h.CompactRevision}); got != want.Hashes[0] {
		t.Errorf("etcdutl hashkv: %+v; the member's HashKV was %+v", got, want.Hashes[0])
	}
}
