package mvcc

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
)

func dirOf(path string) string { return filepath.Dir(path) }

// Snapshot commits the open batch (at an entry boundary, see the package
// documentation) and writes a consistent copy of the database file to w. It
// returns the bytes written. Safe for concurrent use; writers are not held
// up while w is written. The writer goroutine must not call it between an
// entry's writes and its SetConsistentIndex: it would wait forever (the same
// holds for Hash and Defrag).
func (s *Store) Snapshot(w io.Writer) (int64, error) {
	snap, err := s.OpenSnapshot()
	if err != nil {
		return 0, err
	}
	defer func() { _ = snap.Close() }()
	return snap.WriteTo(w)
}

// commitAndBeginRead commits at an entry boundary and returns a read
// transaction on the committed state.
func (s *Store) commitAndBeginRead() (*bolt.Tx, error) {
	s.lockAtBoundary()
	defer s.wmu.Unlock()
	if err := s.commit(true); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	tx, err := s.db.Begin(false)
	if err != nil {
		return nil, fmt.Errorf("mvcc: beginning read: %w", err)
	}
	return tx, nil
}

// Hash returns a CRC-32C of every bucket of the database except the
// consistent index and term (Maintenance.Hash). It commits first, at an entry
// boundary. Safe for concurrent use.
func (s *Store) Hash() (uint32, error) {
	tx, err := s.commitAndBeginRead()
	if err != nil {
		return 0, err
	}
	defer func() { _ = tx.Rollback() }()
	h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	err = tx.ForEach(func(name []byte, b *bolt.Bucket) error {
		h.Write(name)
		return b.ForEach(func(k, v []byte) error {
			if bytes.Equal(name, metaBucket) && (bytes.Equal(k, metaConsistentIndex) || bytes.Equal(k, metaTerm)) {
				return nil
			}
			h.Write(k)
			h.Write(v)
			return nil
		})
	})
	if err != nil {
		return 0, fmt.Errorf("mvcc: hashing: %w", err)
	}
	return h.Sum32(), nil
}

// Size returns the size in bytes of the database file.
func (s *Store) Size() int64 {
	size, _ := s.sizes()
	return size
}

// SizeInUse returns the bytes of the database file not on the free list.
func (s *Store) SizeInUse() int64 {
	_, inUse := s.sizes()
	return inUse
}

// sizes reads the file size and the bytes in use from one read txn; both
// are 0 once the store is closed.
func (s *Store) sizes() (size, inUse int64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, 0
	}
	tx, err := s.db.Begin(false)
	if err != nil {
		return 0, 0
	}
	defer func() { _ = tx.Rollback() }()
	st := s.db.Stats()
	return tx.Size(), tx.Size() - int64(st.FreePageN+st.PendingPageN)*int64(s.db.Info().PageSize)
}

// ReplaceDB replaces the whole database with the bbolt file read from r (a
// raft snapshot or a restore): it is written to a temporary file beside
// Path, fsynced and loaded, then swapped in; the open batch is discarded.
// Concurrent readers see the old or the new database, never a mix.
func (s *Store) ReplaceDB(r io.Reader) error {
	if err := s.replaceDB(r); err != nil {
		return err
	}
	s.resyncWatchers()
	return nil
}

func (s *Store) replaceDB(r io.Reader) error {
	tmp := s.cfg.Path + ".replace"
	if err := writeFileSync(tmp, r, !s.cfg.NoSync); err != nil {
		return err
	}
	db, err := openDB(tmp, &s.cfg)
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	st, err := load(db)
	if err != nil {
		_ = db.Close()
		_ = os.Remove(tmp)
		return err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.writable(); err != nil {
		_ = db.Close()
		_ = os.Remove(tmp)
		return err
	}
	return s.swap(db, st, tmp, false)
}

// swap closes the current database (rolling back the open batch, which the
// caller has committed or wants discarded), renames tmp over Path and
// installs st on db. wmu is held.
func (s *Store) swap(db *bolt.DB, st *state, tmp string, keepState bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.boundary.Broadcast()
	var errs []error
	if s.tx != nil {
		errs = append(errs, s.tx.Rollback())
		s.tx = nil
	}
	errs = append(errs, s.snaps.retire(s.db))
	if err := os.Rename(tmp, s.cfg.Path); err != nil {
		errs = append(errs, err)
	} else if !s.cfg.NoSync {
		errs = append(errs, syncDir(s.cfg.Path))
	}
	if err := errors.Join(errs...); err != nil {
		_ = db.Close()
		s.failed = fmt.Errorf("mvcc: swapping database: %w", err)
		s.closed = true
		return s.failed
	}
	if keepState {
		cur := s.state
		cur.db = db
		st = &cur
	}
	if err := s.install(st); err != nil {
		s.failed = err
		return err
	}
	return nil
}

func writeFileSync(path string, r io.Reader, sync bool) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("mvcc: creating %s: %w", path, err)
	}
	_, err = io.Copy(f, r)
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("mvcc: writing %s: %w", path, err)
	}
	return nil
}

