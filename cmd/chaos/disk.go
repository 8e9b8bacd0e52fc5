package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cairnkv/cairn/internal/faultfs"
	"github.com/cairnkv/cairn/internal/proc"
)

// Disk fault kinds: they put every member's data dir on a faultfs FUSE
// file system (internal/faultfs).
const (
	// FaultPower cuts the power of some members (kill -9, then every
	// write not fsynced and every name change not made durable by a
	// directory fsync is dropped), then restarts them.
	FaultPower = "power"
	// FaultDiskStall stalls every fsync of the leader for seconds.
	FaultDiskStall = "disk-stall"
	// FaultDiskEIO fails every write and fsync of a member with EIO: it
	// must exit with a clear error, then restart on the healed disk.
	FaultDiskEIO = "disk-eio"
	// FaultDiskFull fails every write of a member with ENOSPC, then frees
	// the space.
	FaultDiskFull = "disk-full"
)

// Shapes of a power cut.
const (
	PowerMinority = "minority"
	PowerMajority = "majority"
	PowerAll      = "all"
)

// diskKinds are the fault kinds that need the FUSE file system.
var diskKinds = []string{FaultPower, FaultDiskStall, FaultDiskEIO, FaultDiskFull}

// needsDisk reports whether kinds include one of diskKinds.
func needsDisk(kinds []string) bool {
	for _, k := range kinds {
		if slices.Contains(diskKinds, k) {
			return true
		}
	}
	return false
}

// scheduleDisk fills in a disk fault drawn by Schedule.
func scheduleDisk(rng *rand.Rand, n int, f *Fault) {
	switch f.Kind {
	case FaultPower:
		size := 0
		switch rng.IntN(3) {
		case 0:
			f.Shape, size = PowerMinority, (n-1)/2
		case 1:
			f.Shape, size = PowerMajority, n/2+1
		default:
			f.Shape, size = PowerAll, n
		}
		f.Minority = rng.Perm(n)[:size]
		slices.Sort(f.Minority)
	case FaultDiskStall:
		f.Leader = rng.IntN(4) != 0
		f.Delay = time.Second + time.Duration(rng.Int64N(int64(3*time.Second)))
		// The stall lasts at least one stalled fsync.
		f.For = max(f.For, f.Delay+500*time.Millisecond)
	case FaultDiskEIO, FaultDiskFull:
		f.Leader = rng.IntN(2) == 0
	}
}

// mountDisks puts each member's data dir on a faultfs file system, backed
// by a folder beside it.
func (c *cluster) mountDisks(dir string) error {
	if err := faultfs.Available(); err != nil {
		return fmt.Errorf("disk faults need FUSE: %w", err)
	}
	for _, m := range c.members {
		fs, err := faultfs.New(faultfs.Options{
			Backing:    filepath.Join(dir, m.Name+".disk"),
			Mountpoint: m.DataDir,
		})
		if err != nil {
			return err
		}
		m.disk = fs
	}
	return nil
}

// diskLog records what the disk faults did to the members, for the disk
// check.
type diskLog struct {
	mu sync.Mutex
	// problems are what went wrong: a member that went on after failed
	// writes, one that exited without naming its error, one that could
	// not restart.
	problems []string
	// exits counts members that exited on a failed write, by errno.
	exits map[string]int
	// survived counts faults after which the member still ran, having
	// failed no write (it wrote nothing meanwhile).
	survived int
}

func (d *diskLog) problem(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	// One line in the summary table, however many the error has.
	d.problems = append(d.problems, strings.Join(strings.Fields(fmt.Sprintf(format, args...)), " "))
}

// applyDisk starts disk fault f on the cluster and returns its undo.
func (nm *nemesis) applyDisk(ctx context.Context, f Fault, target int) (func() error, error) {
	c := nm.c
	switch f.Kind {
	case FaultPower:
		targets := f.Minority
		names := make([]string, len(targets))
		for i, t := range targets {
			names[i] = c.members[t].Name
		}
		nm.log("nemesis: power cut on %s (%s)", strings.Join(names, ", "), f.Shape)
		for _, t := range targets {
			m := c.members[t]
			if err := m.Kill(); err != nil && !errors.Is(err, proc.ErrNotRunning) {
				return nil, err
			}
		}
		for _, t := range targets {
			if err := c.members[t].disk.PowerCut(); err != nil {
				return nil, err
			}
		}
		return func() error {
			nm.log("nemesis: power back on %s", strings.Join(names, ", "))
			for _, t := range targets {
				if err := startMember(c.members[t]); err != nil {
					// Coming back corrupt, or refusing what the disk
					// kept, is a finding: the run goes on without it.
					nm.disk.problem("%s did not come back after a power cut: %v", c.members[t].Name, err)
					nm.log("nemesis: %s did not come back after a power cut", c.members[t].Name)
				}
			}
			return nil
		}, nil
	case FaultDiskStall:
		m := c.members[target]
		nm.log("nemesis: fsync stalls of %s on %s", f.Delay, m.Name)
		m.disk.SetFaults(faultfs.Faults{SyncDelay: f.Delay})
		return func() error {
			m.disk.ClearFaults()
			leader := "unknown"
			if l := c.leader(ctx, nm.clis); l >= 0 {
				leader = c.members[l].Name
			}
			nm.log("nemesis: fsyncs of %s at full speed (leader now %s)", m.Name, leader)
			return nil
		}, nil
	case FaultDiskEIO, FaultDiskFull:
		m := c.members[target]
		x := faultfs.Faults{WriteErr: syscall.EIO, SyncErr: syscall.EIO}
		if f.Kind == FaultDiskFull {
			x = faultfs.Faults{WriteErr: syscall.ENOSPC}
		}
		before := m.disk.Stats()
		nm.log("nemesis: %s on %s", x, m.Name)
		m.disk.SetFaults(x)
		return func() error {
			m.disk.ClearFaults()
			return nm.afterWriteErrors(m, f.Kind, x, before)
		}, nil
	}
	return nil, fmt.Errorf("unknown disk fault %q", f.Kind)
}

