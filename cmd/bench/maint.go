package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
)

// opSample is one operation of a steady load: when it started (since the
// load began), how long it took, and how it failed.
type opSample struct {
	start, dur time.Duration
	err        bool
	timeout    bool
}

// steadyLoad runs op from clients goroutines at a fixed rate until stopped,
// and keeps every operation's start, latency and outcome, so the latency
// of the operations that overlapped a window of time can be told apart
// from the others.
type steadyLoad struct {
	begin    time.Time
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	samples  [][]opSample
	mu       sync.Mutex
	firstErr string
}

// isTimeout says whether err is a request that timed out: the client's
// deadline, or the server's "request timed out".
func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, rpctypes.ErrTimeout) {
		return true
	}
	s := err.Error()
	return strings.Contains(s, "timed out") || strings.Contains(s, "DeadlineExceeded") || strings.Contains(s, "deadline exceeded")
}

// startSteady starts the load: clients goroutines, at most perSecond
// operations a second in all, each given opTimeout.
func startSteady(ctx context.Context, clients, perSecond int, opTimeout time.Duration, fn op) *steadyLoad {
	ctx, cancel := context.WithCancel(ctx)
	l := &steadyLoad{begin: time.Now(), cancel: cancel, samples: make([][]opSample, clients)}
	lim := rate.NewLimiter(rate.Limit(perSecond), 1)
	var next int64
	var nmu sync.Mutex
	for c := 0; c < clients; c++ {
		l.wg.Add(1)
		go func(c int) {
			defer l.wg.Done()
			for {
				if err := lim.Wait(ctx); err != nil {
					return // stopped
				}
				nmu.Lock()
				n := next
				next++
				nmu.Unlock()
				t0 := time.Now()
				octx, ocancel := context.WithTimeout(ctx, opTimeout)
				err := fn(octx, c, n)
				ocancel()
				d := time.Since(t0)
				if err != nil && ctx.Err() != nil {
					return // cut off by the end of the load: not counted
				}
				s := opSample{start: t0.Sub(l.begin), dur: d}
				if err != nil {
					s.err, s.timeout = true, isTimeout(err)
					l.mu.Lock()
					if l.firstErr == "" {
						l.firstErr = err.Error()
					}
					l.mu.Unlock()
				}
				l.samples[c] = append(l.samples[c], s)
			}
		}(c)
	}
	return l
}

// now is the time since the load began.
func (l *steadyLoad) now() time.Duration { return time.Since(l.begin) }

// stop ends the load and returns every operation.
func (l *steadyLoad) stop() []opSample {
	l.cancel()
	l.wg.Wait()
	var all []opSample
	for _, s := range l.samples {
		all = append(all, s...)
	}
	return all
}

// window is a stretch of the load: a maintenance operation's, or the
// baseline before any.
type window struct {
	name     string
	from, to time.Duration
	// inside: only operations wholly inside the window count (the
	// baseline); otherwise every operation that overlapped it.
	inside bool
}

func (w window) holds(s opSample) bool {
	if w.inside {
		return s.start >= w.from && s.start+s.dur <= w.to
	}
	return s.start <= w.to && s.start+s.dur >= w.from
}

// windowStats are the report fields of the operations in w: their count,
// latencies (of those that succeeded), errors and timeouts.
func windowStats(samples []opSample, w window) (report, latencyStats) {
	var lat []time.Duration
	ops, errs, timeouts := 0, 0, 0
	for _, s := range samples {
		if !w.holds(s) {
			continue
		}
		ops++
		if s.err {
			errs++
			if s.timeout {
				timeouts++
			}
			continue
		}
		lat = append(lat, s.dur)
	}
	st := summarize(lat)
	return report{
		{w.name + "_load_ops", ops},
		{w.name + "_p50_ms", ms(st.P50)},
		{w.name + "_p99_ms", ms(st.P99)},
		{w.name + "_max_ms", ms(st.Max)},
		{w.name + "_errors", errs},
		{w.name + "_timeouts", timeouts},
	}, st
}

// sleepCtx waits d or until ctx is done. It paces the measurement (the
// load runs this long), it does not wait for an event.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// rssNow is the largest VmRSS of pids, in MiB (0 without pids).
func rssNow(pids []int, name string) float64 {
	var kib int64
	for _, pid := range pids {
		if v, err := procStatus(pid, name); err == nil {
			kib = max(kib, v)
		}
	}
	return mib(kib)
}

