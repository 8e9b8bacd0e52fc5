package node

import (
	"bytes"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/cairnkv/cairn/vfs"
)

// A staged snapshot database is saved with a checksum beside it
// (<index>.snap.db.crc32c, synced before the WAL's snapshot marker). A
// restart that finds the marker ahead of the database finishes the install
// from the staged file, and checks it first: a file the disk lost or tore
// after its sync is refused with a message naming it, instead of handing
// bbolt a database that would crash the member (a bbolt file shorter than
// its meta page faults on the mmap; a torn page panics its freelist scan).

const stagedSumSuffix = ".crc32c"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// stageMu orders the sidecar and the rename of concurrent deliveries of
// one snapshot, so the file in place always has its own checksum beside it.
var stageMu sync.Mutex

func newStagedHash() hash.Hash32 { return crc32.New(castagnoli) }

// encodeSum is the sidecar's contents for a file of size bytes hashed by h.
func encodeSum(h hash.Hash32, size int64) []byte {
	return fmt.Appendf(nil, "%08x %d\n", h.Sum32(), size)
}

// writeStagedSum writes the checksum sidecar of the staged file at path
// through fsys and syncs it (the caller syncs the directory).
func writeStagedSum(fsys vfs.FS, path string, sum []byte) error {
	f, err := fsys.Create(path + stagedSumSuffix)
	if err != nil {
		return err
	}
	if _, err := f.Write(sum); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// verifyStaged checks the staged file at path against its sidecar. A file
// staged without one (by an older Cairn) passes unchecked.
func verifyStaged(fsys vfs.FS, path string) error {
	want, err := readAll(fsys, path+stagedSumSuffix)
	if err != nil {
		if _, serr := fsys.Stat(path + stagedSumSuffix); serr != nil {
			return nil // no sidecar
		}
		return fmt.Errorf("node: reading the checksum of the staged snapshot database %s: %w", path, err)
	}
	fields := strings.Fields(string(want))
	if len(fields) != 2 {
		return fmt.Errorf("node: the checksum file of the staged snapshot database %s is damaged (%q)", path, bytes.TrimSpace(want))
	}
	wantSize, err := strconv.ParseInt(fields[1], 10, 64)
	if err != nil {
		return fmt.Errorf("node: the checksum file of the staged snapshot database %s is damaged (%q)", path, bytes.TrimSpace(want))
	}
	f, err := fsys.Open(path)
	if err != nil {
		return fmt.Errorf("node: opening the staged snapshot database: %w", err)
	}
	defer f.Close()
	h := newStagedHash()
	n, err := io.Copy(h, f)
	if err != nil {
		return fmt.Errorf("node: reading the staged snapshot database %s: %w", path, err)
	}
	got := strings.Fields(string(encodeSum(h, n)))
	if n != wantSize || got[0] != fields[0] {
		return fmt.Errorf("node: the staged snapshot database %s is damaged: %d bytes with crc32c %s, it was saved as %d bytes with crc32c %s; "+
			"remove the member's data dir and add it back, or restore it from a snapshot", path, n, got[0], wantSize, fields[0])
	}
	return nil
}

func readAll(fsys vfs.FS, path string) ([]byte, error) {
	f, err := fsys.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}
