package clock

import (
	"context"
	"sync"
	"testing"
	"time"
)

var (
	_ Clock = Real{}
	_ Clock = (*Fake)(nil)
)

// waitLimit bounds every wait of these tests on a real event.
const waitLimit = 10 * time.Second

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func TestFakeAdvancesOnlyWhenTold(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f := NewFake(start)
	if got := f.Now(); !got.Equal(start) {
		t.Fatalf("Now() = %v, want %v", got, start)
	}
	f.Advance(1500 * time.Millisecond)
	if got, want := f.Now(), start.Add(1500*time.Millisecond); !got.Equal(want) {
		t.Fatalf("after Advance: Now() = %v, want %v", got, want)
	}
	if got := f.Since(start); got != 1500*time.Millisecond {
		t.Fatalf("Since(start) = %v, want 1.5s", got)
	}
	var z Fake
	if got := z.Now(); !got.Equal(time.Unix(0, 0).UTC()) {
		t.Fatalf("zero Fake Now() = %v, want epoch", got)
	}
}

func TestRealMovesForward(t *testing.T) {
	var c Clock = Real{}
	a := c.Now()
	b := c.Now()
	if b.Before(a) {
		t.Fatalf("Real clock went backwards: %v then %v", a, b)
	}
	if c.Since(a) < 0 {
		t.Fatalf("Real Since(%v) < 0", a)
	}
}

// recv receives from c or fails after waitLimit of real time.
func recv(t *testing.T, what string, c <-chan time.Time) time.Time {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(waitLimit):
		t.Fatalf("%s: nothing received within %v", what, waitLimit)
		return time.Time{}
	}
}

// fired reports whether c holds a value, receiving it.
func fired(c <-chan time.Time) (time.Time, bool) {
	select {
	case v := <-c:
		return v, true
	default:
		return time.Time{}, false
	}
}

func mustFire(t *testing.T, what string, c <-chan time.Time, want time.Time) {
	t.Helper()
	v, ok := fired(c)
	if !ok {
		t.Fatalf("%s: did not fire", what)
	}
	if !v.Equal(want) {
		t.Fatalf("%s: fired with %v, want %v", what, v, want)
	}
}

func mustNotFire(t *testing.T, what string, c <-chan time.Time) {
	t.Helper()
	if v, ok := fired(c); ok {
		t.Fatalf("%s: fired with %v, want nothing", what, v)
	}
}

func TestRealTimerAndTickerDelegateToPackageTime(t *testing.T) {
	var c Clock = Real{}
	start := time.Now()
	if v := recv(t, "After", c.After(time.Millisecond)); v.Sub(start) < time.Millisecond {
		t.Fatalf("After(1ms) fired after %v", v.Sub(start))
	}
	tm := c.NewTimer(time.Millisecond)
	recv(t, "NewTimer", tm.C())
	if tm.Stop() {
		t.Fatal("Stop of a fired and received timer returned true")
	}
	tm = c.NewTimer(time.Hour)
	if !tm.Stop() {
		t.Fatal("Stop of an armed timer returned false")
	}
	if tm.Reset(time.Millisecond) {
		t.Fatal("Reset of a stopped timer returned true")
	}
	recv(t, "reset timer", tm.C())

	tk := c.NewTicker(time.Millisecond)
	for i := 0; i < 3; i++ {
		recv(t, "ticker", tk.C())
	}
	tk.Reset(time.Hour)
	tk.Stop()
	// Since Go 1.23 no tick sent before Stop is received after it.
	mustNotFire(t, "stopped ticker", tk.C())
}

