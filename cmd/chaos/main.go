// Command chaos runs Jepsen-style fault tests against a cluster of the real
// cairn binary on loopback.
//
// It starts -nodes members, each in its own data dir under the run folder,
// with every peer link going through a proxy that the nemesis can cut
// (blackhole or refuse), slow down or heal. Clients bound to one member
// each run get, put, delete and compare-and-set on a few keys, plus leases
// (granted with client-chosen IDs, keys attached, some kept alive, some
// revoked, the rest abandoned); every operation is recorded. A nemesis
// whose schedule follows from -seed kills (-9) and restarts, pauses
// (SIGSTOP/SIGCONT), partitions and delays members. Then every fault is
// healed and the run checks that the cluster serves again within -recover,
// that the history (including final reads of every key on every member) is
// linearizable, that the members converged to the same HashKV, and the
// lease invariants. It prints a summary whose last line is
// "N passed, M failed" and exits 1 if any check failed.
//
//	go run ./cmd/chaos -nodes 3 -duration 30s -seed 7 -faults kill,pause,partition -out /tmp/run
//
// -bug NAME builds cairn with the cairnbugs tag and plants a known bug
// (stale-reads, double-apply, followers-expire-leases, skip-wal-fsync) through
// CAIRN_PLANT_BUG, to show the checks
// catch it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/internal/proc"
	"github.com/cairnkv/cairn/linearizability"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// Bugs the daemon can plant (see cmd/cairn/bugs_on.go).
var plantable = []string{"stale-reads", "double-apply", "followers-expire-leases", "skip-wal-fsync"}

// options are the runner's flags.
type options struct {
	nodes        int
	duration     time.Duration
	seed         int64
	faults       []string
	out          string
	cairn        string
	bug          string
	perMember    int
	keys         int
	opTimeout    time.Duration
	think        time.Duration
	recover      time.Duration
	checkTimeout time.Duration
	extra        []string
	// auth turns etcd's auth on once the cluster serves; every client
	// then works as root (auth.go).
	auth bool
	// tls runs the members with mutual TLS on client and peer ports
	// (tls.go).
	tls bool
	// v2 adds the v2 API workload (v2.go).
	v2 bool
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{}
	var faults, extra string
	fs.IntVar(&o.nodes, "nodes", 3, "cluster size")
	fs.DurationVar(&o.duration, "duration", 30*time.Second, "length of the workload under faults")
	fs.Int64Var(&o.seed, "seed", 0, "seed of the fault schedule and the workload (0: from the clock)")
	fs.StringVar(&faults, "faults", "kill,pause,partition", "faults to inject: "+strings.Join(FaultKinds, ",")+" or none")
	fs.StringVar(&o.out, "out", "", "run folder for logs, data and history (default: a new temp dir)")
	fs.StringVar(&o.cairn, "cairn", "", "cairn binary to run (default: build ./cmd/cairn into the run folder)")
	fs.StringVar(&o.bug, "bug", "", "plant a bug ("+strings.Join(plantable, ", ")+"): builds cairn with -tags cairnbugs")
	fs.IntVar(&o.perMember, "clients", 2, "register clients per member")
	fs.IntVar(&o.keys, "keys", 5, "number of register keys")
	fs.DurationVar(&o.opTimeout, "op-timeout", 2*time.Second, "client request timeout")
	fs.DurationVar(&o.think, "think", 10*time.Millisecond, "mean pause between a client's operations")
	fs.DurationVar(&o.recover, "recover", 20*time.Second, "bound on the time the cluster may take to serve again after healing")
	fs.DurationVar(&o.checkTimeout, "check-timeout", 2*time.Minute, "bound on the linearizability check")
	fs.StringVar(&extra, "cairn-flags", "", "extra flags for every member, space separated")
	fs.BoolVar(&o.auth, "auth", false, "turn auth on once the cluster serves: clients log in as root, so logins, lost tokens after restarts and the checks at apply run under faults too")
	fs.BoolVar(&o.tls, "tls", false, "client and peer mutual TLS with certificates made for the run (the peer proxies terminate and re-originate TLS)")
	fs.BoolVar(&o.v2, "v2", false, v2Usage)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if o.faults, err = ParseFaults(faults); err != nil {
		return nil, err
	}
	if o.nodes < 1 || o.nodes > 9 {
		return nil, fmt.Errorf("-nodes %d: want 1..9", o.nodes)
	}
	if o.bug != "" && !slices.Contains(plantable, o.bug) {
		return nil, fmt.Errorf("-bug %q: want one of %s", o.bug, strings.Join(plantable, ", "))
	}
	if o.seed == 0 {
		o.seed = time.Now().UnixNano() % 1_000_000
	}
	o.extra = strings.Fields(extra)
	if o.v2 {
		if o.tls {
			return nil, fmt.Errorf("-v2 does not run with -tls")
		}
		o.extra = append(o.extra, "--enable-v2")
	}
	if o.auth {
		// etcd's lowest bcrypt cost: every restart makes every client
		// log in again, and at the default cost (10) the logins of a
		// race-checked member on a busy machine starve its raft loop;
		// the runs test faults, not password hashing. -cairn-flags
		// come after, so they can set another.
		o.extra = append([]string{"--bcrypt-cost", "4"}, o.extra...)
	}
	return o, nil
}