// defragTxLimit is the number of keys Defrag copies per transaction.
const defragTxLimit = 10000

// Defrag rewrites the live data into a fresh file and swaps it in, giving
// free pages back to the file system. It commits first, at an entry boundary;
// writers wait until it is done, readers only during the swap; no write is
// lost. progress, if not nil, is called with keys copied and the total.
// Safe to call from any goroutine.
func (s *Store) Defrag(progress func(done, total int64)) error {
	s.lockAtBoundary()
	defer s.wmu.Unlock()
	if err := s.commit(true); err != nil {
		return err
	}
	tmp := s.cfg.Path + ".defrag"
	_ = os.Remove(tmp)
	dst, err := openDB(tmp, &s.cfg)
	if err != nil {
		return err
	}
	s.mu.RLock()
	src := s.db
	s.mu.RUnlock()
	if err := copyDB(src, dst, progress); err != nil {
		_ = dst.Close()
		_ = os.Remove(tmp)
		return err
	}
	return s.swap(dst, nil, tmp, true)
}

func copyDB(src, dst *bolt.DB, progress func(done, total int64)) error {
	stx, err := src.Begin(false)
	if err != nil {
		return fmt.Errorf("mvcc: defrag: %w", err)
	}
	defer func() { _ = stx.Rollback() }()
	var total int64
	_ = stx.ForEach(func(_ []byte, b *bolt.Bucket) error {
		total += int64(b.Stats().KeyN)
		return nil
	})
	// A new bbolt file starts with a freelist page that, with the freelist
	// not written (NoFreelistSync), the first commit frees: commit once
	// empty, so the copy can reuse that page rather than grow the file.
	if err := dst.Update(func(*bolt.Tx) error { return nil }); err != nil {
		return fmt.Errorf("mvcc: defrag: %w", err)
	}
	var copied func(keys, bytes int64)
	if progress != nil {
		copied = func(keys, _ int64) { progress(keys, total) }
	}
	done, _, err := CopyBuckets(stx, dst, copied)
	if err != nil {
		return fmt.Errorf("mvcc: defrag: %w", err)
	}
	if progress != nil {
		progress(done, total)
	}
	return nil
}

// CopyBuckets copies every bucket that stx sees into dst, densely packed
// (the copy of a defragmentation, here and in cairnctl's offline defrag),
// committing every defragTxLimit keys and calling progress, if not nil,
// with the keys and bytes copied so far after each such commit. It
// returns the keys and bytes copied once the last commit is done. A
// nested bucket is refused: neither Cairn nor etcd writes one.
func CopyBuckets(stx *bolt.Tx, dst *bolt.DB, progress func(keys, bytes int64)) (keys, bytes int64, err error) {
	dtx, err := dst.Begin(true)
	if err != nil {
		return 0, 0, err
	}
	var inTx int64
	err = stx.ForEach(func(name []byte, b *bolt.Bucket) error {
		db, err := dtx.CreateBucketIfNotExists(name)
		if err != nil {
			return err
		}
		db.FillPercent = 0.9
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if v == nil && b.Bucket(k) != nil {
				return fmt.Errorf("bucket %q holds a nested bucket %q: not a Cairn or etcd database", name, k)
			}
			if err := db.Put(k, v); err != nil {
				return err
			}
			keys++
			bytes += int64(len(k) + len(v))
			if inTx++; inTx >= defragTxLimit {
				if err := dtx.Commit(); err != nil {
					return err
				}
				if dtx, err = dst.Begin(true); err != nil {
					return err
				}
				inTx = 0
				if db = dtx.Bucket(name); db == nil {
					return fmt.Errorf("bucket %q vanished", name)
				}
				db.FillPercent = 0.9
				if progress != nil {
					progress(keys, bytes)
				}
			}
		}
		return nil
	})
	if err != nil {
		if dtx != nil { // nil when the next transaction could not begin
			_ = dtx.Rollback()
		}
		return 0, 0, err
	}
	if err := dtx.Commit(); err != nil {
		return 0, 0, err
	}
	return keys, bytes, nil
}
