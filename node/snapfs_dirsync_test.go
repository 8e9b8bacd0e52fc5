package node

import (
	"testing"

	"github.com/cairnkv/cairn/vfs"
)

// TestSaveStagedMakesItsDirectoryDurable: a staged snapshot database saved
// through Config.SnapFS into a snap directory that did not exist survives
// a power cut, checksum and all. Before the save synced the directories it
// made, the crash took member/snap with the file in it, and the restart
// that had to finish the install found nothing to install.
func TestSaveStagedMakesItsDirectoryDurable(t *testing.T) {
	m := vfs.NewMem()
	c := &Core{cfg: Config{SnapFS: m}}
	path := snapDBPath("/data", 10)
	data := []byte("a staged snapshot database")
	if err := c.saveStaged(path, data); err != nil {
		t.Fatal(err)
	}
	after := m.Crash(nil, false)
	got, err := readAll(after, path)
	if err != nil {
		t.Fatalf("after a crash the staged file is gone: %v", err)
	}
	if string(got) != string(data) {
		t.Fatalf("after a crash the staged file holds %q, want %q", got, data)
	}
	if err := verifyStaged(after, path); err != nil {
		t.Fatal(err)
	}
	if _, err := after.Stat(path + stagedSumSuffix); err != nil {
		t.Fatalf("after a crash the checksum is gone: %v", err)
	}
}