// run is the whole runner; it returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "chaos: %v\n", err)
		return 2
	}
	checks, err := runChaos(o, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "chaos: %v\n", err)
		fmt.Fprintln(stdout, "0 passed, 1 failed")
		return 1
	}
	for _, c := range checks {
		if c.Verdict == Fail {
			return 1
		}
	}
	return 0
}

// buildCairn builds cmd/cairn into dir (with the cairnbugs tag if tagged).
func buildCairn(dir string, tagged bool) (string, error) {
	return buildCairnWith(dir, tagged, false)
}

// buildCairnWith builds cmd/cairn into dir, with the race detector if race.
func buildCairnWith(dir string, tagged, race bool) (string, error) {
	out := filepath.Join(dir, "cairn")
	o := proc.BuildOptions{Race: race}
	if tagged {
		o.Tags = []string{"cairnbugs"}
	}
	return out, proc.Build(out, proc.CairnPackage, o)
}

// runLog writes timestamped lines to the run's nemesis log and, for
// nemesis events, to stdout.
type runLog struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
}

func (l *runLog) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "%8s  %s\n", fmtDur(time.Since(l.start)), fmt.Sprintf(format, args...))
}

func runChaos(o *options, stdout io.Writer) ([]Check, error) {
	if o.out == "" {
		d, err := os.MkdirTemp("", fmt.Sprintf("cairn-chaos-%d-", o.seed))
		if err != nil {
			return nil, err
		}
		o.out = d
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return nil, err
	}
	bin := o.cairn
	if bin == "" {
		var err error
		if bin, err = buildCairn(o.out, o.bug != ""); err != nil {
			return nil, err
		}
	}
	var env []string
	if o.bug != "" {
		env = append(env, "CAIRN_PLANT_BUG="+o.bug)
	}
	faults := strings.Join(o.faults, ",")
	if faults == "" {
		faults = "none"
	}
	fmt.Fprintf(stdout, "cairn chaos: %d nodes, %s, seed %d, faults %s, bug %q\nrun folder: %s\n",
		o.nodes, o.duration, o.seed, faults, o.bug, o.out)
	nlf, err := os.Create(filepath.Join(o.out, "nemesis.log"))
	if err != nil {
		return nil, err
	}
	defer nlf.Close()
	rl := &runLog{w: io.MultiWriter(nlf, stdout), start: time.Now()}

	token := fmt.Sprintf("cairn-chaos-%d-%d", o.seed, time.Now().UnixNano())
	var rt *runTLS
	if o.tls {
		if rt, err = newRunTLS(filepath.Join(o.out, "tls"), o.nodes); err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
	}
	c, err := newCluster(bin, o.out, o.nodes, token, env, o.extra, rt)
	if err != nil {
		return nil, err
	}
	defer c.stop()
	if needsDisk(o.faults) {
		if err := c.mountDisks(o.out); err != nil {
			return nil, err
		}
		rl.printf("data dirs on faultfs (FUSE): power cuts drop what was not fsynced")
	}
	for _, m := range c.members {
		if err := startMember(m); err != nil {
			return nil, err
		}
	}
	clis := make([]*clientv3.Client, len(c.members))
	for i, m := range c.members {
		if clis[i], err = m.client(rt); err != nil {
			return nil, err
		}
		defer clis[i].Close()
	}
	if d, err := waitServing(clis, time.Now().Add(30*time.Second)); err != nil {
		return nil, fmt.Errorf("cluster did not start: %w", err)
	} else {
		rl.printf("cluster serving after %s", fmtDur(d))
	}
	if rt != nil {
		rl.printf("mutual TLS on client and peer ports, certificates in %s", rt.dir)
	}
	if err := c.checkIDs(clis); err != nil {
		return nil, err
	}
	if o.auth {
		if err := enableAuth(clis[0]); err != nil {
			return nil, err
		}
		for i, m := range c.members {
			clis[i].Close()
			if clis[i], err = m.clientAs(rt, chaosRootUser, chaosRootPassword); err != nil {
				return nil, err
			}
		}
		rl.printf("auth enabled: clients work as %s", chaosRootUser)
	}

	// Watchers, one per member, from revision 1, if the Watch API is served.
	watchOK, err := watchAvailable(clis[0])
	if err != nil {
		return nil, fmt.Errorf("probing the Watch API: %w", err)
	}
	var watchers []*watcher
	watchCtx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	if watchOK {
		for i, cli := range clis {
			wt := &watcher{member: i, cli: cli}
			watchers = append(watchers, wt)
			go wt.run(watchCtx)
		}
	}

	sched := Schedule(o.seed, o.nodes, o.duration, o.faults)
	schedLines := make([]string, len(sched))
	for i, f := range sched {
		schedLines[i] = f.String()
	}
	if err := os.WriteFile(filepath.Join(o.out, "schedule.txt"), []byte(strings.Join(schedLines, "\n")+"\n"), 0o644); err != nil {
		return nil, err
	}

	keys := make([]string, o.keys)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%d", i)
	}
	start := time.Now()
	w := &workload{
		c: c, clis: clis, start: start, keys: keys, seed: o.seed, perMember: o.perMember,
		opTimeout: o.opTimeout, think: o.think, log: rl.printf,
	}
	w.rec = linearizability.NewRecorder(w.now)
	v2w := newV2WorkloadFor(o, c, start, rl.printf)
	nm := &nemesis{c: c, clis: clis, start: start, log: rl.printf, counts: map[string]int{}}

	// Safety phase: workload and faults.
	ctx, cancel := context.WithTimeout(context.Background(), o.duration)
	defer cancel()
	keepCtx, stopKeep := context.WithCancel(context.Background())
	defer stopKeep()
	var wg sync.WaitGroup
	var nemErr error
	wg.Go(func() {
		if nemErr = nm.run(ctx, sched); nemErr != nil {
			rl.printf("nemesis: %v: the run stops", nemErr)
			cancel()
		}
	})
	wg.Go(func() { w.run(ctx, keepCtx) })
	if v2w != nil {
		wg.Go(func() { v2w.run(ctx) })
	}
	wg.Wait()
	if nemErr != nil {
		return nil, fmt.Errorf("nemesis: %w", nemErr)
	}
	crashed := c.crashed()

	// Liveness phase: heal everything; the cluster must serve again.
	rl.printf("heal: every link up, every member running")
	c.net.HealAll()
	var checks []Check
	var unstartable []string
	for _, m := range c.members {
		_ = m.Resume()
		if !m.Running() {
			if err := startMember(m); err != nil {
				// A member that cannot start on what its disk kept
				// (after a power cut, say) is a finding, not the end
				// of the run: the other checks still run.
				rl.printf("heal: %v", err)
				unstartable = append(unstartable, strings.Join(strings.Fields(err.Error()), " "))
			}
		}
	}
	if len(unstartable) > 0 {
		checks = append(checks, fail("restart", "%d members do not start: %s", len(unstartable), strings.Join(unstartable, "; ")))
	}
	if len(crashed) > 0 {
		checks = append(checks, fail("no-crash", "members exited by themselves: %v (see their logs)", crashed))
	} else {
		checks = append(checks, pass("no-crash", "no member exited except by the nemesis"))
	}
	healAt := time.Now()
	took, err := waitServing(clis, healAt.Add(o.recover))
	if err != nil {
		checks = append(checks, fail("serves-after-heal", "not every member serves %v after healing: %v", o.recover, err))
	} else {
		checks = append(checks, pass("serves-after-heal", "every member served a write and a linearizable read %s after healing (bound %s)", fmtDur(took), o.recover))
	}

	// Abandoned leases must be gone once their TTL has run out after the
	// cluster served again (a new leader restarts lease clocks).
	servedAt := time.Now()
	due := servedAt.Add(time.Duration(leaseTTL[leaseAbandoned])*time.Second + 3*time.Second)
	w.mu.Lock()
	for _, l := range w.leases {
		if l.kind == leaseAbandoned {
			if t := l.grantCall.Add(l.ttl + 3*time.Second); t.After(due) {
				due = t
			}
		}
	}
	w.mu.Unlock()
	rl.printf("waiting %s for abandoned leases to expire", fmtDur(time.Until(due)))
	time.Sleep(time.Until(due))
	checks = append(checks, w.checkLeases(clis[0])...)

	// Final reads of every key on every member, into the history.
	allKeys := slices.Clone(keys)
	w.mu.Lock()
	for _, l := range w.leases {
		allKeys = append(allKeys, l.key)
	}
	w.mu.Unlock()
	missing := w.finalReads(allKeys, time.Now().Add(o.recover))
	if len(missing) > 0 {
		checks = append(checks, fail("final-reads", "%d of %d final reads never completed: %s", len(missing), len(allKeys)*len(clis), strings.Join(first(missing, 3), ", ")))
	} else {
		checks = append(checks, pass("final-reads", "%d keys read on each of %d members", len(allKeys), len(clis)))
	}
	if v2w != nil {
		checks = append(checks, v2w.finalChecks(o.out, time.Now().Add(o.recover))...)
	}
	stopKeep()
	w.timers.Wait()

	urls := make([]string, len(c.members))
	for i, m := range c.members {
		urls[i] = m.ClientURL
	}
	conv, rev := checkConvergence(clis, urls, time.Now().Add(o.recover))
	checks = append(checks, conv)
	switch {
	case !watchOK:
		checks = append(checks, Check{Name: "watch", Verdict: Skip, Detail: "the Watch API answers Unimplemented: watch checks skipped"})
	case rev == 0:
		checks = append(checks, fail("watch", "not checked: the members never agreed on a revision"))
	default:
		checks = append(checks, checkWatches(watchers, rev, time.Now().Add(o.recover)))
	}
	stopWatch()

	if needsDisk(o.faults) {
		checks = append(checks, checkDisks(c, nm))
	}
	if slices.Contains(o.faults, FaultMembers) {
		checks = append(checks, checkMembers(c, nm, time.Now().Add(o.recover)))
	}

	rl.printf("checking linearizability")
	hist := w.rec.History()
	checks = append(checks, checkLinearizable(hist, o.out, o.checkTimeout))

	summary := formatSummary(o, w, nm, checks)
	fmt.Fprint(stdout, summary)
	if err := os.WriteFile(filepath.Join(o.out, "summary.txt"), []byte(summary), 0o644); err != nil {
		return checks, err
	}
	return checks, nil
}

