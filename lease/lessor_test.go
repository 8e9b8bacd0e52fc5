package lease

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/clock"
)

// memBackend is an in-memory Backend: bucket -> key -> value.
type memBackend struct {
	buckets map[string]map[string][]byte
}

func newMemBackend() *memBackend { return &memBackend{buckets: map[string]map[string][]byte{}} }

func (m *memBackend) AuxPut(bucket, key, value []byte) {
	b := m.buckets[string(bucket)]
	if b == nil {
		b = map[string][]byte{}
		m.buckets[string(bucket)] = b
	}
	b[string(key)] = bytes.Clone(value)
}

func (m *memBackend) AuxDelete(bucket, key []byte) { delete(m.buckets[string(bucket)], string(key)) }

func (m *memBackend) AuxForEach(bucket []byte, fn func(k, v []byte) error) error {
	b := m.buckets[string(bucket)]
	keys := make([]string, 0, len(b))
	for k := range b {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := fn([]byte(k), b[k]); err != nil {
			return err
		}
	}
	return nil
}

// dump renders the backend's lease bucket, for comparing members.
func (m *memBackend) dump() string {
	var sb strings.Builder
	m.AuxForEach([]byte(BucketName), func(k, v []byte) error {
		fmt.Fprintf(&sb, "%x=%x\n", k, v)
		return nil
	})
	return sb.String()
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

const testInterval = 60 * time.Second

func newTestLessor(t testing.TB, clk *clock.Fake, b Backend) *Lessor {
	t.Helper()
	l, err := New(Config{Clock: clk, MinTTL: 2, CheckpointInterval: testInterval}, b)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return l
}

func mustGrant(t testing.TB, l *Lessor, id, ttl int64) {
	t.Helper()
	if _, err := l.Grant(id, ttl); err != nil {
		t.Fatalf("Grant(%d, %d): %v", id, ttl, err)
	}
}

func wantExpired(t *testing.T, l *Lessor, max int, want ...int64) {
	t.Helper()
	got := l.Expired(max)
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Expired(%d) = %v, want %v", max, got, want)
	}
}

// revokeExpired expects Expired(max) to return want and revokes them, as
// the node does once their revoke proposals apply.
func revokeExpired(t *testing.T, l *Lessor, max int, want ...int64) {
	t.Helper()
	wantExpired(t, l, max, want...)
	for _, id := range want {
		if _, err := l.Revoke(id); err != nil {
			t.Fatalf("Revoke(%d): %v", id, err)
		}
	}
}

func strs(keys [][]byte) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = string(k)
	}
	return out
}

func TestGrantClampsTTLAndRejectsBadRequests(t *testing.T) {
	l := newTestLessor(t, clock.NewFake(t0), newMemBackend())
	tests := []struct {
		id, ttl int64
		wantTTL int64
		wantErr error
	}{
		{id: 1, ttl: 10, wantTTL: 10},
		{id: 2, ttl: 1, wantTTL: 2},
		{id: 3, ttl: 0, wantTTL: 2},
		{id: 4, ttl: -5, wantTTL: 2},
		{id: 5, ttl: MaxLeaseTTL, wantTTL: MaxLeaseTTL},
		{id: 6, ttl: MaxLeaseTTL + 1, wantErr: ErrLeaseTTLTooLarge},
		{id: 1, ttl: 30, wantErr: ErrLeaseExists},
		{id: 0, ttl: 30, wantErr: ErrLeaseNotFound},
		{id: -7, ttl: 3, wantTTL: 3},
	}
	for _, tt := range tests {
		got, err := l.Grant(tt.id, tt.ttl)
		if !errors.Is(err, tt.wantErr) {
			t.Fatalf("Grant(%d, %d) error = %v, want %v", tt.id, tt.ttl, err, tt.wantErr)
		}
		if tt.wantErr != nil {
			continue
		}
		if want := (&Lease{ID: tt.id, TTL: tt.wantTTL}); !reflect.DeepEqual(got, want) {
			t.Fatalf("Grant(%d, %d) = %+v, want %+v", tt.id, tt.ttl, got, want)
		}
	}
	// Failed grants changed nothing: lease 1 keeps TTL 10, 6 does not exist.
	if got, _ := l.Lookup(1); got.TTL != 10 {
		t.Fatalf("lease 1 TTL = %d after a refused re-grant, want 10", got.TTL)
	}
	if _, ok := l.Lookup(6); ok {
		t.Fatal("lease 6 exists after ErrLeaseTTLTooLarge")
	}
	var ids []int64
	for _, le := range l.Leases() {
		ids = append(ids, le.ID)
	}
	if want := []int64{-7, 1, 2, 3, 4, 5}; !reflect.DeepEqual(ids, want) {
		t.Fatalf("Leases IDs = %v, want %v", ids, want)
	}
}

