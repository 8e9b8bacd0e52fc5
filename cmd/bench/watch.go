package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/time/rate"
)

// watchOptions shape the watch workload after etcd's benchmark tool
// (`benchmark watch`), so the same run can be made with either tool.
type watchOptions struct {
	streams        int
	watchPerStream int
	watchedKeys    int
	keySize        int
	valSize        int
	putTotal       int
	putRate        int
}

// runWatch opens -streams watch streams of -watch-per-stream watchers each,
// spread round robin over -watched-key-total keys, then makes -put-total
// puts (round robin over the same keys, at most -put-rate a second) and
// waits until every watcher of every key has received every event. It
// reports how long creating the watchers took, how long the puts took, how
// long delivering every event took (from the first put to the last event),
// and events per second.
func runWatch(g global, args []string, stderr io.Writer) (report, error) {
	fs := flag.NewFlagSet("watch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o watchOptions
	fs.IntVar(&o.streams, "streams", 10, "watch streams")
	fs.IntVar(&o.watchPerStream, "watch-per-stream", 100, "watchers per stream")
	fs.IntVar(&o.watchedKeys, "watched-key-total", 1, "distinct keys watched")
	fs.IntVar(&o.keySize, "key-size", 32, "key size in bytes")
	fs.IntVar(&o.valSize, "val-size", 4, "value size in bytes")
	fs.IntVar(&o.putTotal, "put-total", 1000, "puts")
	fs.IntVar(&o.putRate, "put-rate", 0, "puts per second (0: unlimited)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if o.streams < 1 || o.watchPerStream < 1 || o.watchedKeys < 1 || o.putTotal < 1 || o.keySize < 8 {
		return nil, fmt.Errorf("watch: -streams, -watch-per-stream, -watched-key-total and -put-total must be at least 1, -key-size at least 8")
	}
	cs, err := dial(g)
	if err != nil {
		return nil, err
	}
	defer closeAll(cs)
	ctx, cancel := context.WithTimeout(context.Background(), g.timeout)
	defer cancel()

	keys := make([]string, o.watchedKeys)
	for i := range keys {
		k := make([]byte, o.keySize)
		binary.PutUvarint(k, uint64(i))
		keys[i] = string(k)
	}
	mem := startMem(g.serverPIDs)

	// Watchers, and the events each key's watchers expect.
	watchersOf := make([]int, len(keys))
	var chans []clientv3.WatchChan
	var watchers []clientv3.Watcher
	created := time.Now()
	for s := 0; s < o.streams; s++ {
		w := clientv3.NewWatcher(cs[s%len(cs)])
		watchers = append(watchers, w)
		for j := 0; j < o.watchPerStream; j++ {
			n := s*o.watchPerStream + j
			k := n % len(keys)
			watchersOf[k]++
			chans = append(chans, w.Watch(ctx, keys[k], clientv3.WithCreatedNotify()))
		}
	}
	// Wait for every created notification, so the puts start with every
	// watcher in place.
	for i, ch := range chans {
		select {
		case r, ok := <-ch:
			if !ok || !r.Created {
				return nil, fmt.Errorf("watch: watcher %d was not created: %v", i, r.Err())
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("watch: creating watchers: %w", ctx.Err())
		}
	}
	createTime := time.Since(created)
	var want int64
	for i := 0; i < o.putTotal; i++ {
		want += int64(watchersOf[i%len(keys)])
	}

	// Receivers count events; the last one notes the time.
	var got atomic.Int64
	done := make(chan time.Time, 1)
	var recv sync.WaitGroup
	for _, ch := range chans {
		recv.Add(1)
		go func(ch clientv3.WatchChan) {
			defer recv.Done()
			for r := range ch {
				if err := r.Err(); err != nil {
					return
				}
				if n := int64(len(r.Events)); n > 0 && got.Add(n) == want {
					done <- time.Now()
				}
			}
		}(ch)
	}

	// Puts, from -clients goroutines sharing one rate limit.
	limit := rate.Inf
	if o.putRate > 0 {
		limit = rate.Limit(o.putRate)
	}
	lim := rate.NewLimiter(limit, 1)
	val := string(make([]byte, o.valSize))
	ops := make(chan int)
	var putErr atomic.Value
	var puts sync.WaitGroup
	start := time.Now()
	for c := 0; c < g.clients; c++ {
		kv := cs[c%len(cs)].KV
		puts.Add(1)
		go func() {
			defer puts.Done()
			for i := range ops {
				if err := lim.Wait(ctx); err != nil {
					putErr.Store(err)
					return
				}
				if _, err := kv.Put(ctx, keys[i%len(keys)], val); err != nil {
					putErr.Store(err)
					return
				}
			}
		}()
	}
	for i := 0; i < o.putTotal; i++ {
		ops <- i
	}
	close(ops)
	puts.Wait()
	putTime := time.Since(start)
	if err, _ := putErr.Load().(error); err != nil {
		return nil, fmt.Errorf("watch: put: %w", err)
	}
	var end time.Time
	select {
	case end = <-done:
	case <-ctx.Done():
		return nil, fmt.Errorf("watch: %d of %d events delivered before giving up: %w", got.Load(), want, ctx.Err())
	}
	deliver := end.Sub(start)
	for _, w := range watchers {
		_ = w.Close()
	}
	cancel()
	recv.Wait()
	db := dbSize(context.Background(), cs[0], g.endpoints)
	closeAll(cs) // the clients are gone before the server's memory is read again

	rep := report{
		{"workload", "watch"},
		{"streams", o.streams},
		{"watchers", o.streams * o.watchPerStream},
		{"puts", o.putTotal},
		{"events", want},
		{"create_seconds", createTime.Seconds()},
		{"put_seconds", putTime.Seconds()},
		{"deliver_seconds", deliver.Seconds()},
		{"events_per_second", float64(want) / deliver.Seconds()},
		{"ops_per_second", round(float64(want)/deliver.Seconds(), 1)},
	}
	rep = append(rep, db...)
	return append(rep, mem.finish(g.settle)...), nil
}
