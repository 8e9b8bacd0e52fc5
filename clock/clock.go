// Package clock is the time source every Cairn component takes at construction.
//
// Production code passes Real; tests and the simulator pass a *Fake whose
// time moves only when told to. Components that must stay deterministic
// (node.Core, mvcc, lease) read time only through a Clock, and components
// that wait (a compactor's period, a retry's back-off) wait on its timers
// and tickers, so that under a Fake they wait for the test, not the wall.
package clock

import (
	"context"
	"sort"
	"sync"
	"time"
)

// Clock tells the current time and makes timers and tickers that run on it.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// Since returns the time elapsed since t: Now().Sub(t).
	Since(t time.Time) time.Duration
	// After waits for d to elapse and then sends the time on the returned
	// channel, like time.After.
	After(d time.Duration) <-chan time.Time
	// NewTimer returns a Timer that sends the time on its channel once d
	// has elapsed, like time.NewTimer.
	NewTimer(d time.Duration) Timer
	// NewTicker returns a Ticker that sends the time on its channel every
	// d, like time.NewTicker. It panics if d <= 0.
	NewTicker(d time.Duration) Ticker
}

// Timer is a single event, as *time.Timer, with the channel behind a
// method. As for *time.Timer since Go 1.23, no value sent before Stop or
// Reset returns is received after it.
type Timer interface {
	// C returns the channel the time is delivered on.
	C() <-chan time.Time
	// Stop prevents the timer from firing. It returns true if the call
	// stops the timer, false if it had already fired (and its value was
	// received) or been stopped.
	Stop() bool
	// Reset changes the timer to fire after d. It returns true if the
	// timer had been active (as Stop would have reported).
	Reset(d time.Duration) bool
}

// Ticker delivers ticks at intervals, as *time.Ticker, with the channel
// behind a method. It drops ticks for a slow receiver; no tick sent before
// Stop or Reset returns is received after it.
type Ticker interface {
	// C returns the channel the ticks are delivered on.
	C() <-chan time.Time
	// Stop turns the ticker off: no more ticks are sent.
	Stop()
	// Reset stops the ticker and restarts it with period d, the next tick
	// due d from now. It panics if d <= 0.
	Reset(d time.Duration)
}

// Real is the wall clock: package time. Its zero value is ready to use.
type Real struct{}

// Now returns time.Now().
func (Real) Now() time.Time { return time.Now() }

// Since returns time.Since(t).
func (Real) Since(t time.Time) time.Duration { return time.Since(t) }

// After returns time.After(d).
func (Real) After(d time.Duration) <-chan time.Time { return time.After(d) }

// NewTimer returns a time.NewTimer(d).
func (Real) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

// NewTicker returns a time.NewTicker(d).
func (Real) NewTicker(d time.Duration) Ticker { return realTicker{time.NewTicker(d)} }

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time        { return r.t.C }
func (r realTimer) Stop() bool                 { return r.t.Stop() }
func (r realTimer) Reset(d time.Duration) bool { return r.t.Reset(d) }

type realTicker struct{ t *time.Ticker }

func (r realTicker) C() <-chan time.Time   { return r.t.C }
func (r realTicker) Stop()                 { r.t.Stop() }
func (r realTicker) Reset(d time.Duration) { r.t.Reset(d) }

// Fake is a manually driven clock, safe for concurrent use. Its zero value
// starts at the Unix epoch.
//
// Its timers and tickers fire only when Advance or Set moves the time to
// or past their deadline, from within that call, in deadline order (ties
// in the order they were armed). A timer sends its deadline on its
// channel; a ticker sends the deadline of its tick, at most once per
// Advance or Set however many periods the move spans (its channel holds
// one tick; the others are dropped as for a slow receiver), and its next
// tick is then due at the first period boundary after the new time.
//
// A test that advances time past a deadline some goroutine is about to
// arm would race it: BlockUntil waits until that many timers and tickers
// are armed first.
type Fake struct {
	mu      sync.Mutex
	now     time.Time
	seq     uint64        // arming order, the tie-break among equal deadlines
	waiters []*fakeTimer  // armed timers and tickers, unordered
	changed chan struct{} // closed and replaced when waiters changes
}

// NewFake returns a Fake clock reading start.
func NewFake(start time.Time) *Fake { return &Fake{now: start} }

// nowLocked returns the fake time, starting the zero value at the epoch.
func (f *Fake) nowLocked() time.Time {
	if f.now.IsZero() {
		f.now = time.Unix(0, 0).UTC()
	}
	return f.now
}

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.nowLocked()
}

// Since returns the fake time elapsed since t.
func (f *Fake) Since(t time.Time) time.Duration { return f.Now().Sub(t) }

// Advance moves the fake time forward by d, firing the timers and tickers
// that come due.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.moveLocked(f.nowLocked().Add(d))
}

// Set sets the fake time to t, firing the timers and tickers due at or
// before t. Setting it back fires nothing; deadlines stay where they were.
func (f *Fake) Set(t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.moveLocked(t)
}

// moveLocked sets the time to t and fires what came due, in deadline order.
func (f *Fake) moveLocked(t time.Time) {
	f.now = t
	for _, w := range f.dueLocked(t) {
		w.send(w.when)
		if w.ticker {
			// The next tick is the first period boundary after t.
			w.when = w.when.Add(w.period * (t.Sub(w.when)/w.period + 1))
		} else {
			f.removeLocked(w)
		}
	}
}