func TestRevokeReturnsSortedKeysAndDetachesThem(t *testing.T) {
	l := newTestLessor(t, clock.NewFake(t0), newMemBackend())
	mustGrant(t, l, 1, 10)
	mustGrant(t, l, 2, 10)
	for _, k := range []string{"zeta", "alpha", "mid", "alpha", "b\x00", "b"} {
		if err := l.Attach(1, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Attach(2, []byte("other")); err != nil {
		t.Fatal(err)
	}
	l.Detach(1, []byte("mid"))
	l.Detach(2, []byte("zeta")) // attached to 1, not 2: no effect
	keys, err := l.Revoke(1)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"alpha", "b", "b\x00", "zeta"}; !reflect.DeepEqual(strs(keys), want) {
		t.Fatalf("Revoke keys = %q, want %q", strs(keys), want)
	}
	if _, ok := l.Lookup(1); ok {
		t.Fatal("lease 1 still exists after Revoke")
	}
	if _, err := l.Revoke(1); !errors.Is(err, ErrLeaseNotFound) {
		t.Fatalf("second Revoke error = %v, want ErrLeaseNotFound", err)
	}
	// The revoked lease's keys are free: attaching one to lease 2 and
	// revoking 2 returns it once.
	if err := l.Attach(2, []byte("alpha")); err != nil {
		t.Fatal(err)
	}
	keys, err = l.Revoke(2)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"alpha", "other"}; !reflect.DeepEqual(strs(keys), want) {
		t.Fatalf("Revoke(2) keys = %q, want %q", strs(keys), want)
	}
}

func TestAttachMovesKeyAndRefusesUnknownLease(t *testing.T) {
	l := newTestLessor(t, clock.NewFake(t0), newMemBackend())
	mustGrant(t, l, 1, 10)
	mustGrant(t, l, 2, 10)
	if err := l.Attach(1, []byte("k")); err != nil {
		t.Fatal(err)
	}
	if err := l.Attach(3, []byte("k")); !errors.Is(err, ErrLeaseNotFound) {
		t.Fatalf("Attach to unknown lease error = %v, want ErrLeaseNotFound", err)
	}
	if _, _, keys, _ := l.TimeToLive(1); !reflect.DeepEqual(strs(keys), []string{"k"}) {
		t.Fatalf("refused Attach moved the key: lease 1 keys = %q", strs(keys))
	}
	if err := l.Attach(2, []byte("k")); err != nil {
		t.Fatal(err)
	}
	if _, _, keys, _ := l.TimeToLive(1); len(keys) != 0 {
		t.Fatalf("lease 1 keys = %q after the key moved to lease 2, want none", strs(keys))
	}
	if _, _, keys, _ := l.TimeToLive(2); !reflect.DeepEqual(strs(keys), []string{"k"}) {
		t.Fatalf("lease 2 keys = %q, want [k]", strs(keys))
	}
	// Detaching from the old lease must not touch the new attachment.
	l.Detach(1, []byte("k"))
	if _, _, keys, _ := l.TimeToLive(2); !reflect.DeepEqual(strs(keys), []string{"k"}) {
		t.Fatalf("lease 2 keys = %q after Detach(1, k), want [k]", strs(keys))
	}
	if err := l.Attach(0, []byte("k")); !errors.Is(err, ErrLeaseNotFound) {
		t.Fatalf("Attach(0) error = %v, want ErrLeaseNotFound", err)
	}
}