// checkIDs makes sure the member IDs the proxies rely on are the ones the
// members use.
func (c *cluster) checkIDs(clis []*clientv3.Client) error {
	for i, m := range c.members {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		st, err := clis[i].Status(ctx, m.ClientURL)
		cancel()
		if err != nil {
			return fmt.Errorf("status of %s: %w", m.Name, err)
		}
		if id := m.id.Load(); st.Header.MemberId != id {
			return fmt.Errorf("%s has member ID %x, the proxies expect %x", m.Name, st.Header.MemberId, id)
		}
	}
	return nil
}

// formatSummary renders the summary table and the final verdict line.
func formatSummary(o *options, w *workload, nm *nemesis, checks []Check) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n== summary (seed %d, %d nodes, %s)\n", o.seed, o.nodes, o.duration)
	fmt.Fprintf(&b, "%-22s ok %d   failed %d   unknown %d\n", "operations",
		w.stats.ok.Load(), w.stats.failed.Load(), w.stats.unknown.Load())
	labels := make([]string, 0, len(nm.counts))
	for l := range nm.counts {
		labels = append(labels, l)
	}
	slices.Sort(labels)
	var fs []string
	total := 0
	for _, l := range labels {
		fs = append(fs, fmt.Sprintf("%s %d", l, nm.counts[l]))
		total += nm.counts[l]
	}
	if len(fs) == 0 {
		fs = []string{"none"}
	}
	fmt.Fprintf(&b, "%-22s %d: %s\n", "faults", total, strings.Join(fs, ", "))
	w.mu.Lock()
	byKind := map[string]int{}
	for _, l := range w.leases {
		byKind[l.kind]++
	}
	w.mu.Unlock()
	fmt.Fprintf(&b, "%-22s kept %d   revoked %d   abandoned %d\n", "leases", byKind[leaseKept], byKind[leaseRevoked], byKind[leaseAbandoned])
	fmt.Fprintf(&b, "%-22s %s\n", "check", "verdict")
	passed, failed := 0, 0
	for _, c := range checks {
		fmt.Fprintf(&b, "%-22s %s  %s\n", c.Name, c.Verdict, c.Detail)
		switch c.Verdict {
		case Pass:
			passed++
		case Fail:
			failed++
		}
	}
	fmt.Fprintf(&b, "run folder: %s\n", o.out)
	fmt.Fprintf(&b, "%d passed, %d failed\n", passed, failed)
	return b.String()
}
