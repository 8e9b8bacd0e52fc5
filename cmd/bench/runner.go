package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/time/rate"
)

// loadOptions say how many operations a workload makes, and how fast.
type loadOptions struct {
	total    int
	duration time.Duration
	rate     int
}

// loadFlags declares -total, -duration and -rate (etcd's names).
func loadFlags(fs *flag.FlagSet, o *loadOptions, total int, what string) {
	fs.IntVar(&o.total, "total", total, "total number of "+what)
	fs.DurationVar(&o.duration, "duration", 0, "run for this long, whatever -total says (0: until -total)")
	fs.IntVar(&o.rate, "rate", 0, "maximum "+what+" per second (0: no limit)")
}

func (o *loadOptions) check() error {
	if o.duration > 0 {
		o.total = 0
	}
	if o.total < 1 && o.duration <= 0 {
		return fmt.Errorf("-total must be at least 1, or -duration set")
	}
	if o.rate < 0 || o.duration < 0 {
		return fmt.Errorf("-rate and -duration must not be negative")
	}
	return nil
}

// op is one operation of a workload by client c (0 <= c < clients); n
// numbers the operations of the run from 0.
type op func(ctx context.Context, c int, n int64) error

// loadResult is what runLoad measured.
type loadResult struct {
	ops      int64 // operations that succeeded
	errs     int64
	firstErr string
	elapsed  time.Duration
	lat      latencyStats
}

// runLoad runs op from clients goroutines until o.total operations are made
// (or o.duration has passed), at most o.rate a second in all, and measures
// each operation's latency. Failed operations are counted and the run goes
// on. It prints its progress to progress once a second.
func runLoad(ctx context.Context, name string, clients int, o loadOptions, progress io.Writer, fn op) loadResult {
	limit := rate.Inf
	if o.rate > 0 {
		limit = rate.Limit(o.rate)
	}
	lim := rate.NewLimiter(limit, 1)
	if o.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.duration)
		defer cancel()
	}
	var (
		next, done, errs atomic.Int64
		mu               sync.Mutex
		firstErr         string
		lats             = make([][]time.Duration, clients)
		wg               sync.WaitGroup
	)
	start := time.Now()
	stop := make(chan struct{})
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		last := int64(0)
		for {
			select {
			case <-stop:
				return
			case now := <-tick.C:
				d := done.Load() + errs.Load()
				of := fmt.Sprintf("/%d", o.total)
				if o.total == 0 {
					of = " of " + o.duration.String()
				}
				fmt.Fprintf(progress, "%s: %4.0fs  %d%s  %.0f ops/s  %d errors\n",
					name, now.Sub(start).Seconds(), d, of, float64(d-last), errs.Load())
				last = d
			}
		}
	}()
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for {
				n := next.Add(1) - 1
				if o.total > 0 && n >= int64(o.total) {
					return
				}
				if ctx.Err() != nil {
					return
				}
				if err := lim.Wait(ctx); err != nil {
					return // the run's time is up
				}
				t0 := time.Now()
				err := fn(ctx, c, n)
				d := time.Since(t0)
				if err != nil {
					if ctx.Err() != nil && o.duration > 0 {
						return // cut off at the end of the run: not an error
					}
					if errs.Add(1) == 1 {
						mu.Lock()
						firstErr = err.Error()
						mu.Unlock()
					}
					continue
				}
				done.Add(1)
				lats[c] = append(lats[c], d)
			}
		}(c)
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(stop)
	<-progressDone
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	return loadResult{ops: done.Load(), errs: errs.Load(), firstErr: firstErr, elapsed: elapsed, lat: summarize(all)}
}

// fields are the result's report fields: ops, errors, seconds, ops/s and
// latencies.
func (r loadResult) fields() report {
	rep := report{
		{"ops", r.ops},
		{"errors", r.errs},
		{"seconds", round(r.elapsed.Seconds(), 3)},
		{"ops_per_second", round(float64(r.ops)/r.elapsed.Seconds(), 1)},
	}
	rep = append(rep, r.lat.fields("latency")...)
	if r.firstErr != "" {
		rep = append(rep, field{"first_error", r.firstErr})
	}
	return rep
}

// session is a workload's connections and the server measurements that
// surround its run.
type session struct {
	g   global
	cs  []*clientv3.Client
	mem *memSampler
	ctx context.Context
	end context.CancelFunc
}

func open(g global) (*session, error) {
	cs, err := dial(g)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), g.timeout)
	return &session{g: g, cs: cs, ctx: ctx, end: cancel}, nil
}

// client returns the client of client number c.
func (s *session) client(c int) *clientv3.Client { return s.cs[c%len(s.cs)] }

// startMem starts sampling the server's memory: call it once the data
// the workload needs is in place.
func (s *session) startMem() { s.mem = startMem(s.g.serverPIDs) }

// finish closes the session and returns head, the database size and the
// server's memory.
func (s *session) finish(head report) report {
	defer s.end()
	rep := append(head, dbSize(s.ctx, s.cs[0], s.g.endpoints)...)
	closeAll(s.cs) // the clients are gone before the server's memory is read again
	if s.mem == nil {
		s.startMem()
	}
	rep = append(rep, s.mem.finish(s.g.settle)...)
	// The servers' CPU time per operation: the cost of a request on the
	// server's side, which the load generator's own share of a small
	// machine's cores does not blur as it blurs throughput.
	cpu, ok1 := rep.get("server_cpu_seconds")
	ops, ok2 := rep.get("ops")
	if c, ok := cpu.(float64); ok1 && ok2 && ok {
		if n, ok := toFloat(ops); ok && n > 0 {
			rep = append(rep, field{"server_cpu_us_per_op", round(c*1e6/n, 1)})
		}
	}
	return rep
}

func (s *session) close() {
	s.end()
	closeAll(s.cs)
}
