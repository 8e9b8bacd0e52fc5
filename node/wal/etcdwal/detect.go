package etcdwal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"

	"github.com/cairnkv/cairn/node/wal"
	"github.com/cairnkv/cairn/vfs"
)

// Format is the kind of raft log a WAL directory holds.
type Format int

const (
	// FormatNone: no WAL segment in the directory (and no interrupted
	// import beside it).
	FormatNone Format = iota
	// FormatCairn: every segment is Cairn's (package wal).
	FormatCairn
	// FormatEtcd: every segment is etcd's; Import converts it.
	FormatEtcd
	// FormatImportInterrupted: an Import stopped between moving etcd's WAL
	// aside and putting the converted one in its place; Import finishes it.
	FormatImportInterrupted
)

func (f Format) String() string {
	switch f {
	case FormatNone:
		return "none"
	case FormatCairn:
		return "cairn"
	case FormatEtcd:
		return "etcd"
	case FormatImportInterrupted:
		return "interrupted etcd import"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// ErrUnknownFormat is wrapped by Detect's error for a directory whose
// segment files are not all Cairn's or all etcd's.
var ErrUnknownFormat = errors.New("etcd wal: unrecognized WAL format")

// headSize is how much of each segment Detect reads: enough for Cairn's
// segment record and for etcd's first frame (a crc record: 8 + 8 bytes).
const headSize = max(wal.SegmentHeadSize, 16)

// Detect tells which raft log walDir holds by reading the head of each of
// its segment files: Cairn's WAL starts every segment with a checksummed
// segment record (wal.StartsWithSegmentRecord), etcd's with a frame holding
// a crc record. Both name segments alike, so the names alone cannot tell.
// A directory mixing the two, or with a segment that is neither, is an
// error wrapping ErrUnknownFormat; neither reading is ever guessed.
func Detect(fsys vfs.FS, walDir string) (Format, error) {
	walDir = filepath.Clean(walDir)
	segs, err := listSegments(fsys, walDir)
	if errors.Is(err, fs.ErrNotExist) {
		if interrupted(fsys, walDir) {
			return FormatImportInterrupted, nil
		}
		return FormatNone, nil
	}
	if err != nil {
		return FormatNone, err
	}
	var cairn, etcd []string
	for _, s := range segs {
		path := filepath.Join(walDir, s.name)
		head, err := readHead(fsys, path, headSize)
		if err != nil {
			return FormatNone, err
		}
		isCairn, isEtcd := wal.StartsWithSegmentRecord(head), startsWithCRCRecord(head)
		switch {
		case isCairn && !isEtcd:
			cairn = append(cairn, s.name)
		case isEtcd && !isCairn:
			etcd = append(etcd, s.name)
		default:
			return FormatNone, fmt.Errorf("%w: %s starts with % x, neither a Cairn nor an etcd WAL segment", ErrUnknownFormat, path, head)
		}
	}
	switch {
	case len(etcd) == 0:
		return FormatCairn, nil
	case len(cairn) == 0:
		return FormatEtcd, nil
	}
	return FormatNone, fmt.Errorf("%w: %s mixes Cairn segments (%s...) and etcd segments (%s...)",
		ErrUnknownFormat, walDir, cairn[0], etcd[0])
}

// readHead returns the first n bytes of the named file, fewer if it is
// shorter.
func readHead(fsys vfs.FS, path string, n int) ([]byte, error) {
	f, err := fsys.Open(path)
	if err != nil {
		return nil, fmt.Errorf("etcd wal: %w", err)
	}
	defer f.Close()
	head := make([]byte, n)
	m, err := f.ReadAt(head, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("etcd wal: read %s: %w", path, err)
	}
	return head[:m], nil
}

// startsWithCRCRecord reports whether head begins with a well-formed etcd
// frame holding a crc record, as every etcd WAL segment does.
func startsWithCRCRecord(head []byte) bool {
	if len(head) < frameHeaderSize {
		return false
	}
	size, pad, ok := splitLengthWord(binary.LittleEndian.Uint64(head))
	if !ok || size == 0 || size+pad > int64(len(head)-frameHeaderSize) {
		return false
	}
	rec, err := parseRecord(head[frameHeaderSize : frameHeaderSize+size])
	if err != nil || rec.typ != typeCRC || len(rec.data) != 0 {
		return false
	}
	for _, c := range head[frameHeaderSize+size : frameHeaderSize+size+pad] {
		if c != 0 {
			return false
		}
	}
	return true
}
