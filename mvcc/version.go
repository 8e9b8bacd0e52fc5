package mvcc

import "fmt"

// StorageVersion is the storage version recorded in meta ("storageVersion",
// etcd's key), seeing the open batch; "" when none is recorded. Writer
// goroutine only.
func (s *Store) StorageVersion() string {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.writable() != nil {
		return ""
	}
	return string(s.tx.Bucket(metaBucket).Get(metaStorageVersion))
}

// SetStorageVersion records v ("3.6.0") as the storage version in meta, in
// the open batch, as etcd's storage-version migration does when the cluster
// version changes. Writer goroutine only.
func (s *Store) SetStorageVersion(v string) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.writable() != nil {
		return
	}
	if err := s.tx.Bucket(metaBucket).Put(metaStorageVersion, []byte(v)); err != nil {
		s.failed = fmt.Errorf("mvcc: writing %q/%q: %w", metaBucket, metaStorageVersion, err)
		return
	}
	s.noteWrite(false) // not part of an entry: the batch may commit with it at any time
}
