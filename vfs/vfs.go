// Package vfs is the small file-system interface Cairn's write-ahead log is
// written against.
//
// Production passes OS(); tests and the simulator pass a *MemFS, which keeps
// every file's synced and unsynced bytes apart so that Crash can model a power
// cut, or a *Faulty wrapper that injects I/O errors.
package vfs

import (
	"io"
	"os"
	"path/filepath"
)

// File is an open file. A File is not safe for concurrent use unless its
// implementation says so.
type File interface {
	io.Reader
	io.ReaderAt
	io.Writer
	io.Seeker
	io.Closer
	// Sync makes the file's contents durable (fsync).
	Sync() error
	// Truncate changes the file's size; growing it fills with zeros. The
	// file offset is not changed.
	Truncate(size int64) error
	// Size returns the file's current size.
	Size() (int64, error)
}

// FS is a hierarchical file system. Names are slash- or OS-separated paths as
// accepted by path/filepath. Errors for missing or existing names wrap
// fs.ErrNotExist and fs.ErrExist so errors.Is works on them.
type FS interface {
	// Create creates the named file, or truncates it if it exists, and
	// opens it read-write at offset 0. The parent directory must exist.
	Create(name string) (File, error)
	// Open opens an existing file read-only at offset 0.
	Open(name string) (File, error)
	// OpenReadWrite opens an existing file read-write at offset 0.
	OpenReadWrite(name string) (File, error)
	// Remove removes a file or an empty directory.
	Remove(name string) error
	// RemoveAll removes dir and everything under it. A missing dir is not
	// an error.
	RemoveAll(dir string) error
	// Rename renames (moves) oldname to newname, replacing newname if it is
	// a file or an empty directory.
	Rename(oldname, newname string) error
	// MkdirAll creates dir and any missing parents.
	MkdirAll(dir string, perm os.FileMode) error
	// List returns the sorted base names of the entries of dir.
	List(dir string) ([]string, error)
	// Stat describes the named file or directory.
	Stat(name string) (os.FileInfo, error)
	// SyncDir makes the directory's entries (creations, renames, removals)
	// durable.
	SyncDir(dir string) error
}

// MkdirAllSynced is MkdirAll that also makes durable every directory it
// creates: it syncs, top down, the parent of each level that did not exist
// (a directory already there is taken as durable). Directories made with a
// plain MkdirAll, as with mkdir(2), can vanish in a power cut until their
// parent is synced, taking everything under them along.
func MkdirAllSynced(fsys FS, dir string, perm os.FileMode) error {
	dir = filepath.Clean(dir)
	var made []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := fsys.Stat(d); err == nil {
			break
		}
		made = append(made, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if err := fsys.MkdirAll(dir, perm); err != nil {
		return err
	}
	for i := len(made) - 1; i >= 0; i-- {
		if err := fsys.SyncDir(filepath.Dir(made[i])); err != nil {
			return err
		}
	}
	return nil
}
