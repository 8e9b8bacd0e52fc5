package mvcc

import (
	"bytes"
	"fmt"
	"hash/crc32"
)

// Compact compacts the key space at rev: reads below rev fail with
// ErrCompacted from now on, and for every key only the newest revision at or
// below rev (unless it is a deletion) and later revisions stay. The
// compaction is recorded in the open batch; CompactStep removes the old
// revisions from disk. rev <= CompactRev() is ErrCompacted, rev > Rev() is
// ErrFutureRev. Writer goroutine only.
func (s *Store) Compact(rev int64) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case rev <= s.compactRev:
		return ErrCompacted
	case rev > s.rev:
		return ErrFutureRev
	}
	if err := s.tx.Bucket(metaBucket).Put(metaScheduledCompat, revKey(Revision{Main: rev}, false)); err != nil {
		return fmt.Errorf("mvcc: recording compaction: %w", err)
	}
	s.noteWrite(true)
	s.compactRev = rev
	// A compaction still in progress is subsumed: the new keep set is a
	// subset of the old one, and the scan restarts from the beginning.
	start := s.cfg.Clock.Now()
	keep := s.index.compact(rev)
	now := s.cfg.Clock.Now()
	if s.compObserver.Index != nil {
		s.compObserver.Index(now.Sub(start))
	}
	s.comp = &compaction{rev: rev, keep: keep, started: start}
	return nil
}

// compactionCatchUp bounds the batches of one CompactStep, so a step after
// a long wait holds the writer for a few milliseconds, not for as long as
// the wait.
const compactionCatchUp = 10

// CompactStep physically removes compacted revisions, in the open batch:
// it scans one batch of CompactionBatchLimit revisions, or, when the
// previous step was longer ago than CompactionPace, a batch per
// CompactionPace since then (at most compactionCatchUp). It reports done
// when no compaction is in progress (then it costs nothing). Writer
// goroutine only.
func (s *Store) CompactStep() (done bool, err error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.writable(); err != nil {
		return false, err
	}
	c := s.comp
	if c == nil {
		return true, nil
	}
	start := s.cfg.Clock.Now()
	if c.started.IsZero() {
		c.started = start
	}
	batches := 1
	if !c.last.IsZero() {
		batches = min(max(int(start.Sub(c.last)/s.cfg.CompactionPace), 1), compactionCatchUp)
	}
	c.last = start
	limit := batches * s.cfg.CompactionBatchLimit
	removed := 0
	if s.compObserver.Step != nil {
		defer func() {
			if err == nil {
				now := s.cfg.Clock.Now()
				st := CompactionStep{Keys: removed, Pause: now.Sub(start), Done: done}
				if done {
					st.Total = now.Sub(c.started)
				}
				s.compObserver.Step(st)
			}
		}()
	}
	kb := s.tx.Bucket(keyBucket)
	cur := kb.Cursor()
	var k []byte
	if c.next == nil {
		k, _ = cur.First()
	} else {
		k, _ = cur.Seek(c.next)
	}
	var drop [][]byte
	end := revKey(Revision{Main: c.rev + 1}, false)
	scanned := 0
	for ; k != nil && bytes.Compare(k, end) < 0 && scanned < limit; k, _ = cur.Next() {
		scanned++
		r, _, ok := parseRevKey(k)
		if !ok {
			return false, fmt.Errorf("mvcc: corrupt revision key %x in bucket %q", k, keyBucket)
		}
		if _, keep := c.keep[r]; !keep {
			drop = append(drop, append([]byte(nil), k...))
		}
	}
	finished := k == nil || bytes.Compare(k, end) >= 0
	if !finished {
		c.next = append([]byte(nil), k...)
	}
	for _, dk := range drop {
		if err := kb.Delete(dk); err != nil {
			return false, fmt.Errorf("mvcc: removing compacted revision: %w", err)
		}
		s.noteWrite(false)
		removed++
	}
	if !finished {
		return false, nil
	}
	if err := s.tx.Bucket(metaBucket).Put(metaFinishedCompact, revKey(Revision{Main: c.rev}, false)); err != nil {
		return false, fmt.Errorf("mvcc: recording compaction: %w", err)
	}
	s.noteWrite(false)
	s.mu.Lock()
	s.comp = nil
	s.mu.Unlock()
	return true, nil
}

// HashKV hashes the key space as of rev (0 = current) as etcd's HashKV does
// (see treeIndex.hashRevisions), so it gives etcd's number for the same
// data: CRC-32C of the bucket name "key", then of each hashed revision's
// bucket key and value. Two stores that applied the same writes and
// compactions agree, however far their physical compaction and commits
// have gone. It returns the revision hashed and the compacted revision.
// Safe for concurrent use.
func (s *Store) HashKV(rev int64) (hash uint32, hashRev, compactRev int64, err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, 0, 0, ErrClosed
	}
	switch {
	case rev > s.rev:
		return 0, 0, s.compactRev, ErrFutureRev
	case rev <= 0:
		rev = s.rev
	case rev < s.compactRev:
		return 0, 0, s.compactRev, ErrCompacted
	}
	sr := &snapReader{s: s}
	defer sr.close()
	h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	h.Write(keyBucket)
	for _, ra := range s.index.hashRevisions(rev, s.compactRev) {
		v, err := sr.value(ra.rev, ra.tomb)
		if err != nil {
			return 0, 0, s.compactRev, err
		}
		h.Write(revKey(ra.rev, ra.tomb))
		h.Write(v)
	}
	return h.Sum32(), rev, s.compactRev, nil
}
