package lease

import (
	"errors"
	"reflect"
	"slices"
	"sort"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/cairnkv/cairn/clock"
)

// modelLease is the reference model's lease: plain fields, linear scans.
type modelLease struct {
	ttl, rem int64
	keys     map[string]bool
	expiry   time.Time // primary only
	due      time.Time // when Expired may return it (expiry, or a retry)
}

// TestLessorMatchesModel drives a Lessor and a deliberately simple model
// (maps, linear scans, sorting) through random replicated and
// leader-local operations, restarts included, and compares every output.
func TestLessorMatchesModel(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		clk := clock.NewFake(t0)
		b := newMemBackend()
		cfg := Config{Clock: clk, MinTTL: 2, CheckpointInterval: time.Hour}
		l, err := New(cfg, b)
		if err != nil {
			rt.Fatal(err)
		}
		leases := map[int64]*modelLease{}
		owner := map[string]int64{}
		primary := false

		genID := rapid.Int64Range(1, 8)
		genKey := rapid.SampledFrom([]string{"a", "b", "c", "d", "e"})
		sortedModelKeys := func(m *modelLease) []string {
			var ks []string
			for k := range m.keys {
				ks = append(ks, k)
			}
			sort.Strings(ks)
			return ks
		}
		rt.Repeat(map[string]func(*rapid.T){
			"grant": func(rt *rapid.T) {
				id, ttl := genID.Draw(rt, "id"), rapid.Int64Range(-1, 20).Draw(rt, "ttl")
				_, err := l.Grant(id, ttl)
				if _, ok := leases[id]; ok {
					if !errors.Is(err, ErrLeaseExists) {
						rt.Fatalf("Grant(%d) of an existing lease: %v", id, err)
					}
					return
				}
				if err != nil {
					rt.Fatalf("Grant(%d, %d): %v", id, ttl, err)
				}
				m := &modelLease{ttl: max(ttl, 2), keys: map[string]bool{}}
				if primary {
					m.expiry = clk.Now().Add(seconds(m.ttl))
					m.due = m.expiry
				}
				leases[id] = m
			},
			"attach": func(rt *rapid.T) {
				id, k := genID.Draw(rt, "id"), genKey.Draw(rt, "key")
				err := l.Attach(id, []byte(k))
				m, ok := leases[id]
				if !ok {
					if !errors.Is(err, ErrLeaseNotFound) {
						rt.Fatalf("Attach to unknown %d: %v", id, err)
					}
					return
				}
				if err != nil {
					rt.Fatal(err)
				}
				if old, ok := owner[k]; ok {
					delete(leases[old].keys, k)
				}
				m.keys[k] = true
				owner[k] = id
			},
			"detach": func(rt *rapid.T) {
				id, k := genID.Draw(rt, "id"), genKey.Draw(rt, "key")
				l.Detach(id, []byte(k))
				if owner[k] == id {
					if m, ok := leases[id]; ok {
						delete(m.keys, k)
						delete(owner, k)
					}
				}
			},
			"revoke": func(rt *rapid.T) {
				id := genID.Draw(rt, "id")
				keys, err := l.Revoke(id)
				m, ok := leases[id]
				if !ok {
					if !errors.Is(err, ErrLeaseNotFound) {
						rt.Fatalf("Revoke unknown %d: %v", id, err)
					}
					return
				}
				if want := sortedModelKeys(m); !slices.Equal(strs(keys), want) && len(want)+len(keys) > 0 {
					rt.Fatalf("Revoke(%d) keys %q, want %q", id, strs(keys), want)
				}
				for k := range m.keys {
					delete(owner, k)
				}
				delete(leases, id)
			},
			"checkpoint": func(rt *rapid.T) {
				id, rem := genID.Draw(rt, "id"), rapid.Int64Range(-1, 20).Draw(rt, "rem")
				err := l.Checkpoint(id, rem)
				m, ok := leases[id]
				if !ok {
					if !errors.Is(err, ErrLeaseNotFound) {
						rt.Fatalf("Checkpoint unknown %d: %v", id, err)
					}
					return
				}
				if err != nil {
					rt.Fatal(err)
				}
				m.rem = max(rem, 0)
			},
			"renew": func(rt *rapid.T) {
				id := genID.Draw(rt, "id")
				ttl, err := l.Renew(id)
				m, ok := leases[id]
				now := clk.Now()
				switch {
				case !primary:
					if !errors.Is(err, ErrNotPrimary) {
						rt.Fatalf("follower Renew: %v", err)
					}
				case !ok || !now.Before(m.expiry):
					if !errors.Is(err, ErrLeaseNotFound) {
						rt.Fatalf("Renew of unknown or expired %d: %v", id, err)
					}
				default:
					if err != nil || ttl != m.ttl {
						rt.Fatalf("Renew(%d) = %d, %v; want %d", id, ttl, err, m.ttl)
					}
					m.expiry = now.Add(seconds(m.ttl))
					m.due = m.expiry
				}
			},
			"advance": func(rt *rapid.T) {
				clk.Advance(time.Duration(rapid.IntRange(0, 10).Draw(rt, "halfSeconds")) * 500 * time.Millisecond)
			},
			"expired": func(rt *rapid.T) {
				n := rapid.IntRange(1, 4).Draw(rt, "max")
				got := l.Expired(n)
				var want []int64
				if primary {
					now := clk.Now()
					for id, m := range leases {
						if !now.Before(m.due) {
							want = append(want, id)
						}
					}
					sort.Slice(want, func(i, j int) bool {
						a, b := leases[want[i]], leases[want[j]]
						if !a.due.Equal(b.due) {
							return a.due.Before(b.due)
						}
						return want[i] < want[j]
					})
					want = want[:min(n, len(want))]
					for _, id := range want {
						leases[id].due = now.Add(ExpiredRetryInterval)
					}
				}
				if len(got)+len(want) > 0 && !reflect.DeepEqual(got, want) {
					rt.Fatalf("Expired(%d) = %v, want %v", n, got, want)
				}
			},
			"promote": func(rt *rapid.T) {
				extend := time.Duration(rapid.IntRange(0, 4).Draw(rt, "extendHalfSeconds")) * 500 * time.Millisecond
				l.Promote(extend)
				primary = true
				now := clk.Now()
				for _, m := range leases {
					base := m.ttl
					if m.rem > 0 {
						base = m.rem
					}
					m.expiry = now.Add(seconds(base)).Add(extend)
					m.due = m.expiry
				}
			},
			"demote": func(rt *rapid.T) {
				l.Demote()
				primary = false
			},
			"restart": func(rt *rapid.T) {
				l, err = New(cfg, b)
				if err != nil {
					rt.Fatal(err)
				}
				l.RebuildAttachments(func(fn func([]byte, int64)) {
					for k, id := range owner {
						fn([]byte(k), id)
					}
				})
				primary = false
			},
			"timeToLive": func(rt *rapid.T) {
				id := genID.Draw(rt, "id")
				g, r, keys, err := l.TimeToLive(id)
				m, ok := leases[id]
				if !ok {
					if !errors.Is(err, ErrLeaseNotFound) {
						rt.Fatalf("TimeToLive unknown %d: %v", id, err)
					}
					return
				}
				wantR := m.ttl
				switch {
				case primary:
					wantR = max(int64(m.expiry.Sub(clk.Now())/time.Second), 0)
				case m.rem > 0:
					wantR = m.rem
				}
				if err != nil || g != m.ttl || r != wantR || (len(keys)+len(m.keys) > 0 && !slices.Equal(strs(keys), sortedModelKeys(m))) {
					rt.Fatalf("TimeToLive(%d) = %d, %d, %q, %v; want %d, %d, %q", id, g, r, strs(keys), err, m.ttl, wantR, sortedModelKeys(m))
				}
			},
			"": func(rt *rapid.T) { // invariant after every action
				var want []*Lease
				for id, m := range leases {
					want = append(want, &Lease{ID: id, TTL: m.ttl, RemainingTTL: m.rem})
				}
				sort.Slice(want, func(i, j int) bool { return want[i].ID < want[j].ID })
				if got := l.Leases(); len(got)+len(want) > 0 && !reflect.DeepEqual(got, want) {
					rt.Fatalf("Leases = %v, want %v", got, want)
				}
				if l.IsPrimary() != primary {
					rt.Fatalf("IsPrimary = %v, want %v", l.IsPrimary(), primary)
				}
			},
		})
	})
}
