package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// watchEvent is one event a watcher saw.
type watchEvent struct {
	Rev   int64
	Del   bool
	Key   string
	Value string
}

func (e watchEvent) String() string {
	if e.Del {
		return fmt.Sprintf("@%d delete %q", e.Rev, e.Key)
	}
	return fmt.Sprintf("@%d put %q=%q", e.Rev, e.Key, e.Value)
}

// watcher records every event of the whole key space as one member serves
// it, from revision 1, resuming after errors from the revision after the
// last event seen.
type watcher struct {
	member int
	cli    *clientv3.Client

	mu     sync.Mutex
	events []watchEvent
	next   int64 // the revision to resume from
	errs   int
}

// run watches until ctx is done.
func (w *watcher) run(ctx context.Context) {
	w.mu.Lock()
	w.next = 1
	w.mu.Unlock()
	for ctx.Err() == nil {
		w.mu.Lock()
		from := w.next
		w.mu.Unlock()
		wctx, cancel := context.WithCancel(ctx)
		for resp := range w.cli.Watch(wctx, "", clientv3.WithFromKey(), clientv3.WithRev(from)) {
			if err := resp.Err(); err != nil {
				w.mu.Lock()
				w.errs++
				w.mu.Unlock()
				break
			}
			w.mu.Lock()
			for _, ev := range resp.Events {
				e := watchEvent{Rev: ev.Kv.ModRevision, Key: string(ev.Kv.Key), Value: string(ev.Kv.Value), Del: ev.Type == clientv3.EventTypeDelete}
				w.events = append(w.events, e)
				w.next = e.Rev + 1
			}
			w.mu.Unlock()
		}
		cancel()
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// upTo returns the events with revisions up to rev, and whether the
// watcher has seen past rev.
func (w *watcher) upTo(rev int64) ([]watchEvent, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []watchEvent
	for _, e := range w.events {
		if e.Rev <= rev {
			out = append(out, e)
		}
	}
	return out, w.next > rev
}

// checkWatches waits until every watcher has reached revision rev, then
// checks that they saw the same events in the same order, in revision order.
func checkWatches(ws []*watcher, rev int64, deadline time.Time) Check {
	for {
		all := true
		for _, w := range ws {
			if _, done := w.upTo(rev); !done {
				all = false
			}
		}
		if all || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	var ref []watchEvent
	for i, w := range ws {
		evs, done := w.upTo(rev)
		if !done {
			last := int64(0)
			if len(evs) > 0 {
				last = evs[len(evs)-1].Rev
			}
			return fail("watch", "the watcher on m%d stopped at revision %d of %d", w.member, last, rev)
		}
		for j := 1; j < len(evs); j++ {
			if evs[j].Rev < evs[j-1].Rev {
				return fail("watch", "m%d delivered %v after %v: revisions went backwards", w.member, evs[j], evs[j-1])
			}
		}
		if i == 0 {
			ref = evs
			continue
		}
		for j := 0; j < max(len(ref), len(evs)); j++ {
			if j >= len(ref) || j >= len(evs) || ref[j] != evs[j] {
				a, b := "nothing", "nothing"
				if j < len(ref) {
					a = ref[j].String()
				}
				if j < len(evs) {
					b = evs[j].String()
				}
				return fail("watch", "watch streams differ at event %d: m%d saw %s, m%d saw %s", j, ws[0].member, a, w.member, b)
			}
		}
	}
	return pass("watch", "%d events up to revision %d identical on every member", len(ref), rev)
}
