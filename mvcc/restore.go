package mvcc

import (
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/cairnkv/cairn/version"
)

// RestoreEdit is what RewriteForRestore changes in a database.
type RestoreEdit struct {
	// ConsistentIndex and Term are recorded as the last applied entry's.
	ConsistentIndex, Term uint64
	// ConfState is recorded as the raft configuration (etcd's JSON).
	ConfState []byte
	// Replace empties each named auxiliary bucket and fills it with the
	// given records (an empty map just empties it).
	Replace map[string]map[string][]byte
}

// RewriteForRestore makes the stopped database at path the start of a new
// cluster's member (cairnctl snapshot restore), in one bbolt transaction,
// without loading its key index: a multi-gigabyte snapshot is not read
// whole for a few records. It refuses a database from a Cairn build before
// etcd's format (ErrLegacyFormat) or one without the key and meta buckets,
// and records the storage version if the database has none, as Open does.
func RewriteForRestore(path string, e RestoreEdit) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{FreelistType: bolt.FreelistMapType})
	if err != nil {
		return fmt.Errorf("mvcc: opening %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		kb, mb := tx.Bucket(keyBucket), tx.Bucket(metaBucket)
		if kb == nil || mb == nil {
			return errors.New("not a Cairn or etcd database: no \"key\" or \"meta\" bucket")
		}
		if k, _ := kb.Cursor().First(); k != nil {
			if _, _, ok := parseRevKey(k); !ok {
				if legacyRevKey(k) {
					return ErrLegacyFormat
				}
				return fmt.Errorf("mvcc: corrupt revision key %x in bucket %q", k, keyBucket)
			}
		}
		if _, err := getCompactRev(mb, metaScheduledCompat); err != nil {
			return err
		}
		for name, records := range e.Replace {
			checkAuxBucket([]byte(name))
			if tx.Bucket([]byte(name)) != nil {
				if err := tx.DeleteBucket([]byte(name)); err != nil {
					return err
				}
			}
			b, err := tx.CreateBucket([]byte(name))
			if err != nil {
				return err
			}
			for k, v := range records {
				if err := b.Put([]byte(k), v); err != nil {
					return err
				}
			}
		}
		if err := putUint64(mb, metaConsistentIndex, e.ConsistentIndex); err != nil {
			return err
		}
		if err := putUint64(mb, metaTerm, e.Term); err != nil {
			return err
		}
		if e.ConfState != nil {
			if err := mb.Put(metaConfState, e.ConfState); err != nil {
				return err
			}
		}
		if mb.Get(metaStorageVersion) == nil {
			return mb.Put(metaStorageVersion, []byte(version.EtcdStorage))
		}
		return nil
	})
	if cerr := db.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("mvcc: rewriting %s for a restore: %w", path, err)
	}
	return nil
}