func TestExpiredInExpiryOrderThenByID(t *testing.T) {
	clk := clock.NewFake(t0)
	l := newTestLessor(t, clk, newMemBackend())
	l.Promote(0)
	mustGrant(t, l, 50, 30)
	mustGrant(t, l, 40, 10)
	mustGrant(t, l, 30, 20)
	mustGrant(t, l, 20, 10)
	clk.Advance(5 * time.Second)
	mustGrant(t, l, 10, 5) // expires at t0+10s too
	clk.Advance(5*time.Second - 1)
	wantExpired(t, l, 100)
	clk.Advance(1)
	revokeExpired(t, l, 100, 10, 20, 40)
	clk.Advance(20 * time.Second)
	wantExpired(t, l, 100, 30, 50)
}

func TestRenewPushesExpiry(t *testing.T) {
	clk := clock.NewFake(t0)
	l := newTestLessor(t, clk, newMemBackend())
	l.Promote(0)
	mustGrant(t, l, 1, 10)
	mustGrant(t, l, 2, 10)
	clk.Advance(9 * time.Second)
	ttl, err := l.Renew(1)
	if err != nil || ttl != 10 {
		t.Fatalf("Renew(1) = %d, %v; want 10, nil", ttl, err)
	}
	clk.Advance(1 * time.Second)
	revokeExpired(t, l, 10, 2)
	if _, rem, _, _ := l.TimeToLive(1); rem != 9 {
		t.Fatalf("remaining TTL of renewed lease = %d, want 9", rem)
	}
	clk.Advance(9*time.Second - 1)
	wantExpired(t, l, 10)
	clk.Advance(1)
	wantExpired(t, l, 10, 1)
	if _, err := l.Renew(3); !errors.Is(err, ErrLeaseNotFound) {
		t.Fatalf("Renew(unknown) error = %v, want ErrLeaseNotFound", err)
	}
}

func TestRenewOfExpiredLeaseIsNotFound(t *testing.T) {
	clk := clock.NewFake(t0)
	l := newTestLessor(t, clk, newMemBackend())
	l.Promote(0)
	mustGrant(t, l, 1, 10)
	clk.Advance(10 * time.Second)
	if _, err := l.Renew(1); !errors.Is(err, ErrLeaseNotFound) {
		t.Fatalf("Renew of an expired lease error = %v, want ErrLeaseNotFound", err)
	}
	// The refused renew did not rescue it.
	wantExpired(t, l, 10, 1)
}

func TestFollowerNeverExpires(t *testing.T) {
	clk := clock.NewFake(t0)
	l := newTestLessor(t, clk, newMemBackend())
	mustGrant(t, l, 1, 2)
	mustGrant(t, l, 2, 600)
	if err := l.Checkpoint(2, 300); err != nil {
		t.Fatal(err)
	}
	clk.Advance(1000 * time.Hour)
	wantExpired(t, l, 10)
	if l.IsPrimary() {
		t.Fatal("new Lessor is primary")
	}
	if cps := l.DueCheckpoints(10); len(cps) != 0 {
		t.Fatalf("follower DueCheckpoints = %v, want none", cps)
	}
	if _, err := l.Renew(1); !errors.Is(err, ErrNotPrimary) {
		t.Fatalf("follower Renew error = %v, want ErrNotPrimary", err)
	}
	for _, tc := range []struct{ id, granted, remaining int64 }{{1, 2, 2}, {2, 600, 300}} {
		g, r, _, err := l.TimeToLive(tc.id)
		if err != nil || g != tc.granted || r != tc.remaining {
			t.Fatalf("follower TimeToLive(%d) = %d, %d, %v; want %d, %d", tc.id, g, r, err, tc.granted, tc.remaining)
		}
	}
}

func TestDemoteStopsExpiriesAndRenewals(t *testing.T) {
	clk := clock.NewFake(t0)
	l := newTestLessor(t, clk, newMemBackend())
	l.Promote(0)
	mustGrant(t, l, 1, 10)
	mustGrant(t, l, 2, 600)
	l.Demote()
	if l.IsPrimary() {
		t.Fatal("IsPrimary after Demote")
	}
	clk.Advance(time.Hour)
	wantExpired(t, l, 10)
	if cps := l.DueCheckpoints(10); len(cps) != 0 {
		t.Fatalf("demoted DueCheckpoints = %v, want none", cps)
	}
	if _, err := l.Renew(1); !errors.Is(err, ErrNotPrimary) {
		t.Fatalf("demoted Renew error = %v, want ErrNotPrimary", err)
	}
	// A grant while demoted gets no expiry either.
	mustGrant(t, l, 3, 2)
	clk.Advance(time.Hour)
	wantExpired(t, l, 10)
	// Promoted again: every lease restarts its full TTL from now.
	l.Promote(time.Second)
	clk.Advance(11*time.Second - 1)
	wantExpired(t, l, 10, 3)
	clk.Advance(1)
	wantExpired(t, l, 10, 1)
}