func TestFakeTimerFiresAtItsDeadline(t *testing.T) {
	f := NewFake(t0)
	tm := f.NewTimer(time.Second)
	mustNotFire(t, "new timer", tm.C())
	f.Advance(999 * time.Millisecond)
	mustNotFire(t, "timer 1ms before its deadline", tm.C())
	f.Advance(time.Millisecond)
	mustFire(t, "timer at its deadline", tm.C(), t0.Add(time.Second))
	if f.Waiters() != 0 {
		t.Fatalf("Waiters() = %d after the timer fired, want 0", f.Waiters())
	}
	f.Advance(time.Hour)
	mustNotFire(t, "fired timer", tm.C())

	// Moved far past the deadline, it still sends its deadline.
	a := f.After(time.Second)
	f.Advance(time.Hour)
	mustFire(t, "After", a, t0.Add(time.Hour+2*time.Second))
}

func TestFakeTimerWithNonPositiveDurationHasFired(t *testing.T) {
	f := NewFake(t0)
	for _, d := range []time.Duration{0, -time.Second} {
		mustFire(t, "NewTimer(<=0)", f.NewTimer(d).C(), t0)
		mustFire(t, "After(<=0)", f.After(d), t0)
	}
	if f.Waiters() != 0 {
		t.Fatalf("Waiters() = %d, want 0", f.Waiters())
	}
}

func TestFakeZeroValueTimers(t *testing.T) {
	var f Fake
	c := f.After(time.Second)
	f.Advance(time.Second)
	mustFire(t, "timer of a zero Fake", c, time.Unix(1, 0).UTC())
}

func TestFakeTimerStop(t *testing.T) {
	f := NewFake(t0)

	tm := f.NewTimer(time.Second)
	if !tm.Stop() {
		t.Fatal("Stop of an armed timer returned false")
	}
	if tm.Stop() {
		t.Fatal("second Stop returned true")
	}
	if f.Waiters() != 0 {
		t.Fatalf("Waiters() = %d after Stop, want 0", f.Waiters())
	}
	f.Advance(time.Hour)
	mustNotFire(t, "stopped timer", tm.C())

	// Fired but not received: Stop discards the value and reports the
	// timer stopped, as *time.Timer does since Go 1.23.
	tm = f.NewTimer(time.Second)
	f.Advance(time.Second)
	if !tm.Stop() {
		t.Fatal("Stop of a timer whose value was not received returned false")
	}
	mustNotFire(t, "timer stopped after firing", tm.C())

	// Fired and received: Stop reports it had expired.
	tm = f.NewTimer(time.Second)
	f.Advance(time.Second)
	mustFire(t, "timer", tm.C(), f.Now())
	if tm.Stop() {
		t.Fatal("Stop of a fired and received timer returned true")
	}
}

func TestFakeTimerReset(t *testing.T) {
	f := NewFake(t0)
	tm := f.NewTimer(time.Second)
	f.Advance(500 * time.Millisecond)
	if !tm.Reset(time.Second) {
		t.Fatal("Reset of an armed timer returned false")
	}
	f.Advance(500 * time.Millisecond)
	mustNotFire(t, "timer at its deadline before Reset", tm.C())
	f.Advance(500 * time.Millisecond)
	mustFire(t, "reset timer", tm.C(), t0.Add(1500*time.Millisecond))
	if tm.Reset(time.Second) {
		t.Fatal("Reset of a fired and received timer returned true")
	}
	if f.Waiters() != 1 {
		t.Fatalf("Waiters() = %d after Reset, want 1", f.Waiters())
	}
	f.Advance(time.Second)
	mustFire(t, "timer reset after firing", tm.C(), t0.Add(2500*time.Millisecond))

	// A value not received is discarded by Reset, not seen after it.
	tm = f.NewTimer(time.Second)
	f.Advance(time.Second)
	if !tm.Reset(time.Second) {
		t.Fatal("Reset of a timer whose value was not received returned false")
	}
	mustNotFire(t, "timer reset after firing unreceived", tm.C())
	f.Advance(time.Second)
	mustFire(t, "timer reset after firing unreceived", tm.C(), f.Now())

	// Reset to <= 0 fires at once.
	tm.Reset(0)
	mustFire(t, "Reset(0)", tm.C(), f.Now())
}