// fatalOnDisk matches the error a member must log when a write fails: the
// errno's text. The check also wants the path of the file in the same
// line.
var fatalOnDisk = map[string]*regexp.Regexp{
	FaultDiskEIO:  regexp.MustCompile(`input/output error`),
	FaultDiskFull: regexp.MustCompile(`no space left on device`),
}

// afterWriteErrors checks how m reacted to failed writes once the disk is
// healed: if it failed a write it must have exited, naming the error and
// a file of its data dir; a member that exited is restarted.
func (nm *nemesis) afterWriteErrors(m *member, kind string, x faultfs.Faults, before faultfs.Stats) error {
	after := m.disk.Stats()
	failed := (after.FailedWrites - before.FailedWrites) + (after.FailedSyncs - before.FailedSyncs)
	if m.Running() {
		if failed > 0 {
			// It may be on its way out; give it a moment.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, _, _ = m.Wait(ctx)
			cancel()
		}
		if m.Running() {
			if failed > 0 {
				nm.disk.problem("%s: %d writes failed (%s) and it went on running", m.Name, failed, x)
			} else {
				nm.disk.mu.Lock()
				nm.disk.survived++
				nm.disk.mu.Unlock()
			}
			nm.log("nemesis: disk of %s healed (%d failed writes, still running)", m.Name, failed)
			return nil
		}
	}
	tail := m.LogTail(30)
	line := ""
	for _, l := range strings.Split(tail, "\n") {
		if fatalOnDisk[kind].MatchString(l) {
			line = l
		}
	}
	switch {
	case line == "":
		nm.disk.problem("%s exited after %d failed writes (%s) without logging %q:\n%s", m.Name, failed, x, fatalOnDisk[kind], tail)
	case !strings.Contains(line, m.DataDir):
		nm.disk.problem("%s exited on %s without naming the file: %s", m.Name, x, strings.TrimSpace(line))
	default:
		nm.disk.mu.Lock()
		if nm.disk.exits == nil {
			nm.disk.exits = map[string]int{}
		}
		nm.disk.exits[kind]++
		nm.disk.mu.Unlock()
	}
	nm.log("nemesis: %s exited on the failing disk; disk healed, restart", m.Name)
	if err := startMember(m); err != nil {
		return fmt.Errorf("restart of %s on a healed disk: %w", m.Name, err)
	}
	return nil
}

// checkDisks is the verdict on the disk faults: every member that failed a
// write exited naming the error and the file, and the power cuts did
// drop unsynced state (else they proved nothing).
func checkDisks(c *cluster, nm *nemesis) Check {
	var cuts, pages, resizes, undone, stale, undoErrs int
	for _, m := range c.members {
		st := m.disk.Stats()
		cuts += st.PowerCuts
		pages += st.DroppedPages
		resizes += st.DroppedResizes
		undone += st.UndoneOps
		undoErrs += st.UndoErrors
		stale += st.StaleUndos
	}
	nm.disk.mu.Lock()
	defer nm.disk.mu.Unlock()
	detail := fmt.Sprintf("%d member power cuts dropped %d unsynced pages, %d size changes and %d name changes", cuts, pages, resizes, undone)
	if n := nm.disk.exits[FaultDiskEIO] + nm.disk.exits[FaultDiskFull]; n > 0 || nm.disk.survived > 0 {
		detail += fmt.Sprintf("; failing disks: %d exits on EIO, %d on ENOSPC, each naming its file; %d members wrote nothing meanwhile",
			nm.disk.exits[FaultDiskEIO], nm.disk.exits[FaultDiskFull], nm.disk.survived)
	}
	if undoErrs > 0 || stale > 0 {
		detail += fmt.Sprintf(" (%d undos failed, %d dropped as overtaken by durable changes)", undoErrs, stale)
	}
	if len(nm.disk.problems) > 0 {
		return fail("disk", "%s; %d problems: %s", detail, len(nm.disk.problems), strings.Join(first(nm.disk.problems, 3), "; "))
	}
	return pass("disk", "%s", detail)
}
