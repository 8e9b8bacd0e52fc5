package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/internal/proc"
)

// Fault kinds accepted by -faults.
const (
	FaultKill      = "kill"      // SIGKILL, then restart on the same data dir
	FaultPause     = "pause"     // SIGSTOP, then SIGCONT
	FaultPartition = "partition" // peer links cut through the proxies
	FaultDelay     = "delay"     // peer links of one member slowed down
)

// FaultKinds lists every fault kind, in the order of the summary.
var FaultKinds = []string{FaultKill, FaultPause, FaultPartition, FaultDelay, FaultPower, FaultDiskStall, FaultDiskEIO, FaultDiskFull, FaultMembers}

// Partition shapes.
const (
	PartIsolate       = "isolate"        // one member cut from all others, both ways
	PartIsolateLeader = "isolate-leader" // the current leader cut off
	PartSplit         = "split"          // a minority cut from the majority
	PartOneWay        = "one-way"        // a single directed link cut
)

// Fault is one step of a nemesis schedule. Everything in it is decided by
// the seed; only "the leader" is resolved when the fault starts.
type Fault struct {
	At  time.Duration // since the start of the workload
	For time.Duration // how long the fault lasts before it is undone
	// Kind is one of the Fault* constants; Shape is a Part* constant for
	// partitions.
	Kind, Shape string
	// Target is the member a kill, pause, delay or isolate hits; with
	// Leader set it is the fallback when no leader is known.
	Target int
	Leader bool
	// Minority lists the members cut off by a split; From→To is the link
	// of a one-way cut.
	Minority []int
	From, To int
	// Mode is how cut links behave (blackhole or refuse).
	Mode LinkMode
	// Delay is the added latency of a delay fault.
	Delay time.Duration
}

// Label names the fault in the summary, e.g. "partition/isolate-leader".
func (f Fault) Label() string {
	if f.Shape != "" {
		return f.Kind + "/" + f.Shape
	}
	return f.Kind
}

func (f Fault) String() string {
	s := fmt.Sprintf("%s %s for %s", fmtDur(f.At), f.Label(), fmtDur(f.For))
	switch {
	case f.Kind == FaultPartition && f.Shape == PartSplit:
		s += fmt.Sprintf(" minority %v (%s)", f.Minority, f.Mode)
	case f.Kind == FaultPartition && f.Shape == PartOneWay:
		s += fmt.Sprintf(" m%d→m%d (%s)", f.From, f.To, f.Mode)
	case f.Kind == FaultPartition:
		s += fmt.Sprintf(" m%d (%s)", f.Target, f.Mode)
	case f.Kind == FaultDelay:
		s += fmt.Sprintf(" m%d +%s", f.Target, f.Delay)
	case f.Kind == FaultPower:
		s += fmt.Sprintf(" members %v", f.Minority)
	case f.Kind == FaultDiskStall:
		s += fmt.Sprintf(" m%d fsyncs +%s", f.Target, f.Delay)
	default:
		s += fmt.Sprintf(" m%d", f.Target)
	}
	if f.Leader {
		s += " (leader if known)"
	}
	return s
}

func fmtDur(d time.Duration) string { return d.Round(10 * time.Millisecond).String() }

// ParseFaults parses a comma-separated -faults value ("" or "none": no
// faults).
func ParseFaults(s string) ([]string, error) {
	if s == "" || s == "none" {
		return nil, nil
	}
	var out []string
	for _, k := range strings.Split(s, ",") {
		k = strings.TrimSpace(k)
		if !slices.Contains(FaultKinds, k) {
			return nil, fmt.Errorf("unknown fault %q (want some of %s)", k, strings.Join(FaultKinds, ","))
		}
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out, nil
}

// Schedule returns the faults of a run: one at a time, starting after a
// calm first second, each lasting 0.5–3.5 s with 0.3–2 s of calm between,
// the last one undone before the end of the workload (duration). The same
// arguments always give the same schedule.
func Schedule(seed int64, n int, duration time.Duration, kinds []string) []Fault {
	if len(kinds) == 0 || n < 2 {
		return nil
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x6e656d65736973))
	var out []Fault
	at := time.Second
	for {
		f := Fault{
			At:     at,
			For:    500*time.Millisecond + time.Duration(rng.Int64N(int64(3*time.Second))),
			Kind:   kinds[rng.IntN(len(kinds))],
			Target: rng.IntN(n),
			Mode:   LinkBlackhole,
		}
		if rng.IntN(2) == 0 {
			f.Mode = LinkRefuse
		}
		switch f.Kind {
		case FaultKill, FaultPause:
			f.Leader = rng.IntN(2) == 0
		case FaultDelay:
			f.Delay = 20*time.Millisecond + time.Duration(rng.Int64N(int64(280*time.Millisecond)))
		case FaultPower, FaultDiskStall, FaultDiskEIO, FaultDiskFull:
			scheduleDisk(rng, n, &f)
		case FaultMembers:
			scheduleMembers(rng, &f)
		case FaultPartition:
			switch rng.IntN(4) {
			case 0:
				f.Shape = PartIsolate
			case 1:
				f.Shape, f.Leader = PartIsolateLeader, true
			case 2:
				f.Shape = PartSplit
				perm := rng.Perm(n)
				f.Minority = perm[:(n-1)/2]
				slices.Sort(f.Minority)
			default:
				f.Shape = PartOneWay
				f.From = rng.IntN(n)
				f.To = (f.From + 1 + rng.IntN(n-1)) % n
			}
		}
		if f.At+f.For > duration-500*time.Millisecond {
			return out
		}
		out = append(out, f)
		at = f.At + f.For + 300*time.Millisecond + time.Duration(rng.Int64N(int64(1700*time.Millisecond)))
	}
}

