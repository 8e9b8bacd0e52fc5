package etcdwal

import (
	"errors"
	"fmt"
)

// ErrCorrupt is wrapped by every error about bad data in etcd's files. Such
// errors are *CorruptError values naming the file and byte offset.
var ErrCorrupt = errors.New("etcd wal: corrupt")

// CorruptError describes bad data found in a WAL segment or snapshot file.
// It wraps ErrCorrupt.
type CorruptError struct {
	File   string // path of the file
	Offset int64  // byte offset of the bad record (0 for a whole-file problem)
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("etcd wal: corrupt data in %s at offset %d: %s", e.File, e.Offset, e.Reason)
}

// Unwrap returns ErrCorrupt.
func (e *CorruptError) Unwrap() error { return ErrCorrupt }

func corruptf(file string, off int64, format string, args ...any) *CorruptError {
	return &CorruptError{File: file, Offset: off, Reason: fmt.Sprintf(format, args...)}
}