func TestFakeFiresInDeadlineOrder(t *testing.T) {
	f := NewFake(t0)
	for _, d := range []time.Duration{3, 1, 2, 1, 5} {
		f.NewTimer(d * time.Second)
	}
	f.NewTicker(2 * time.Second)
	f.mu.Lock()
	ws := append([]*fakeTimer(nil), f.waiters...) // in arming order
	f.mu.Unlock()
	// Deadlines 1 1 2 2(the ticker) 3, ties in arming order; 5 is not due.
	var want []*fakeTimer
	for _, i := range []int{1, 3, 2, 5, 0} {
		want = append(want, ws[i])
	}
	deadlines := map[*fakeTimer]time.Time{}
	for _, w := range ws {
		deadlines[w] = w.when
	}
	f.mu.Lock()
	got := f.dueLocked(t0.Add(4 * time.Second))
	f.mu.Unlock()
	if len(got) != len(want) {
		t.Fatalf("%d due, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("due[%d] has deadline %v (armed #%d), want %v (armed #%d)", i, got[i].when, got[i].seq, want[i].when, want[i].seq)
		}
	}
	// Each due one sends its own deadline; the other does not fire.
	f.Advance(4 * time.Second)
	for _, w := range want {
		mustFire(t, "due timer", w.c, deadlines[w])
	}
	mustNotFire(t, "timer not due", ws[4].c)
}

func TestFakeTicker(t *testing.T) {
	f := NewFake(t0)
	tk := f.NewTicker(time.Second)
	if f.Waiters() != 1 {
		t.Fatalf("Waiters() = %d, want 1", f.Waiters())
	}
	f.Advance(999 * time.Millisecond)
	mustNotFire(t, "ticker before its first tick", tk.C())
	for i := 1; i <= 3; i++ {
		f.Advance(time.Second)
		mustFire(t, "tick", tk.C(), t0.Add(time.Duration(i)*time.Second))
		if f.Waiters() != 1 {
			t.Fatalf("Waiters() = %d after a tick, want 1 (a ticker stays armed)", f.Waiters())
		}
	}
	// Now t0+3.999s. A move over many periods delivers one tick, the
	// first due; the next is due at the first boundary after the new time.
	f.Advance(10 * time.Second) // to t0+13.999s
	mustFire(t, "tick after a long move", tk.C(), t0.Add(4*time.Second))
	mustNotFire(t, "dropped ticks", tk.C())
	f.Advance(time.Millisecond)
	mustFire(t, "tick after the long move", tk.C(), t0.Add(14*time.Second))

	// Unreceived ticks are dropped, the first one kept.
	f.Advance(time.Second)
	f.Advance(time.Second)
	mustFire(t, "kept tick", tk.C(), t0.Add(15*time.Second))
	mustNotFire(t, "dropped tick", tk.C())

	// Reset: a new period from now, an unreceived tick discarded.
	f.Advance(time.Second) // t0+17s: ticks
	tk.Reset(5 * time.Second)
	mustNotFire(t, "tick sent before Reset", tk.C())
	f.Advance(4 * time.Second)
	mustNotFire(t, "reset ticker before its new period", tk.C())
	f.Advance(time.Second)
	mustFire(t, "reset ticker", tk.C(), t0.Add(22*time.Second))

	// Stop: no more ticks, an unreceived one discarded.
	f.Advance(5 * time.Second)
	tk.Stop()
	mustNotFire(t, "tick sent before Stop", tk.C())
	if f.Waiters() != 0 {
		t.Fatalf("Waiters() = %d after Stop, want 0", f.Waiters())
	}
	f.Advance(time.Minute)
	mustNotFire(t, "stopped ticker", tk.C())
	// A stopped ticker can be restarted.
	tk.Reset(time.Second)
	f.Advance(time.Second)
	mustFire(t, "restarted ticker", tk.C(), f.Now())
}

func TestFakeTickerPanicsOnNonPositivePeriod(t *testing.T) {
	f := NewFake(t0)
	mustPanic(t, "NewTicker(0)", func() { f.NewTicker(0) })
	tk := f.NewTicker(time.Second)
	mustPanic(t, "Reset(-1)", func() { tk.Reset(-1) })
	mustPanic(t, "Real NewTicker(0)", func() { Real{}.NewTicker(0) })
}

func mustPanic(t *testing.T, what string, fn func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Fatalf("%s did not panic", what)
		}
	}()
	fn()
}