func TestExpiredRespectsMaxAndRetryInterval(t *testing.T) {
	clk := clock.NewFake(t0)
	l := newTestLessor(t, clk, newMemBackend())
	l.Promote(0)
	for id := int64(1); id <= 5; id++ {
		mustGrant(t, l, id, 10)
	}
	clk.Advance(10 * time.Second)
	wantExpired(t, l, 2, 1, 2)
	wantExpired(t, l, 2, 3, 4)
	wantExpired(t, l, 2, 5)
	wantExpired(t, l, 2)
	wantExpired(t, l, 0)
	// Lease 3's revoke applied; the others' proposals were lost.
	if _, err := l.Revoke(3); err != nil {
		t.Fatal(err)
	}
	clk.Advance(ExpiredRetryInterval - 1)
	wantExpired(t, l, 10)
	clk.Advance(1)
	wantExpired(t, l, 10, 1, 2, 4, 5)
	wantExpired(t, l, 10)
}

// TestPromoteRestartsFromCheckpoint follows a lease across a leader
// change: the new leader neither cuts it nor extends it by more than a
// checkpoint interval plus the promotion's extension.
func TestPromoteRestartsFromCheckpoint(t *testing.T) {
	clk := clock.NewFake(t0)
	ba, bb := newMemBackend(), newMemBackend()
	a, b := newTestLessor(t, clk, ba), newTestLessor(t, clk, bb)
	a.Promote(0)
	both := func(f func(l *Lessor) error) {
		t.Helper()
		for _, l := range []*Lessor{a, b} {
			if err := f(l); err != nil {
				t.Fatal(err)
			}
		}
	}
	both(func(l *Lessor) error { _, err := l.Grant(1, 600); return err }) // checkpointed
	both(func(l *Lessor) error { _, err := l.Grant(2, 30); return err })  // too short to checkpoint

	clk.Advance(testInterval - 1)
	if cps := a.DueCheckpoints(10); len(cps) != 0 {
		t.Fatalf("DueCheckpoints before the interval = %v, want none", cps)
	}
	clk.Advance(1)
	cps := a.DueCheckpoints(10)
	if want := []Checkpoint{{ID: 1, Remaining: 540}}; !reflect.DeepEqual(cps, want) {
		t.Fatalf("DueCheckpoints = %v, want %v", cps, want)
	}
	both(func(l *Lessor) error { return l.Checkpoint(1, 540) })
	if ba.dump() != bb.dump() {
		t.Fatalf("members persisted different leases:\n%s\nvs\n%s", ba.dump(), bb.dump())
	}

	// Leader change 10 s after the checkpoint.
	clk.Advance(10 * time.Second)
	a.Demote()
	const extend = 1500 * time.Millisecond
	b.Promote(extend)
	promotedAt := clk.Now()
	// Lease 1 was due at t0+600s on a; b expires it at promotion+540s+extend,
	// which is t0+611.5s: later than a would have, by the 10 s since
	// the checkpoint plus extend.
	// Lease 2 restarts from its TTL: promotion+30s+extend.
	clk.Set(promotedAt.Add(30*time.Second + extend - 1))
	wantExpired(t, b, 10)
	clk.Set(promotedAt.Add(30*time.Second + extend))
	revokeExpired(t, b, 10, 2)
	clk.Set(promotedAt.Add(540*time.Second + extend - 1))
	wantExpired(t, b, 10)
	due := clk.Now().Add(1)
	if orig := t0.Add(600 * time.Second); due.Before(orig) || due.After(orig.Add(testInterval+extend)) {
		t.Fatalf("lease 1 due at %v after the leader change; want within [%v, %v]", due, orig, orig.Add(testInterval+extend))
	}
	clk.Set(due)
	wantExpired(t, b, 10, 1)
}

