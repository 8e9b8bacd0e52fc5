package wal

import (
	"bytes"
	"errors"
	"testing"
)

// Verify reads what Open reads, reports a torn tail without repairing it,
// and reports corruption where Open does, changing no file.
func TestVerifyReadsOnly(t *testing.T) {
	for name, damage := range tornVariants() {
		t.Run("torn/"+name, func(t *testing.T) {
			cfg, _ := memConfig(4096)
			w := mustCreate(t, cfg, "md")
			mustSave(t, w, hs(1, 1, 3), ents(1, 5, 1))
			if err := w.SaveSnapshot(snapMeta(3, 1, 1, 2)); err != nil {
				t.Fatal(err)
			}
			_ = w.Close()
			path := segments(t, cfg)[0]
			recs, _ := records(t, cfg.FS, path)
			last := recs[len(recs)-1]
			damage(t, cfg, path, last)
			before, _ := readFile(cfg.FS, path)

			c, err := Verify(cfg.FS, cfg.Dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			if c.TornTail == nil || c.TornTail.File != path || c.TornTail.Offset != last.off {
				t.Fatalf("torn tail %v, want at %s:%d", c.TornTail, path, last.off)
			}
			// The torn record is the snapshot marker: it does not count.
			if string(c.Metadata) != "md" || c.HardState.GetCommit() != 3 || len(c.Entries) != 5 || c.LastIndex != 5 || c.Snapshot.GetIndex() != 0 {
				t.Errorf("read %q %v %d entries last %d marker %v; want md, commit 3, entries 1-5, no marker", c.Metadata, c.HardState, len(c.Entries), c.LastIndex, c.Snapshot)
			}
			if after, _ := readFile(cfg.FS, path); !bytes.Equal(before, after) {
				t.Errorf("Verify changed %s", path)
			}
		})
	}
	t.Run("corrupt", func(t *testing.T) {
		cfg, m, path := twentyEntries(t)
		recs, buf := records(t, m, path)
		mid := recs[len(recs)/2]
		patchFile(t, m, path, mid.off+headerSize+1, []byte{buf[mid.off+headerSize+1] ^ 1})
		_, err := Verify(cfg.FS, cfg.Dir, nil)
		var ce *CorruptError
		if !errors.As(err, &ce) || ce.File != path || ce.Offset != mid.off {
			t.Fatalf("Verify = %v, want a CorruptError at %s:%d", err, path, mid.off)
		}
		expectCorrupt(t, cfg, path, mid.off)
	})
}