func TestFakeSetBackFiresNothing(t *testing.T) {
	f := NewFake(t0)
	c := f.After(time.Second)
	f.Set(t0.Add(-time.Hour))
	mustNotFire(t, "timer after Set back", c)
	f.Advance(time.Hour + 999*time.Millisecond)
	mustNotFire(t, "timer before its deadline", c)
	f.Set(t0.Add(time.Minute))
	mustFire(t, "timer after Set past its deadline", c, t0.Add(time.Second))
}

// TestFakeBlockUntilLetsATestAdvanceWithoutRacing drives a goroutine that
// arms a timer, waits on it, and arms the next: BlockUntil makes each
// Advance come after the arming it is meant for.
func TestFakeBlockUntilLetsATestAdvanceWithoutRacing(t *testing.T) {
	f := NewFake(t0)
	const n = 100
	got := make(chan time.Time, n)
	go func() {
		tm := f.NewTimer(time.Second)
		for i := 0; i < n; i++ {
			v := <-tm.C()
			got <- v
			tm.Reset(time.Second)
		}
		tm.Stop()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	for i := 1; i <= n; i++ {
		if err := f.BlockUntilContext(ctx, 1); err != nil {
			t.Fatalf("round %d: the goroutine armed no timer: %v", i, err)
		}
		f.Advance(time.Second)
		if v := recv(t, "timer", got); !v.Equal(t0.Add(time.Duration(i) * time.Second)) {
			t.Fatalf("round %d: fired at %v", i, v)
		}
		// The goroutine may have re-armed already; it must not have
		// armed more than one.
		if w := f.Waiters(); w > 1 {
			t.Fatalf("round %d: %d waiters", i, w)
		}
	}
}

func TestFakeBlockUntil(t *testing.T) {
	f := NewFake(t0)
	// Already satisfied: returns at once.
	f.BlockUntil(0)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := f.BlockUntilContext(ctx, 1); err != context.DeadlineExceeded {
		t.Fatalf("BlockUntilContext with no timers = %v, want %v", err, context.DeadlineExceeded)
	}

	done := make(chan struct{})
	go func() {
		f.BlockUntil(3)
		close(done)
	}()
	f.NewTimer(time.Second)
	tk := f.NewTicker(time.Second)
	tm := f.NewTimer(time.Hour)
	tm.Stop() // two armed: still blocked
	select {
	case <-done:
		t.Fatal("BlockUntil(3) returned with 2 armed")
	default:
	}
	f.After(time.Minute)
	select {
	case <-done:
	case <-time.After(waitLimit):
		t.Fatalf("BlockUntil(3) still blocked with %d armed", f.Waiters())
	}
	tk.Stop()
	if f.Waiters() != 2 {
		t.Fatalf("Waiters() = %d, want 2", f.Waiters())
	}
}

// TestFakeConcurrentUse arms, stops, resets and receives from many
// goroutines while another moves the time (run it with -race).
func TestFakeConcurrentUse(t *testing.T) {
	f := NewFake(t0)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tm := f.NewTimer(time.Millisecond)
			tk := f.NewTicker(time.Millisecond)
			defer tk.Stop()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-tm.C():
					tm.Reset(time.Duration(i%5+1) * time.Millisecond)
				case <-tk.C():
					if i%7 == 0 {
						tk.Reset(time.Duration(i%3+1) * time.Millisecond)
					}
				case <-f.After(time.Duration(i%4) * time.Millisecond):
				}
				_ = f.Now()
				_ = f.Waiters()
			}
		}()
	}
	for i := 0; i < 2000; i++ {
		f.Advance(time.Millisecond)
	}
	close(stop)
	wg.Wait()
}
