package vfs

import (
	"errors"
	"fmt"
	"os"
	"sync"
)

// Op names a kind of file-system operation Faulty can fail.
type Op string

// The operations Faulty intercepts.
const (
	OpCreate    Op = "create"
	OpOpen      Op = "open" // Open and OpenReadWrite
	OpRemove    Op = "remove"
	OpRemoveAll Op = "removeall"
	OpRename    Op = "rename"
	OpMkdirAll  Op = "mkdirall"
	OpList      Op = "list"
	OpStat      Op = "stat"
	OpSyncDir   Op = "syncdir"
	OpRead      Op = "read" // Read and ReadAt
	OpWrite     Op = "write"
	OpSync      Op = "sync"
	OpTruncate  Op = "truncate"
)

// ErrInjected is the error Faulty returns for an operation it fails.
var ErrInjected = errors.New("vfs: injected fault")

// Faulty wraps an FS and fails chosen operations, for testing how callers
// handle I/O errors. A failed operation does nothing to the wrapped FS (a
// failed write writes no byte). Faulty is safe for concurrent use.
type Faulty struct {
	fs FS

	mu       sync.Mutex
	armed    map[Op]int // op -> successes still allowed before the one-shot fault
	hook     func(op Op, name string) error
	injected int
}

// NewFaulty returns a Faulty wrapping fs that injects nothing until told to.
func NewFaulty(fs FS) *Faulty { return &Faulty{fs: fs, armed: map[Op]int{}} }

// FailAfter arms a one-shot fault: after n more successful operations of kind
// op, the next one fails with an error wrapping ErrInjected; later ones succeed
// again. FailAfter(op, 0) fails the very next one. Arming op again replaces
// the previous count.
func (f *Faulty) FailAfter(op Op, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.armed[op] = n
}

// SetHook installs fn, called before every operation with its kind and file
// name; a non-nil result fails the operation with that error (wrapped with
// the op and name). A nil fn removes the hook. The hook runs under Faulty's
// lock and must not call back into f.
func (f *Faulty) SetHook(fn func(op Op, name string) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hook = fn
}

// Injected returns how many operations Faulty has failed so far.
func (f *Faulty) Injected() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.injected
}

// check decides whether the operation fails.
func (f *Faulty) check(op Op, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.hook != nil {
		if err := f.hook(op, name); err != nil {
			f.injected++
			return fmt.Errorf("vfs: %s %s: %w", op, name, err)
		}
	}
	if n, ok := f.armed[op]; ok {
		if n > 0 {
			f.armed[op] = n - 1
			return nil
		}
		delete(f.armed, op)
		f.injected++
		return fmt.Errorf("vfs: %s %s: %w", op, name, ErrInjected)
	}
	return nil
}

// Create implements FS.
func (f *Faulty) Create(name string) (File, error) {
	if err := f.check(OpCreate, name); err != nil {
		return nil, err
	}
	file, err := f.fs.Create(name)
	if err != nil {
		return nil, err
	}
	return &faultyFile{f: f, name: name, File: file}, nil
}

// Open implements FS.
func (f *Faulty) Open(name string) (File, error) {
	if err := f.check(OpOpen, name); err != nil {
		return nil, err
	}
	file, err := f.fs.Open(name)
	if err != nil {
		return nil, err
	}
	return &faultyFile{f: f, name: name, File: file}, nil
}

// OpenReadWrite implements FS.
func (f *Faulty) OpenReadWrite(name string) (File, error) {
	if err := f.check(OpOpen, name); err != nil {
		return nil, err
	}
	file, err := f.fs.OpenReadWrite(name)
	if err != nil {
		return nil, err
	}
	return &faultyFile{f: f, name: name, File: file}, nil
}

// Remove implements FS.
func (f *Faulty) Remove(name string) error {
	if err := f.check(OpRemove, name); err != nil {
		return err
	}
	return f.fs.Remove(name)
}

// RemoveAll implements FS.
func (f *Faulty) RemoveAll(dir string) error {
	if err := f.check(OpRemoveAll, dir); err != nil {
		return err
	}
	return f.fs.RemoveAll(dir)
}

// Rename implements FS. The hook sees oldname.
func (f *Faulty) Rename(oldname, newname string) error {
	if err := f.check(OpRename, oldname); err != nil {
		return err
	}
	return f.fs.Rename(oldname, newname)
}

// MkdirAll implements FS.
func (f *Faulty) MkdirAll(dir string, perm os.FileMode) error {
	if err := f.check(OpMkdirAll, dir); err != nil {
		return err
	}
	return f.fs.MkdirAll(dir, perm)
}

// List implements FS.
func (f *Faulty) List(dir string) ([]string, error) {
	if err := f.check(OpList, dir); err != nil {
		return nil, err
	}
	return f.fs.List(dir)
}

// Stat implements FS.
func (f *Faulty) Stat(name string) (os.FileInfo, error) {
	if err := f.check(OpStat, name); err != nil {
		return nil, err
	}
	return f.fs.Stat(name)
}

// SyncDir implements FS.
func (f *Faulty) SyncDir(dir string) error {
	if err := f.check(OpSyncDir, dir); err != nil {
		return err
	}
	return f.fs.SyncDir(dir)
}

type faultyFile struct {
	File
	f    *Faulty
	name string
}

func (ff *faultyFile) Read(p []byte) (int, error) {
	if err := ff.f.check(OpRead, ff.name); err != nil {
		return 0, err
	}
	return ff.File.Read(p)
}

func (ff *faultyFile) ReadAt(p []byte, off int64) (int, error) {
	if err := ff.f.check(OpRead, ff.name); err != nil {
		return 0, err
	}
	return ff.File.ReadAt(p, off)
}

func (ff *faultyFile) Write(p []byte) (int, error) {
	if err := ff.f.check(OpWrite, ff.name); err != nil {
		return 0, err
	}
	return ff.File.Write(p)
}

func (ff *faultyFile) Sync() error {
	if err := ff.f.check(OpSync, ff.name); err != nil {
		return err
	}
	return ff.File.Sync()
}

func (ff *faultyFile) Truncate(size int64) error {
	if err := ff.f.check(OpTruncate, ff.name); err != nil {
		return err
	}
	return ff.File.Truncate(size)
}