func TestPromoteWithoutCheckpointUsesGrantedTTL(t *testing.T) {
	clk := clock.NewFake(t0)
	l := newTestLessor(t, clk, newMemBackend())
	mustGrant(t, l, 1, 600)
	clk.Advance(time.Hour)
	l.Promote(time.Second)
	clk.Advance(601*time.Second - 1)
	wantExpired(t, l, 10)
	clk.Advance(1)
	wantExpired(t, l, 10, 1)
}

func TestCheckpointsRecurAndRenewClearsThem(t *testing.T) {
	clk := clock.NewFake(t0)
	l := newTestLessor(t, clk, newMemBackend())
	l.Promote(0)
	mustGrant(t, l, 1, 600)
	mustGrant(t, l, 2, 900)
	clk.Advance(testInterval + 500*time.Millisecond)
	// Remaining TTLs are rounded up: 539.5 s -> 540.
	cps := l.DueCheckpoints(1)
	if want := []Checkpoint{{ID: 1, Remaining: 540}}; !reflect.DeepEqual(cps, want) {
		t.Fatalf("DueCheckpoints(1) = %v, want %v", cps, want)
	}
	cps = l.DueCheckpoints(10)
	if want := []Checkpoint{{ID: 2, Remaining: 840}}; !reflect.DeepEqual(cps, want) {
		t.Fatalf("DueCheckpoints(10) = %v, want %v", cps, want)
	}
	if cps := l.DueCheckpoints(10); len(cps) != 0 {
		t.Fatalf("DueCheckpoints again = %v, want none", cps)
	}
	for _, cp := range []Checkpoint{{1, 540}, {2, 840}} {
		if err := l.Checkpoint(cp.ID, cp.Remaining); err != nil {
			t.Fatal(err)
		}
	}
	if le, _ := l.Lookup(1); le.RemainingTTL != 540 {
		t.Fatalf("lease 1 RemainingTTL = %d, want 540", le.RemainingTTL)
	}
	// A renewal makes a clearing checkpoint due at once, until it applies.
	clk.Advance(time.Second)
	if _, err := l.Renew(1); err != nil {
		t.Fatal(err)
	}
	if cps, want := l.DueCheckpoints(10), []Checkpoint{{ID: 1}}; !reflect.DeepEqual(cps, want) {
		t.Fatalf("DueCheckpoints after Renew = %v, want %v", cps, want)
	}
	if err := l.Checkpoint(1, 0); err != nil {
		t.Fatal(err)
	}
	if le, _ := l.Lookup(1); le.RemainingTTL != 0 {
		t.Fatalf("lease 1 RemainingTTL = %d after the clearing checkpoint, want 0", le.RemainingTTL)
	}
	// A renewal of a lease without a checkpoint needs none.
	if _, err := l.Renew(1); err != nil {
		t.Fatal(err)
	}
	if cps := l.DueCheckpoints(10); len(cps) != 0 {
		t.Fatalf("DueCheckpoints = %v, want none", cps)
	}
	// The next periodic checkpoints: one interval after the last one
	// each lease was due (lease 1's clearing one restarted its period).
	clk.Advance(testInterval - time.Second)
	cps = l.DueCheckpoints(10)
	if want := []Checkpoint{{ID: 2, Remaining: 780}}; !reflect.DeepEqual(cps, want) {
		t.Fatalf("periodic DueCheckpoints = %v, want %v", cps, want)
	}
	clk.Advance(time.Second)
	cps = l.DueCheckpoints(10)
	if want := []Checkpoint{{ID: 1, Remaining: 540}}; !reflect.DeepEqual(cps, want) {
		t.Fatalf("periodic DueCheckpoints = %v, want %v", cps, want)
	}
	if err := l.Checkpoint(99, 5); !errors.Is(err, ErrLeaseNotFound) {
		t.Fatalf("Checkpoint(unknown) error = %v, want ErrLeaseNotFound", err)
	}
}

