package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// runWatchLatency is etcd's `benchmark watch-latency`: -streams watch
// streams of -watchers-per-stream watchers of one key, then -put-total puts
// to it at -put-rate a second; the latency of an event is from the moment
// its put was sent to the moment a watcher received it, for every watcher.
func runWatchLatency(g global, args []string, stderr io.Writer) (report, error) {
	fs := newFlagSet("watch-latency", stderr)
	streams := fs.Int("streams", 10, "watch streams")
	perStream := fs.Int("watchers-per-stream", 10, "watchers per stream")
	putTotal := fs.Int("put-total", 1000, "puts")
	putRate := fs.Int("put-rate", 100, "puts per second (0: unlimited)")
	keySize := fs.Int("key-size", 32, "key size in bytes")
	valSize := fs.Int("val-size", 32, "value size in bytes")
	prevKV := fs.Bool("prevkv", false, "watch with prev_kv")
	if err := parse(fs, args); err != nil {
		return nil, err
	}
	if *streams < 1 || *perStream < 1 || *putTotal < 1 || *putRate < 0 {
		return nil, fmt.Errorf("watch-latency: -streams, -watchers-per-stream and -put-total must be at least 1")
	}
	s, err := open(g)
	if err != nil {
		return nil, err
	}
	key := keyName("w", *keySize, 0)
	opts := []clientv3.OpOption{clientv3.WithCreatedNotify()}
	if *prevKV {
		opts = append(opts, clientv3.WithPrevKV())
	}
	wctx, stopWatch := context.WithCancel(s.ctx)
	defer stopWatch()
	var chans []clientv3.WatchChan
	for st := 0; st < *streams; st++ {
		w := clientv3.NewWatcher(s.client(st))
		defer w.Close()
		for j := 0; j < *perStream; j++ {
			chans = append(chans, w.Watch(wctx, key, opts...))
		}
	}
	for i, ch := range chans {
		select {
		case r, ok := <-ch:
			if !ok || !r.Created {
				s.close()
				return nil, fmt.Errorf("watch-latency: watcher %d was not created: %v", i, r.Err())
			}
		case <-s.ctx.Done():
			s.close()
			return nil, fmt.Errorf("watch-latency: creating watchers: %w", s.ctx.Err())
		}
	}
	s.startMem()

	// Each put's value is its number, so a watcher finds when it was sent.
	sent := make([]atomic.Int64, *putTotal)
	want := int64(*putTotal) * int64(len(chans))
	var got atomic.Int64
	allIn := make(chan struct{})
	// A watcher whose channel closes before the end says why here.
	lost := make(chan error, len(chans))
	lats := make([][]time.Duration, len(chans))
	var recv sync.WaitGroup
	for i, ch := range chans {
		recv.Add(1)
		go func(i int, ch clientv3.WatchChan) {
			defer recv.Done()
			var why error
			defer func() {
				if wctx.Err() == nil { // not the end of the run
					if why == nil {
						why = fmt.Errorf("watch-latency: watcher %d ended early", i)
					}
					lost <- why // one per watcher at most: never blocks
				}
			}()
			for r := range ch {
				if err := r.Err(); err != nil {
					why = fmt.Errorf("watch-latency: watcher %d: %w", i, err)
					return
				}
				now := time.Now()
				for _, ev := range r.Events {
					n, err := strconv.Atoi(string(ev.Kv.Value[:min(len(ev.Kv.Value), 10)]))
					if err != nil || n < 0 || n >= len(sent) {
						continue
					}
					lats[i] = append(lats[i], now.Sub(time.Unix(0, sent[n].Load())))
				}
				if n := int64(len(r.Events)); n > 0 && got.Add(n) == want {
					close(allIn)
				}
			}
		}(i, ch)
	}
	res := runLoad(s.ctx, "watch-latency", 1, loadOptions{total: *putTotal, rate: *putRate}, g.progress, func(ctx context.Context, c int, n int64) error {
		sent[n].Store(time.Now().UnixNano())
		_, err := s.client(0).Put(ctx, key, fmt.Sprintf("%010d", n)+randomValue(max(*valSize-10, 0)))
		return err
	})
	var deliverErr error
	if res.errs == 0 {
		select {
		case <-allIn:
		case err := <-lost:
			deliverErr = err
		case <-s.ctx.Done():
			deliverErr = fmt.Errorf("watch-latency: %d of %d events delivered before giving up", got.Load(), want)
		}
	}
	stopWatch()
	recv.Wait()
	if deliverErr != nil {
		s.close()
		return nil, deliverErr
	}
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	ev := summarize(all)
	head := append(header("watch-latency", g),
		field{"watchers", len(chans)}, field{"puts", *putTotal}, field{"put_rate", *putRate}, field{"events", got.Load()})
	// ops and the latencies are the events'; the puts' own follow.
	rep := append(head,
		field{"ops", int64(ev.Count)}, field{"errors", res.errs},
		field{"seconds", round(res.elapsed.Seconds(), 3)},
		field{"ops_per_second", round(float64(ev.Count)/res.elapsed.Seconds(), 1)})
	rep = append(rep, ev.fields("latency")...)
	rep = append(rep, res.lat.fields("put_latency")...)
	if res.firstErr != "" {
		rep = append(rep, field{"first_error", res.firstErr})
	}
	return s.finish(rep), nil
}
