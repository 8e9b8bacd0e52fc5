package sim

import (
	"errors"
	"math/rand/v2"
	"os"
	"time"

	"github.com/cairnkv/cairn/vfs"
)

// Power cuts inside the core's durable steps. In the seeds that draw them,
// some crashes are not taken between two events but armed: the member's
// file system loses power at its k-th next write, sync, create, rename or
// removal, wherever that falls (between a WAL write and its fsync, between
// the snapshot marker and the database swap, which the member finishes at
// its restart from the staged copy...). Opening a file counts too. A member
// about to install a snapshot gets such a cut in a third of the cases. That
// operation and every
// later one fail; the member then crashes as any other (only synced bytes
// survive, the last write may tear) and restarts later.

// errPowerCut is what a member's file system answers once its power is cut.
var errPowerCut = errors.New("sim: power cut")

// cutState is one incarnation's power: armed to fail after left more
// mutating operations.
type cutState struct {
	armed, fired bool
	left         int
	// down is how long the member stays down once the cut fires.
	down time.Duration
}

func (s *cutState) op() error {
	if s.fired {
		return errPowerCut
	}
	if s.armed {
		if s.left--; s.left <= 0 {
			s.fired = true
			return errPowerCut
		}
	}
	return nil
}

// drawCutsInside tells whether the seed's crashes may fall inside durable
// steps (half the seeds), from its own stream.
func drawCutsInside(seed uint64) bool {
	return rand.New(rand.NewPCG(seed, 0x435554)).IntN(2) == 0
}

// cutFS fails every mutating operation once s fired.
type cutFS struct {
	vfs.FS
	s *cutState
}

type cutFile struct {
	vfs.File
	s *cutState
}

func (f cutFS) wrap(file vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return cutFile{File: file, s: f.s}, nil
}

func (f cutFS) Create(name string) (vfs.File, error) {
	if err := f.s.op(); err != nil {
		return nil, err
	}
	return f.wrap(f.FS.Create(name))
}
func (f cutFS) Open(name string) (vfs.File, error) {
	if err := f.s.op(); err != nil {
		return nil, err
	}
	return f.wrap(f.FS.Open(name))
}
func (f cutFS) OpenReadWrite(name string) (vfs.File, error) {
	if err := f.s.op(); err != nil {
		return nil, err
	}
	return f.wrap(f.FS.OpenReadWrite(name))
}
func (f cutFS) Remove(name string) error {
	if err := f.s.op(); err != nil {
		return err
	}
	return f.FS.Remove(name)
}
func (f cutFS) RemoveAll(dir string) error {
	if err := f.s.op(); err != nil {
		return err
	}
	return f.FS.RemoveAll(dir)
}
func (f cutFS) Rename(oldname, newname string) error {
	if err := f.s.op(); err != nil {
		return err
	}
	return f.FS.Rename(oldname, newname)
}
func (f cutFS) MkdirAll(dir string, perm os.FileMode) error {
	if err := f.s.op(); err != nil {
		return err
	}
	return f.FS.MkdirAll(dir, perm)
}
func (f cutFS) SyncDir(dir string) error {
	if err := f.s.op(); err != nil {
		return err
	}
	return f.FS.SyncDir(dir)
}

func (f cutFile) Write(p []byte) (int, error) {
	if err := f.s.op(); err != nil {
		return 0, err
	}
	return f.File.Write(p)
}
func (f cutFile) Sync() error {
	if err := f.s.op(); err != nil {
		return err
	}
	return f.File.Sync()
}
func (f cutFile) Truncate(size int64) error {
	if err := f.s.op(); err != nil {
		return err
	}
	return f.File.Truncate(size)
}

// armCut makes n's next crash fall inside a durable step: after 1 to 12
// more mutating operations of its file system.
func (n *simNode) armCut(down time.Duration) {
	n.cut.armed, n.cut.left, n.cut.down = true, 1+n.c.rng.IntN(12), down
	n.c.report.Faults["cut-armed"]++
	n.c.tracef("arm a power cut on %s after %d disk operations", n.name(), n.cut.left)
}

// cutFired crashes n if its power was cut during the last event, and
// schedules its restart.
func (n *simNode) cutFired() bool {
	if n.core == nil || !n.cut.fired {
		return false
	}
	down := n.cut.down
	n.crash()
	n.c.report.Faults["crash-inside"]++
	n.c.tracef("the power cut hit %s inside a durable step", n.name())
	n.c.schedule(down, "", n.restart)
	return true
}