func TestNewRestoresLeasesAndCheckpoints(t *testing.T) {
	clk := clock.NewFake(t0)
	b := newMemBackend()
	l := newTestLessor(t, clk, b)
	mustGrant(t, l, 1, 600)
	mustGrant(t, l, 2, 5)
	mustGrant(t, l, -3, 7)
	mustGrant(t, l, 4, 8)
	if err := l.Checkpoint(1, 321); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Revoke(4); err != nil {
		t.Fatal(err)
	}
	want := []*Lease{{ID: -3, TTL: 7}, {ID: 1, TTL: 600, RemainingTTL: 321}, {ID: 2, TTL: 5}}
	if got := l.Leases(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Leases = %v, want %v", got, want)
	}

	r := newTestLessor(t, clk, b)
	if got := r.Leases(); !reflect.DeepEqual(got, want) {
		t.Fatalf("restored Leases = %v, want %v", got, want)
	}
	r.Promote(0)
	clk.Advance(321*time.Second - 1)
	wantExpired(t, r, 10, 2, -3)
	clk.Advance(1)
	wantExpired(t, r, 10, 1)
}

func TestNewRejectsMalformedRecords(t *testing.T) {
	for name, put := range map[string][2][]byte{
		"short key":        {[]byte{1, 2, 3}, encodeRecord(1, 5, 0)},
		"truncated varint": {leaseKey(1), {0x08, 0x80}},
		"ID not the key's": {leaseKey(1), encodeRecord(2, 5, 0)},
		"not a protobuf":   {leaseKey(1), {0xff, 0xff, 0xff}},
	} {
		b := newMemBackend()
		b.AuxPut([]byte(BucketName), put[0], put[1])
		if _, err := New(Config{}, b); err == nil || !strings.Contains(err.Error(), "lease") {
			t.Errorf("%s: New error = %v, want a malformed-record error", name, err)
		}
	}
}

func TestNewValidatesConfig(t *testing.T) {
	for _, cfg := range []Config{{MinTTL: -1}, {MinTTL: MaxLeaseTTL + 1}, {CheckpointInterval: -time.Second}} {
		if _, err := New(cfg, newMemBackend()); err == nil {
			t.Errorf("New(%+v) succeeded, want an error", cfg)
		}
	}
	if _, err := New(Config{}, nil); err == nil {
		t.Error("New with a nil Backend succeeded")
	}
	l, err := New(Config{}, newMemBackend())
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := l.Grant(1, 1); got.TTL != DefaultMinTTL {
		t.Fatalf("zero Config: TTL 1 granted as %d, want DefaultMinTTL %d", got.TTL, DefaultMinTTL)
	}
}

func TestRebuildAttachments(t *testing.T) {
	l := newTestLessor(t, clock.NewFake(t0), newMemBackend())
	mustGrant(t, l, 1, 10)
	mustGrant(t, l, 2, 10)
	if err := l.Attach(1, []byte("stale")); err != nil {
		t.Fatal(err)
	}
	store := []struct {
		key   string
		lease int64
	}{{"a", 1}, {"b", 0}, {"c", 2}, {"d", 1}, {"e", 99}}
	l.RebuildAttachments(func(fn func([]byte, int64)) {
		for _, kv := range store {
			fn([]byte(kv.key), kv.lease)
		}
	})
	for id, want := range map[int64][]string{1: {"a", "d"}, 2: {"c"}} {
		_, _, keys, err := l.TimeToLive(id)
		if err != nil || !reflect.DeepEqual(strs(keys), want) {
			t.Fatalf("lease %d keys = %q, %v; want %q", id, strs(keys), err, want)
		}
	}
}

func TestTimeToLiveOnPrimary(t *testing.T) {
	clk := clock.NewFake(t0)
	l := newTestLessor(t, clk, newMemBackend())
	l.Promote(0)
	mustGrant(t, l, 1, 10)
	if err := l.Attach(1, []byte("k2")); err != nil {
		t.Fatal(err)
	}
	if err := l.Attach(1, []byte("k1")); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2500 * time.Millisecond)
	g, r, keys, err := l.TimeToLive(1)
	if err != nil || g != 10 || r != 7 || !reflect.DeepEqual(strs(keys), []string{"k1", "k2"}) {
		t.Fatalf("TimeToLive = %d, %d, %q, %v; want 10, 7, [k1 k2]", g, r, strs(keys), err)
	}
	clk.Advance(time.Minute)
	if _, r, _, _ := l.TimeToLive(1); r != 0 {
		t.Fatalf("remaining TTL of an expired lease = %d, want 0", r)
	}
	if _, _, _, err := l.TimeToLive(2); !errors.Is(err, ErrLeaseNotFound) {
		t.Fatalf("TimeToLive(unknown) error = %v, want ErrLeaseNotFound", err)
	}
}

