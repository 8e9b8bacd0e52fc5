package wal

import (
	"errors"
	"fmt"
)

// ErrCorrupt is wrapped by every error about bad data on disk. Such errors
// are *CorruptError values naming the file and byte offset.
var ErrCorrupt = errors.New("wal: corrupt")

// ErrFailed is wrapped by the errors Save and SaveSnapshot return once an
// earlier write or fsync has failed; the original error is wrapped too.
var ErrFailed = errors.New("wal: unusable after a failed write or sync")

// ErrClosed is returned by operations on a closed WAL.
var ErrClosed = errors.New("wal: closed")

// ErrInvalid is wrapped by errors about calls that break the WAL's contract
// (for example entries with a gap in their indexes). Nothing is written and
// the WAL stays usable.
var ErrInvalid = errors.New("wal: invalid argument")

// CorruptError describes bad data found in a WAL file. It wraps ErrCorrupt.
type CorruptError struct {
	File   string // path of the segment file
	Offset int64  // byte offset of the bad record in File
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("wal: corrupt record in %s at offset %d: %s", e.File, e.Offset, e.Reason)
}

// Unwrap returns ErrCorrupt.
func (e *CorruptError) Unwrap() error { return ErrCorrupt }

func corruptf(file string, off int64, format string, args ...any) error {
	return &CorruptError{File: file, Offset: off, Reason: fmt.Sprintf(format, args...)}
}
