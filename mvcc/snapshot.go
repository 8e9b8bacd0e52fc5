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
// transaction, so writers go on while it is read; Close it when done (Close
// of the store waits for it). WriteTo may be called from any goroutine.
type DBSnapshot struct {
	tx   *bolt.Tx
	size int64
	s    *Store
	once sync.Once
	cerr error
}

// OpenSnapshot commits the open batch at an entry boundary (see Snapshot)
// and returns a view of the committed database. It is cheap: no data is
// copied until WriteTo. The database can be swapped (defragmentation, a
// raft snapshot installed) while views of it are open: it is then retired,
// not closed, and the last view's Close closes it, so a slow reader of a
// snapshot never holds up the store.
func (s *Store) OpenSnapshot() (*DBSnapshot, error) {
	s.lockAtBoundary()
	defer s.wmu.Unlock()
	if err := s.writable(); err != nil {
		return nil, err
	}
	if err := s.commit(true); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	tx, err := s.db.Begin(false)
	if err != nil {
		return nil, fmt.Errorf("mvcc: beginning read: %w", err)
	}
	s.snaps.add(s.db)
	return &DBSnapshot{tx: tx, size: tx.Size(), s: s}, nil
}

// Size is the size in bytes of the database file WriteTo writes.
func (d *DBSnapshot) Size() int64 { return d.size }

// WriteTo writes the database file to w and returns the bytes written. It
// may be called again (a retry) until Close.
func (d *DBSnapshot) WriteTo(w io.Writer) (int64, error) {
	n, err := d.tx.WriteTo(w)
	if err != nil {
		return n, fmt.Errorf("mvcc: writing snapshot: %w", err)
	}
	return n, nil
}

// Close releases the view; the last view of a retired database closes it.
// It is idempotent.
func (d *DBSnapshot) Close() error {
	d.once.Do(func() {
		db := d.tx.DB()
		d.cerr = errors.Join(d.tx.Rollback(), d.s.snaps.release(db))
	})
	return d.cerr
}

// snapshotTracker counts the open DBSnapshots of each database, and holds
// the databases swapped out while some were open (retired) until the last
// of them closes. Its lock is taken after the store's.
type snapshotTracker struct {
	mu      sync.Mutex
	open    map[*bolt.DB]int
	retired map[*bolt.DB]bool
}

func (t *snapshotTracker) add(db *bolt.DB) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.open == nil {
		t.open = make(map[*bolt.DB]int)
	}
	t.open[db]++
}

// release counts one view of db closed, and closes db if it was retired
// and this was its last view.
func (t *snapshotTracker) release(db *bolt.DB) error {
	t.mu.Lock()
	t.open[db]--
	last := t.open[db] == 0
	if last {
		delete(t.open, db)
	}
	retired := last && t.retired[db]
	if retired {
		delete(t.retired, db)
	}
	t.mu.Unlock()
	if retired {
		return db.Close()
	}
	return nil
}

// retire closes db, swapped out of the store, or leaves it to its open
// views to close.
func (t *snapshotTracker) retire(db *bolt.DB) error {
	t.mu.Lock()
	if t.open[db] > 0 {
		if t.retired == nil {
			t.retired = make(map[*bolt.DB]bool)
		}
		t.retired[db] = true
		t.mu.Unlock()
		return nil
	}
	t.mu.Unlock()
	return db.Close()
}

// ReplaceDBFile replaces the whole database with the bbolt file at path (a
// received raft snapshot saved and synced by the caller), as ReplaceDB does,
// without copying it: the file is opened where it is and renamed over Path.
// Until that rename, path still holds the snapshot, so a crash at any point
// leaves either the old database and path, or the new database.
func (s *Store) ReplaceDBFile(path string) error {
	if err := s.replaceDBFile(path); err != nil {
		return err
	}
	s.resyncWatchers()
	return nil
}

func (s *Store) replaceDBFile(path string) error {
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
