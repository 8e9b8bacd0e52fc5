package mvcc

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// initialMmapSize is the address space bbolt maps up front, as etcd's
// backend does (10 GiB). It costs no memory, only address space, and it keeps
// the database from being remapped while it is smaller: a remap must wait
// for every read transaction, so with a smaller map a commit that grows the
// file would wait for a snapshot streaming to a follower (minutes for a large
// database), stalling the member's loop.
const initialMmapSize = 10 << 30

// DBSnapshot is a consistent, read-only view of the whole database as of
// the entry boundary it was opened at, to be copied out: a raft snapshot
// streamed to a follower, Maintenance.Snapshot. It holds a bbolt read
// transaction, so writers go on while it is read; Close it when done (the
// database cannot be swapped or closed while one is open: defragmentation
// and Close wait for it). WriteTo may be called from any goroutine, once.
type DBSnapshot struct {
	tx    *bolt.Tx
	size  int64
	once  sync.Once
	cerr  error
	wrote bool
}

// OpenSnapshot commits the open batch at an entry boundary (see Snapshot)
// and returns a view of the committed database. It is cheap: no data is
// copied until WriteTo.
func (s *Store) OpenSnapshot() (*DBSnapshot, error) {
	tx, err := s.commitAndBeginRead()
	if err != nil {
		return nil, err
	}
	return &DBSnapshot{tx: tx, size: tx.Size()}, nil
}

// Size is the size in bytes of the database file WriteTo writes.
func (d *DBSnapshot) Size() int64 { return d.size }

// WriteTo writes the database file to w and returns the bytes written.
func (d *DBSnapshot) WriteTo(w io.Writer) (int64, error) {
	if d.wrote {
		return 0, errors.New("mvcc: snapshot already written")
	}
	d.wrote = true
	n, err := d.tx.WriteTo(w)
	if err != nil {
		return n, fmt.Errorf("mvcc: writing snapshot: %w", err)
	}
	return n, nil
}

// Close releases the read transaction. It is idempotent.
func (d *DBSnapshot) Close() error {
	d.once.Do(func() { d.cerr = d.tx.Rollback() })
	return d.cerr
}

// ReplaceDBFile replaces the whole database with the bbolt file at path (a
// received raft snapshot saved and synced by the caller), as ReplaceDB does,
// without copying it: the file is opened where it is and renamed over Path.
// Until that rename, path still holds the snapshot, so a crash at any point
// leaves either the old database and path, or the new database.
func (s *Store) ReplaceDBFile(path string) error {
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("mvcc: snapshot database: %w", err)
	}
	db, err := openDB(path, &s.cfg)
	if err != nil {
		return err
	}
	st, err := load(db)
	if err != nil {
		_ = db.Close()
		return err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.writable(); err != nil {
		_ = db.Close()
		return err
	}
	return s.swap(db, st, path, false)
}
