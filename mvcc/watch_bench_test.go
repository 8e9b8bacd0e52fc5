package mvcc

import (
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// consume drains ws on its own goroutine, calling fn for each response,
// until stop is closed.
func consume(ws *WatchStream, stop <-chan struct{}, fn func(WatchResponse)) *sync.WaitGroup {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-ws.Ready():
			}
			for {
				r, ok := ws.Next()
				if !ok {
					break
				}
				fn(r)
			}
		}
	}()
	return &wg
}

// BenchmarkWatchFanout10kWatchersOneKey: events delivered per second to
// 10,000 watchers of one key (on 10 streams, each drained by a consumer).
func BenchmarkWatchFanout10kWatchersOneKey(b *testing.B) {
	s := benchStore(b)
	const watchers, streams = 10000, 10
	stop := make(chan struct{})
	var mu sync.Mutex
	delivered := 0
	done := sync.NewCond(&mu)
	var wgs []*sync.WaitGroup
	for i := 0; i < streams; i++ {
		ws := s.NewWatchStream(0)
		defer ws.Close()
		for j := 0; j < watchers/streams; j++ {
			if _, err := ws.Watch(AutoWatchID, []byte("hot"), nil, 0, nil, false); err != nil {
				b.Fatal(err)
			}
		}
		wgs = append(wgs, consume(ws, stop, func(r WatchResponse) {
			if len(r.Events) > 0 {
				mu.Lock()
				delivered += len(r.Events)
				if delivered >= b.N*watchers {
					done.Broadcast()
				}
				mu.Unlock()
			}
		}))
	}
	req := &pb.PutRequest{Key: []byte("hot"), Value: []byte("value")}
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if _, err := s.Put(req); err != nil {
			b.Fatal(err)
		}
	}
	mu.Lock()
	for delivered < b.N*watchers {
		done.Wait()
	}
	mu.Unlock()
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N*watchers)/el.Seconds(), "events/s")
	close(stop)
	for _, wg := range wgs {
		wg.Wait()
	}
}

// BenchmarkPutToEventLatency: from Put returning to the event coming out of
// Next on a consumer goroutine, with 1 and 1,000 watchers of the key on one
// stream; reports p50 and p99 of the last watcher's delivery.
func BenchmarkPutToEventLatency(b *testing.B) {
	for _, n := range []int{1, 1000} {
		b.Run(fmt.Sprintf("watchers=%d", n), func(b *testing.B) {
			s := benchStore(b)
			ws := s.NewWatchStream(0)
			defer ws.Close()
			for j := 0; j < n; j++ {
				if _, err := ws.Watch(AutoWatchID, []byte("k"), nil, 0, nil, false); err != nil {
					b.Fatal(err)
				}
			}
			got := make(chan time.Time, 1)
			seen := 0
			stop := make(chan struct{})
			wg := consume(ws, stop, func(r WatchResponse) {
				if len(r.Events) == 0 {
					return
				}
				seen++
				if seen == n {
					seen = 0
					got <- time.Now()
				}
			})
			lat := make([]time.Duration, 0, b.N)
			req := &pb.PutRequest{Key: []byte("k"), Value: []byte("v")}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := s.Put(req); err != nil {
					b.Fatal(err)
				}
				acked := time.Now()
				lat = append(lat, (<-got).Sub(acked))
			}
			b.StopTimer()
			close(stop)
			wg.Wait()
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-us")
			b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-us")
		})
	}
}