// TestPrimaryAndFollowerPersistTheSameState applies one sequence of
// replicated operations to a primary and a follower whose clocks differ:
// their results and persisted buckets must be identical.
func TestPrimaryAndFollowerPersistTheSameState(t *testing.T) {
	ca, cb := clock.NewFake(t0), clock.NewFake(t0.Add(-time.Hour))
	ba, bb := newMemBackend(), newMemBackend()
	a, b := newTestLessor(t, ca, ba), newTestLessor(t, cb, bb)
	a.Promote(time.Second)
	type result struct {
		lease *Lease
		keys  []string
		err   error
	}
	apply := func(l *Lessor, op int) result {
		id := int64(op%7 + 1)
		switch op % 4 {
		case 0:
			le, err := l.Grant(id, int64(op))
			return result{lease: le, err: err}
		case 1:
			return result{err: l.Attach(id, fmt.Appendf(nil, "k%d", op%5))}
		case 2:
			keys, err := l.Revoke(id)
			return result{keys: strs(keys), err: err}
		default:
			return result{err: l.Checkpoint(id, int64(op))}
		}
	}
	for op := 0; op < 200; op++ {
		ra, rb := apply(a, op), apply(b, op)
		if !reflect.DeepEqual(ra, rb) {
			t.Fatalf("op %d: primary %+v, follower %+v", op, ra, rb)
		}
		ca.Advance(time.Second)
		a.Expired(1) // leader-local: must not change replicated state
	}
	if !reflect.DeepEqual(a.Leases(), b.Leases()) {
		t.Fatalf("Leases differ: %v vs %v", a.Leases(), b.Leases())
	}
	if ba.dump() != bb.dump() {
		t.Fatalf("buckets differ:\n%s\nvs\n%s", ba.dump(), bb.dump())
	}
}

func TestRevokesPerTickAndMinTTLFor(t *testing.T) {
	for _, tc := range []struct {
		rate int
		tick time.Duration
		want int
	}{{1000, 100 * time.Millisecond, 100}, {1000, 500 * time.Millisecond, 500}, {5, 100 * time.Millisecond, 1}, {0, time.Second, 1}} {
		if got := RevokesPerTick(tc.rate, tc.tick); got != tc.want {
			t.Errorf("RevokesPerTick(%d, %v) = %d, want %d", tc.rate, tc.tick, got, tc.want)
		}
	}
	for _, tc := range []struct {
		d    time.Duration
		want int64
	}{{time.Second, 2}, {2 * time.Second, 3}, {10 * time.Second, 15}, {100 * time.Millisecond, 1}} {
		if got := MinTTLFor(tc.d); got != tc.want {
			t.Errorf("MinTTLFor(%v) = %d, want %d", tc.d, got, tc.want)
		}
	}
}

// A lease record is etcd's leasepb.Lease: these are the bytes etcd 3.7.3
// stored for lease 0x390da24a98597914 granted with TTL 300.
func TestLeaseRecordIsEtcds(t *testing.T) {
	const id = 0x390da24a98597914
	etcd := []byte("\x08\x94\xf2\xe5\xc2\xa9\xc9\xe8\x86\x39\x10\xac\x02")
	if got := encodeRecord(id, 300, 0); !bytes.Equal(got, etcd) {
		t.Fatalf("encodeRecord = %x, want etcd's %x", got, etcd)
	}
	gotID, ttl, remaining, err := decodeRecord(leaseKey(id), etcd)
	if err != nil || gotID != id || ttl != 300 || remaining != 0 {
		t.Fatalf("decodeRecord(etcd's) = %x %d %d %v", gotID, ttl, remaining, err)
	}
	withRemaining := encodeRecord(id, 300, 120)
	if _, ttl, remaining, err := decodeRecord(leaseKey(id), withRemaining); err != nil || ttl != 300 || remaining != 120 {
		t.Fatalf("round trip with a remaining TTL: %d %d %v", ttl, remaining, err)
	}
}
