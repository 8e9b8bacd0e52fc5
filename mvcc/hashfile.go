package mvcc

import (
	"fmt"
	"hash/crc32"

	bolt "go.etcd.io/bbolt"
)

// HashKVFile is HashKV(rev) of the stopped database at path (cairnctl
// hashkv), computed without opening a Store and without writing to the
// file: it builds the key index as Open does, applies the recorded
// compaction, and hashes what HashKV hashes. progress, if not nil, is
// called with the revisions and bytes read so far while the index is
// built, and once more at the end. Its results and errors are HashKV's.
func HashKVFile(path string, rev int64, progress func(revisions, bytes int64)) (hash uint32, hashRev, compactRev int64, err error) {
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true})
	if err != nil {
		return 0, 0, 0, fmt.Errorf("mvcc: opening %s: %w", path, err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		kb, mb := tx.Bucket(keyBucket), tx.Bucket(metaBucket)
		if kb == nil || mb == nil {
			return fmt.Errorf("mvcc: %s has no %q or %q bucket", path, keyBucket, metaBucket)
		}
		index, cur := newTreeIndex(), int64(1)
		var n, bytes int64
		if err := indexRevisions(kb, index, func(r Revision, k, v []byte) {
			cur = max(cur, r.Main)
			n++
			bytes += int64(len(k) + len(v))
			if progress != nil && n%1024 == 0 {
				progress(n, bytes)
			}
		}); err != nil {
			return err
		}
		if progress != nil {
			progress(n, bytes)
		}
		scheduled, err := getCompactRev(mb, metaScheduledCompat)
		if err != nil {
			return err
		}
		// As Open: the recorded compaction is done logically, whether or
		// not its physical part finished; before any, HashKV reports -1.
		compactRev = -1
		if scheduled > 0 {
			compactRev = scheduled
			cur = max(cur, scheduled)
			index.compact(scheduled)
		}
		switch {
		case rev > cur:
			return ErrFutureRev
		case rev <= 0:
			rev = cur
		case rev < compactRev:
			return ErrCompacted
		}
		h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
		h.Write(keyBucket)
		for _, ra := range index.hashRevisions(rev, max(compactRev, 0)) {
			k := revKey(ra.rev, ra.tomb)
			v := kb.Get(k)
			if v == nil {
				return fmt.Errorf("mvcc: revision %v is in the index but not in bucket %q", ra.rev, keyBucket)
			}
			h.Write(k)
			h.Write(v)
		}
		hash, hashRev = h.Sum32(), rev
		return nil
	})
	if err != nil {
		return 0, 0, compactRev, err
	}
	return hash, hashRev, compactRev, nil
}
