package wal

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"
)

// ReadMetadata reads Create's metadata from the oldest segment's header,
// after segments were cut, and refuses a damaged header.
func TestReadMetadataReadsTheHeaderOnly(t *testing.T) {
	cfg, m := memConfig(4096)
	w := mustCreate(t, cfg, "member 1234, cluster 5678")
	for i := uint64(1); i <= 200; i += 10 {
		mustSave(t, w, hs(1, 1, i), ents(i, i+9, 1))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	names, _ := m.List(cfg.Dir)
	if len(names) < 2 {
		t.Fatalf("want several segments, have %v", names)
	}
	md, err := ReadMetadata(m, cfg.Dir)
	if err != nil || !bytes.Equal(md, []byte("member 1234, cluster 5678")) {
		t.Fatalf("ReadMetadata = %q, %v", md, err)
	}
	// A flipped byte in the metadata record fails its CRC.
	first := filepath.Join(cfg.Dir, names[0])
	patchFile(t, m, first, 40, []byte{0xff})
	if _, err := ReadMetadata(m, cfg.Dir); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("ReadMetadata of a damaged header = %v, want ErrCorrupt", err)
	}
	if _, err := ReadMetadata(m, "/nowhere"); err == nil {
		t.Fatal("ReadMetadata of a missing dir succeeded")
	}
}