// dueLocked returns the armed timers and tickers due at t, by deadline,
// ties in the order they were armed.
func (f *Fake) dueLocked(t time.Time) []*fakeTimer {
	var due []*fakeTimer
	for _, w := range f.waiters {
		if !w.when.After(t) {
			due = append(due, w)
		}
	}
	sort.Slice(due, func(i, j int) bool {
		if !due[i].when.Equal(due[j].when) {
			return due[i].when.Before(due[j].when)
		}
		return due[i].seq < due[j].seq
	})
	return due
}

// Waiters returns the number of timers and tickers now armed: created or
// reset and neither fired (a timer), nor stopped.
func (f *Fake) Waiters() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.waiters)
}

// BlockUntil blocks until at least n timers and tickers are armed.
func (f *Fake) BlockUntil(n int) {
	_ = f.BlockUntilContext(context.Background(), n)
}

// BlockUntilContext blocks until at least n timers and tickers are armed,
// or ctx is done, when it returns ctx.Err().
func (f *Fake) BlockUntilContext(ctx context.Context, n int) error {
	for {
		f.mu.Lock()
		if len(f.waiters) >= n {
			f.mu.Unlock()
			return nil
		}
		ch := f.changedLocked()
		f.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (f *Fake) changedLocked() chan struct{} {
	if f.changed == nil {
		f.changed = make(chan struct{})
	}
	return f.changed
}

func (f *Fake) notifyLocked() {
	if f.changed != nil {
		close(f.changed)
		f.changed = nil
	}
}

// After returns the channel of a new fake timer.
func (f *Fake) After(d time.Duration) <-chan time.Time { return f.NewTimer(d).C() }

// NewTimer returns a timer that fires once the fake time reaches Now()+d;
// with d <= 0 it has fired already.
func (f *Fake) NewTimer(d time.Duration) Timer {
	t := &fakeTimer{f: f, c: make(chan time.Time, 1)}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.armLocked(t, d)
	return t
}

// NewTicker returns a ticker that ticks every d of fake time, the first
// tick due at Now()+d. It panics if d <= 0.
func (f *Fake) NewTicker(d time.Duration) Ticker {
	if d <= 0 {
		panic("non-positive interval for clock.Fake.NewTicker")
	}
	t := &fakeTimer{f: f, c: make(chan time.Time, 1), ticker: true, period: d}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.armLocked(t, d)
	return fakeTicker{t}
}

// armLocked arms t to fire d from now, or fires it now if d <= 0.
func (f *Fake) armLocked(t *fakeTimer, d time.Duration) {
	now := f.nowLocked()
	if d <= 0 {
		t.send(now)
		return
	}
	t.when = now.Add(d)
	f.seq++
	t.seq = f.seq
	t.armed = true
	f.waiters = append(f.waiters, t)
	f.notifyLocked()
}

// removeLocked disarms t, reporting whether it was armed.
func (f *Fake) removeLocked(t *fakeTimer) bool {
	if !t.armed {
		return false
	}
	t.armed = false
	for i, w := range f.waiters {
		if w == t {
			f.waiters = append(f.waiters[:i], f.waiters[i+1:]...)
			break
		}
	}
	f.notifyLocked()
	return true
}

// fakeTimer is both a Timer and, with a period, a Ticker of a Fake.
type fakeTimer struct {
	f      *Fake
	c      chan time.Time // capacity 1
	ticker bool
	// Guarded by f.mu:
	period time.Duration // a ticker's; 0 for a timer
	when   time.Time
	seq    uint64
	armed  bool
}

// send delivers v unless a value is already waiting (dropped, as a real
// ticker drops ticks for a slow receiver).
func (t *fakeTimer) send(v time.Time) {
	select {
	case t.c <- v:
	default:
	}
}

// drain discards a value delivered but not received, reporting whether
// there was one.
func (t *fakeTimer) drain() bool {
	select {
	case <-t.c:
		return true
	default:
		return false
	}
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

// Stop disarms the timer and discards a value not yet received. As for
// *time.Timer, it returns true if the timer had not yet delivered a value
// that was received.
func (t *fakeTimer) Stop() bool {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	return t.stopLocked()
}

func (t *fakeTimer) stopLocked() bool {
	armed := t.f.removeLocked(t)
	pending := t.drain()
	return armed || pending
}

// Reset rearms the timer (with a period, the ticker) to fire d from now.
func (t *fakeTimer) Reset(d time.Duration) bool {
	if t.ticker && d <= 0 {
		panic("non-positive interval for clock.Fake ticker Reset")
	}
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	active := t.stopLocked()
	if t.ticker {
		t.period = d
	}
	t.f.armLocked(t, d)
	return active
}

// fakeTicker adapts a fakeTimer with a period to Ticker, whose Stop and
// Reset return nothing.
type fakeTicker struct{ t *fakeTimer }

func (k fakeTicker) C() <-chan time.Time   { return k.t.C() }
func (k fakeTicker) Stop()                 { k.t.Stop() }
func (k fakeTicker) Reset(d time.Duration) { k.t.Reset(d) }
