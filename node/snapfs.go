package node

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"go.uber.org/zap"

	"github.com/cairnkv/cairn/vfs"
)

// Staged snapshot databases (member/snap) through Config.SnapFS. Without
// one they are files of the OS, renamed over the database in place. With
// one (the simulator's crashable memory file system) every write, sync and
// removal of a staged file goes through it, so a simulated crash keeps only
// what was synced; the database itself is a real bbolt file, so the install
// copies the staged file out beside it first.

func (c *Core) snapFS() vfs.FS {
	if c.cfg.SnapFS != nil {
		return c.cfg.SnapFS
	}
	return vfs.OS()
}

// saveStaged writes a received snapshot's database to path durably (file
// and directory synced).
func (c *Core) saveStaged(path string, data []byte) error {
	h := newStagedHash()
	_, _ = h.Write(data)
	sum := encodeSum(h, int64(len(data)))
	if c.cfg.SnapFS == nil {
		if err := writeStagedSum(vfs.OS(), path, sum); err != nil {
			return err
		}
		return writeFileSync(path, data)
	}
	fs := c.cfg.SnapFS
	// The staged file's directory must be durable too, not only its
	// entries: a new one a power cut takes, takes the file along.
	if err := vfs.MkdirAllSynced(fs, filepath.Dir(path), 0o700); err != nil {
		return err
	}
	if err := writeStagedSum(fs, path, sum); err != nil {
		return err
	}
	f, err := fs.Create(path)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if !c.cfg.Bugs.skipStagedSync() {
		if err := f.Sync(); err != nil {
			_ = f.Close()
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	return fs.SyncDir(filepath.Dir(path))
}

func (c *Core) stagedExists(path string) bool {
	_, err := c.snapFS().Stat(path)
	return err == nil
}

// installStaged swaps the database for the staged one at path, checked
// against its checksum first if verify is set (a restart finishing an
// install: the file was synced before a crash, which a faulty disk may not
// have honoured).
func (c *Core) installStaged(path string, verify bool) error {
	if verify {
		if err := verifyStaged(c.snapFS(), path); err != nil {
			return err
		}
	}
	if err := c.installStagedFile(path); err != nil {
		return err
	}
	// The checksum's file has done its work once the database is in
	// place (a crash before this leaves it for the next start to remove
	// with the staged snapshots never installed).
	if err := c.snapFS().Remove(path + stagedSumSuffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
		c.lg.Warn("removing a staged snapshot's checksum", zap.String("path", path+stagedSumSuffix), zap.Error(err))
	}
	return nil
}

func (c *Core) installStagedFile(path string) error {
	if c.cfg.SnapFS == nil {
		return c.replaceDBFrom(path)
	}
	in, err := c.cfg.SnapFS.Open(path)
	if err != nil {
		return fmt.Errorf("node: opening the staged snapshot database: %w", err)
	}
	defer in.Close()
	tmp := DBPath(c.cfg.DataDir) + ".snap-install"
	out, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("node: copying the staged snapshot database: %w", err)
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("node: copying the staged snapshot database: %w", err)
	}
	return c.replaceDBFrom(tmp)
}

// stagedNames lists the entries of the staged snapshots' directory.
func (c *Core) stagedNames(dir string) ([]string, error) { return c.snapFS().List(dir) }
