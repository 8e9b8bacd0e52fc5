package wal

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/cairnkv/cairn/vfs"
)

// metadataReadLimit bounds what ReadMetadata reads of the first segment:
// the segment and metadata records come first and are small.
const metadataReadLimit = 1 << 16

// ReadMetadata returns the metadata given to Create, read from the header
// of the WAL's oldest segment in dir without reading the log (Open and
// Verify read every segment). Its frames are checked (length and CRC).
func ReadMetadata(fsys vfs.FS, dir string) ([]byte, error) {
	names, err := fsys.List(dir)
	if err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	first := ""
	for _, n := range names { // sorted: the oldest segment first
		if _, _, ok := parseSegmentName(n); ok {
			first = n
			break
		}
	}
	if first == "" {
		return nil, fmt.Errorf("wal: no segment in %s", dir)
	}
	path := filepath.Join(dir, first)
	f, err := fsys.Open(path)
	if err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	defer f.Close()
	buf := make([]byte, metadataReadLimit)
	n, err := f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("wal: reading %s: %w", path, err)
	}
	buf = buf[:n]
	var off int64
	for i, want := range []kind{kindSegment, kindMetadata} {
		rec, size, st, reason := decodeRecord(buf, off)
		if st != frameOK {
			if reason == "" {
				reason = "segment header incomplete"
			}
			return nil, corruptf(path, off, "%s", reason)
		}
		if rec.kind != want {
			return nil, corruptf(path, off, "header record %d is a %v record, want %v", i, rec.kind, want)
		}
		if want == kindMetadata {
			return bytes.Clone(rec.payload), nil
		}
		off += size
	}
	panic("unreachable")
}
