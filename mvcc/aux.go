package mvcc

import (
	"bytes"
	"fmt"
)

func checkAuxBucket(bucket []byte) {
	if bytes.Equal(bucket, keyBucket) || bytes.Equal(bucket, metaBucket) || len(bucket) == 0 {
		panic(fmt.Sprintf("mvcc: auxiliary bucket name %q is reserved", bucket))
	}
}

// AuxPut sets key to value in an auxiliary bucket (created on first use), in
// the open batch. The bucket names "key" and "meta" are reserved (panic).
// Writer goroutine only.
func (s *Store) AuxPut(bucket, key, value []byte) {
	checkAuxBucket(bucket)
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.writable() != nil {
		return
	}
	b, err := s.tx.CreateBucketIfNotExists(bucket)
	if err == nil {
		err = b.Put(append([]byte(nil), key...), append([]byte(nil), value...))
	}
	if err != nil {
		s.failed = fmt.Errorf("mvcc: writing %q/%q: %w", bucket, key, err)
		return
	}
	s.noteWrite(true)
}

// AuxDelete removes key from an auxiliary bucket, in the open batch. Writer
// goroutine only.
func (s *Store) AuxDelete(bucket, key []byte) {
	checkAuxBucket(bucket)
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.writable() != nil {
		return
	}
	b := s.tx.Bucket(bucket)
	if b == nil {
		return
	}
	if err := b.Delete(key); err != nil {
		s.failed = fmt.Errorf("mvcc: deleting %q/%q: %w", bucket, key, err)
		return
	}
	s.noteWrite(true)
}

// AuxGet returns a copy of the value of key in an auxiliary bucket, seeing
// the open batch. Writer goroutine only.
func (s *Store) AuxGet(bucket, key []byte) ([]byte, bool) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.writable() != nil {
		return nil, false
	}
	b := s.tx.Bucket(bucket)
	if b == nil {
		return nil, false
	}
	v := b.Get(key)
	if v == nil {
		return nil, false
	}
	return append([]byte{}, v...), true
}

// AuxForEach calls fn with each key and value of an auxiliary bucket in key
// order, seeing the open batch, and stops at fn's first error, which it
// returns. k and v are valid only during the call; fn must not call the
// Store. Writer goroutine only.
func (s *Store) AuxForEach(bucket []byte, fn func(k, v []byte) error) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	b := s.tx.Bucket(bucket)
	if b == nil {
		return nil
	}
	return b.ForEach(fn)
}

// SetConfState records the raft configuration in meta ("confState"), as
// etcd does after each configuration change, in the open batch: js is the
// configuration in etcd's JSON. Writer goroutine only.
func (s *Store) SetConfState(js []byte) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.writable() != nil {
		return
	}
	if err := s.tx.Bucket(metaBucket).Put(metaConfState, append([]byte(nil), js...)); err != nil {
		s.failed = fmt.Errorf("mvcc: writing %q/%q: %w", metaBucket, metaConfState, err)
		return
	}
	s.noteWrite(true)
}