// runMaint is maintenance under load (issue #18): write -revisions
// versions of -keys keys (fast, not measured), then run a steady load of
// puts and linearizable reads at -rate while, after -baseline of it, each
// of -ops runs in turn (-gap of load after each): compact is a physical
// compaction of every revision so far (Compact with physical=true, which
// answers once the old versions are gone from disk), defrag a
// Defragment of every endpoint. It reports each operation's duration, the
// load's p50, p99 and max latency, errors and timeouts over the baseline
// and while each operation ran, the p99 spike (during / baseline), the
// database size before and after each, and the server's memory after the
// prefill.
func runMaint(g global, args []string, stderr io.Writer) (report, error) {
	fs := newFlagSet("maint", stderr)
	keys := fs.Int("keys", 100000, "distinct keys")
	revs := fs.Int("revisions", 1000000, "versions written first, round robin over the keys (in transactions of 100 puts; not measured)")
	keySize := fs.Int("key-size", 16, "key size in bytes")
	valSize := fs.Int("val-size", 128, "value size in bytes")
	perSecond := fs.Int("rate", 200, "load operations per second (half puts of the keys, half linearizable reads of one)")
	baseline := fs.Duration("baseline", 10*time.Second, "load before the first operation: the baseline latency")
	gap := fs.Duration("gap", 5*time.Second, "load after each operation")
	opsFlag := fs.String("ops", "compact,defrag", "maintenance operations, in order: compact, defrag")
	opTimeout := fs.Duration("op-timeout", 10*time.Second, "deadline of each load request (one that misses it is a timeout)")
	maintTimeout := fs.Duration("maint-timeout", 10*time.Minute, "deadline of each maintenance operation")
	if err := parse(fs, args); err != nil {
		return nil, err
	}
	ops := splitList(*opsFlag)
	for _, o := range ops {
		if o != "compact" && o != "defrag" {
			return nil, fmt.Errorf("maint: -ops: unknown operation %q (want compact, defrag)", o)
		}
	}
	if *keys < 100 || *revs < *keys || *perSecond < 1 || *keySize < 2 {
		return nil, fmt.Errorf("maint: -keys must be at least 100, -revisions at least -keys, -rate at least 1")
	}
	s, err := open(g)
	if err != nil {
		return nil, err
	}
	name := func(i int64) string { return keyName(keyPrefix, *keySize, i%int64(*keys)) }
	val := randomValue(*valSize)
	prefillStart := time.Now()
	if err := prefill(s, *revs, name, val); err != nil {
		s.close()
		return nil, err
	}
	head := append(header("maint", g), field{"keys", *keys}, field{"revisions", *revs}, field{"val_size", *valSize},
		field{"rate", *perSecond}, field{"maint_ops", strings.Join(ops, ",")},
		field{"prefill_seconds", round(time.Since(prefillStart).Seconds(), 2)},
		field{"rss_after_prefill_mib", rssNow(g.serverPIDs, "VmRSS")},
		field{"rss_anon_after_prefill_mib", rssNow(g.serverPIDs, "RssAnon")},
		field{"rss_file_after_prefill_mib", rssNow(g.serverPIDs, "RssFile")})
	for _, f := range dbSize(s.ctx, s.cs[0], g.endpoints) {
		head = append(head, field{"prefill_" + f.Name, f.Value})
	}
	s.startMem()
	cl := s.cs[0]
	load := startSteady(s.ctx, g.clients, *perSecond, *opTimeout, func(ctx context.Context, c int, n int64) error {
		k := name(mrand.Int64N(int64(*keys)))
		if n%2 == 0 {
			_, err := s.client(c).Put(ctx, k, val)
			return err
		}
		_, err := s.client(c).Get(ctx, k)
		return err
	})
	fmt.Fprintf(g.progress, "maint: load at %d/s, baseline %s\n", *perSecond, *baseline)
	windows := []window{}
	var opErr error
	if err := sleepCtx(s.ctx, *baseline); err != nil {
		opErr = err
	}
	windows = append(windows, window{name: "baseline", from: 0, to: load.now(), inside: true})
	var rep report
	for _, o := range ops {
		if opErr != nil {
			break
		}
		mctx, cancel := context.WithTimeout(s.ctx, *maintTimeout)
		from := load.now()
		var oerr error
		switch o {
		case "compact":
			var r *clientv3.GetResponse
			if r, oerr = cl.Get(mctx, "bench-maint-rev"); oerr == nil {
				rev := r.Header.Revision
				fmt.Fprintf(g.progress, "maint: physical compaction at revision %d\n", rev)
				from = load.now()
				_, oerr = cl.Compact(mctx, rev, clientv3.WithCompactPhysical())
				to := load.now()
				rep = append(rep, field{"compact_revision", rev}, field{"compact_seconds", round((to - from).Seconds(), 3)})
				windows = append(windows, window{name: "compact", from: from, to: to})
				if oerr == nil {
					// The compaction happened: a read below it is refused.
					_, gerr := cl.Get(mctx, name(0), clientv3.WithRev(rev-1))
					rep = append(rep, field{"compacted", errors.Is(gerr, rpctypes.ErrCompacted)})
				}
			}
		case "defrag":
			fmt.Fprintf(g.progress, "maint: defragment %v\n", g.endpoints)
			for _, ep := range g.endpoints {
				if _, oerr = cl.Defragment(mctx, ep); oerr != nil {
					break
				}
			}
			to := load.now()
			rep = append(rep, field{"defrag_seconds", round((to - from).Seconds(), 3)})
			windows = append(windows, window{name: "defrag", from: from, to: to})
		}
		cancel()
		if oerr != nil {
			opErr = fmt.Errorf("%s: %w", o, oerr)
			break
		}
		for _, f := range dbSize(s.ctx, cl, g.endpoints) {
			rep = append(rep, field{"after_" + o + "_" + f.Name, f.Value})
		}
		fmt.Fprintf(g.progress, "maint: %s done\n", o)
		if err := sleepCtx(s.ctx, *gap); err != nil {
			opErr = err
		}
	}
	samples := load.stop()
	head = append(head, rep...)
	total := window{name: "load", from: 0, to: load.now()}
	tf, _ := windowStats(samples, total)
	head = append(head, tf...)
	head = append(head, field{"errors", tf[4].Value}, field{"timeouts", tf[5].Value})
	if load.firstErr != "" {
		head = append(head, field{"first_error", load.firstErr})
	}
	var base latencyStats
	for i, w := range windows {
		f, st := windowStats(samples, w)
		head = append(head, f...)
		if i == 0 {
			base = st
			continue
		}
		if r, ok := ratio(float64(st.P99), float64(base.P99)); ok {
			head = append(head, field{w.name + "_p99_ratio", round(r, 2)})
		}
	}
	// The run is reported with what failed, rather than lost: a
	// compaction whose caller timed out still shows how long it was given.
	failed := 0
	if opErr != nil {
		failed = 1
		head = append(head, field{"maint_error", opErr.Error()})
	}
	head = append(head, field{"maint_errors", failed})
	return s.finish(head), nil
}