// nemesis runs a schedule against a cluster.
type nemesis struct {
	c     *cluster
	clis  []*clientv3.Client // one per member, for leader lookups
	start time.Time
	log   func(format string, args ...any)
	// counts of faults applied, by label
	counts map[string]int
	// disk records the members' reactions to failing disks.
	disk diskLog
	// members records the membership changes.
	members membersLog
}

// run applies the schedule until it ends or ctx is done, undoing each
// fault after its duration. It returns the first error that makes the run
// meaningless (a member that cannot be restarted).
func (nm *nemesis) run(ctx context.Context, sched []Fault) error {
	for _, f := range sched {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Until(nm.start.Add(f.At))):
		}
		undo, err := nm.apply(ctx, f)
		if err != nil {
			return err
		}
		select {
		case <-ctx.Done():
		case <-time.After(f.For):
		}
		if err := undo(); err != nil {
			return err
		}
	}
	return nil
}

// apply starts fault f and returns the function that undoes it.
func (nm *nemesis) apply(ctx context.Context, f Fault) (func() error, error) {
	c := nm.c
	target := f.Target
	if f.Leader {
		if l := c.leader(ctx, nm.clis); l >= 0 {
			target = l
		}
	}
	m := c.members[target]
	nm.counts[f.Label()]++
	switch f.Kind {
	case FaultKill:
		nm.log("nemesis: kill -9 %s", m.Name)
		if err := m.Kill(); err != nil && !errors.Is(err, proc.ErrNotRunning) {
			return nil, err
		}
		return func() error {
			nm.log("nemesis: restart %s", m.Name)
			return startMember(m)
		}, nil
	case FaultPause:
		nm.log("nemesis: SIGSTOP %s", m.Name)
		if err := m.Pause(); err != nil {
			nm.log("nemesis: %v", err)
		}
		return func() error {
			nm.log("nemesis: SIGCONT %s", m.Name)
			if err := m.Resume(); err != nil {
				nm.log("nemesis: %v", err)
			}
			return nil
		}, nil
	case FaultPower, FaultDiskStall, FaultDiskEIO, FaultDiskFull:
		return nm.applyDisk(ctx, f, target)
	case FaultMembers:
		return nm.applyMembers(f, target)
	case FaultDelay:
		nm.log("nemesis: delay links of %s by %s", m.Name, f.Delay)
		links := isolateLinks(len(c.members), target)
		for _, l := range links {
			c.net.Set(l[0], l[1], LinkUp, f.Delay)
		}
		return nm.healer(links, "delay of "+m.Name), nil
	}
	var links [][2]int
	switch f.Shape {
	case PartIsolate, PartIsolateLeader:
		links = isolateLinks(len(c.members), target)
		nm.log("nemesis: isolate %s (%s)", m.Name, f.Mode)
	case PartSplit:
		links = splitLinks(len(c.members), f.Minority)
		nm.log("nemesis: split minority %v from the rest (%s)", f.Minority, f.Mode)
	case PartOneWay:
		links = [][2]int{{f.From, f.To}}
		nm.log("nemesis: cut m%d→m%d (%s)", f.From, f.To, f.Mode)
	}
	for _, l := range links {
		c.net.Set(l[0], l[1], f.Mode, 0)
	}
	return nm.healer(links, f.Label()), nil
}

func (nm *nemesis) healer(links [][2]int, what string) func() error {
	return func() error {
		nm.log("nemesis: heal %s", what)
		for _, l := range links {
			nm.c.net.Set(l[0], l[1], LinkUp, 0)
		}
		return nil
	}
}

// isolateLinks lists every link into and out of member v.
func isolateLinks(n, v int) [][2]int {
	var out [][2]int
	for j := 0; j < n; j++ {
		if j != v {
			out = append(out, [2]int{v, j}, [2]int{j, v})
		}
	}
	return out
}

// splitLinks lists every link between the minority and the others.
func splitLinks(n int, minority []int) [][2]int {
	var out [][2]int
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			if slices.Contains(minority, i) != slices.Contains(minority, j) {
				out = append(out, [2]int{i, j})
			}
		}
	}
	return out
}
