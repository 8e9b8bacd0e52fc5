package lease

import (
	"testing"
	"time"

	"github.com/cairnkv/cairn/clock"
)

const benchLeases = 100_000

// BenchmarkGrant100k grants 100k leases with a key each on a primary;
// ns/op is per lease.
func BenchmarkGrant100k(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		clk := clock.NewFake(t0)
		l := newTestLessor(b, clk, newMemBackend())
		l.Promote(0)
		b.StartTimer()
		for id := int64(1); id <= benchLeases; id++ {
			if _, err := l.Grant(id, 10+id%1000); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchLeases), "ns/lease")
}

// BenchmarkExpired100k measures draining 100k expired leases in batches of
// RevokesPerTick(DefaultRevokeRate, 100ms) and revoking them, as the
// leader's tick loop does.
func BenchmarkExpired100k(b *testing.B) {
	batch := RevokesPerTick(DefaultRevokeRate, 100*time.Millisecond)
	for b.Loop() {
		b.StopTimer()
		clk := clock.NewFake(t0)
		l := newTestLessor(b, clk, newMemBackend())
		l.Promote(0)
		for id := int64(1); id <= benchLeases; id++ {
			if _, err := l.Grant(id, 10+id%1000); err != nil {
				b.Fatal(err)
			}
			if err := l.Attach(id, []byte{byte(id), byte(id >> 8), byte(id >> 16)}); err != nil {
				b.Fatal(err)
			}
		}
		clk.Advance(2000 * time.Second)
		b.StartTimer()
		n := 0
		for {
			ids := l.Expired(batch)
			if len(ids) == 0 {
				break
			}
			for _, id := range ids {
				if _, err := l.Revoke(id); err != nil {
					b.Fatal(err)
				}
			}
			n += len(ids)
		}
		if n != benchLeases {
			b.Fatalf("expired %d leases, want %d", n, benchLeases)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchLeases), "ns/lease")
}

// BenchmarkExpiredNoneDue is the per-tick cost on a leader with 100k
// leases and nothing due.
func BenchmarkExpiredNoneDue(b *testing.B) {
	clk := clock.NewFake(t0)
	l := newTestLessor(b, clk, newMemBackend())
	l.Promote(0)
	for id := int64(1); id <= benchLeases; id++ {
		if _, err := l.Grant(id, 10+id%1000); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		if ids := l.Expired(100); len(ids) != 0 {
			b.Fatal(ids)
		}
	}
}