// firstRead returns when a linearizable read of key first succeeds
// against endpoints: a new client whose reconnection back-off is short,
// so the time measured is the server's, not the client's back-off.
func firstRead(ctx context.Context, endpoints []string, key string) (time.Time, error) {
	c, err := clientv3.New(clientv3.Config{
		Endpoints: endpoints,
		Logger:    zap.NewNop(),
		DialOptions: []grpc.DialOption{
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithConnectParams(grpc.ConnectParams{
				Backoff:           backoff.Config{BaseDelay: 5 * time.Millisecond, Multiplier: 1.2, MaxDelay: 20 * time.Millisecond},
				MinConnectTimeout: time.Second,
			}),
		},
	})
	if err != nil {
		return time.Time{}, err
	}
	defer c.Close()
	for {
		actx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		_, err := c.Get(actx, key)
		cancel()
		if err == nil {
			return time.Now(), nil
		}
		if ctx.Err() != nil {
			return time.Time{}, fmt.Errorf("no read answered: %w", err)
		}
		// A poll's interval: the server is not serving yet.
		_ = sleepCtx(ctx, 2*time.Millisecond)
	}
}

// runRestart is a restart with many keys (issue #18): write -keys keys
// (not measured), read the server's memory, stop the server (SIGTERM) and
// start it again on the same data, and measure the time from starting the
// process to the first linearizable read it answers; then the memory of
// the restarted server (at once, and -rss-wait later), and a count of
// the keys, which must all be there. It needs servers that bench started
// (compare or sweep with -a-bin/-b-bin).
func runRestart(g global, args []string, stderr io.Writer) (report, error) {
	fs := newFlagSet("restart", stderr)
	keys := fs.Int("keys", 1000000, "keys written first (in transactions of 100 puts; not measured)")
	keySize := fs.Int("key-size", 16, "key size in bytes")
	valSize := fs.Int("val-size", 128, "value size in bytes")
	rssWait := fs.Duration("rss-wait", 5*time.Second, "read the restarted server's memory again this long after its first read")
	readyTimeout := fs.Duration("ready-timeout", 5*time.Minute, "give up if the restarted server answers no read for this long")
	if err := parse(fs, args); err != nil {
		return nil, err
	}
	if *keys < 1 || *keySize < 2 {
		return nil, fmt.Errorf("restart: -keys must be at least 1")
	}
	if g.restart == nil {
		return nil, fmt.Errorf("restart: needs a server that bench starts: use compare or sweep with -a-bin (and -b-bin)")
	}
	s, err := open(g)
	if err != nil {
		return nil, err
	}
	name := func(i int64) string { return keyName(keyPrefix, *keySize, i) }
	prefillStart := time.Now()
	if err := prefill(s, *keys, name, randomValue(*valSize)); err != nil {
		s.close()
		return nil, err
	}
	rep := append(header("restart", g), field{"keys", *keys}, field{"val_size", *valSize},
		field{"prefill_seconds", round(time.Since(prefillStart).Seconds(), 2)})
	rep = append(rep, dbSize(s.ctx, s.cs[0], g.endpoints)...)
	rep = append(rep, field{"rss_after_prefill_mib", rssNow(g.serverPIDs, "VmRSS")},
		field{"rss_anon_after_prefill_mib", rssNow(g.serverPIDs, "RssAnon")},
		field{"rss_file_after_prefill_mib", rssNow(g.serverPIDs, "RssFile")},
		field{"rss_peak_prefill_mib", rssNow(g.serverPIDs, "VmHWM")})
	oldPIDs := append([]int(nil), g.serverPIDs...)
	s.close()

	ctx, cancel := context.WithTimeout(context.Background(), g.timeout)
	defer cancel()
	fmt.Fprintf(g.progress, "restart: stopping and starting the server\n")
	started, pids, err := g.restart(ctx)
	if err != nil {
		return nil, err
	}
	rctx, rcancel := context.WithTimeout(ctx, *readyTimeout)
	served, err := firstRead(rctx, g.endpoints, name(0))
	rcancel()
	if err != nil {
		return nil, fmt.Errorf("restart: %w", err)
	}
	changed := len(pids) == len(oldPIDs)
	for i := range pids {
		if i < len(oldPIDs) && pids[i] == oldPIDs[i] {
			changed = false
		}
	}
	rep = append(rep, field{"restart_seconds", round(served.Sub(started).Seconds(), 3)},
		field{"restarted", changed},
		field{"rss_after_restart_mib", rssNow(pids, "VmRSS")},
		// Anonymous memory (the heap) and mapped files (the database
		// pages read) apart.
		field{"rss_anon_after_restart_mib", rssNow(pids, "RssAnon")},
		field{"rss_file_after_restart_mib", rssNow(pids, "RssFile")})
	if err := sleepCtx(ctx, *rssWait); err != nil {
		return nil, err
	}
	rep = append(rep, field{"rss_settled_after_restart_mib", rssNow(pids, "VmRSS")},
		field{"rss_peak_after_restart_mib", rssNow(pids, "VmHWM")})
	g.serverPIDs = pids
	s2, err := open(g)
	if err != nil {
		return nil, err
	}
	r, err := s2.cs[0].Get(s2.ctx, keyPrefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		s2.close()
		return nil, fmt.Errorf("restart: counting the keys: %w", err)
	}
	rep = append(rep, field{"keys_after_restart", r.Count})
	if r.Count != int64(*keys) {
		s2.close()
		return nil, fmt.Errorf("restart: %d keys after the restart, want %d", r.Count, *keys)
	}
	s2.close()
	return rep, nil
}
