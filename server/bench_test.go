package server

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cairnkv/cairn/vfs"
)

// countingFS counts fsyncs of the real file system.
type countingFS struct {
	vfs.FS
	syncs *atomic.Int64
}

type countingFile struct {
	vfs.File
	syncs *atomic.Int64
}

func (f countingFile) Sync() error { f.syncs.Add(1); return f.File.Sync() }

func (c countingFS) Create(name string) (vfs.File, error) {
	f, err := c.FS.Create(name)
	if err != nil {
		return nil, err
	}
	return countingFile{f, c.syncs}, nil
}

func (c countingFS) OpenReadWrite(name string) (vfs.File, error) {
	f, err := c.FS.OpenReadWrite(name)
	if err != nil {
		return nil, err
	}
	return countingFile{f, c.syncs}, nil
}

// BenchmarkProposals measures puts through a 3-member in-process cluster
// whose WALs are real files with fsync on: throughput, p99 latency, and
// WAL fsyncs per committed entry (summed over the three members, so a
// value under 3 means Readys batch several entries per fsync).
func BenchmarkProposals(b *testing.B) {
	for _, proposers := range []int{1, 64} {
		b.Run(fmt.Sprintf("proposers=%d", proposers), func(b *testing.B) {
			var syncs atomic.Int64
			c := newTestCluster(b, 3, clusterOpts{walFS: countingFS{vfs.OS(), &syncs}})
			s := c.server(c.waitLeader())
			lat := make([]time.Duration, b.N)
			var next atomic.Int64
			syncs.Store(0)
			start := time.Now()
			b.ResetTimer()
			var wg sync.WaitGroup
			for p := 0; p < proposers; p++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := next.Add(1) - 1
						if i >= int64(b.N) {
							return
						}
						t0 := time.Now()
						if _, err := s.Put(context.Background(), &pb.PutRequest{Key: []byte(fmt.Sprintf("k%d", i%1000)), Value: make([]byte, 100)}); err != nil {
							b.Error(err)
							return
						}
						lat[i] = time.Since(t0)
					}
				}()
			}
			wg.Wait()
			el := time.Since(start)
			b.StopTimer()
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(b.N)/el.Seconds(), "puts/s")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			b.ReportMetric(float64(syncs.Load())/float64(b.N), "fsyncs/put")
		})
	}
}
