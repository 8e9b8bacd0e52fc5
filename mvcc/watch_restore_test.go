package mvcc

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// A synced watcher learns of a replaced database at once, not at the next
// write, which may never come: after a follower installs a snapshot and
// the cluster goes quiet, the watcher must still get the snapshot's events
// (found by the simulator: a member's watch stream ended two revisions
// short of its store).
func TestWatchersResyncAfterReplaceDBWithoutWrites(t *testing.T) {
	for _, file := range []bool{false, true} {
		t.Run(fmt.Sprintf("file=%v", file), func(t *testing.T) {
			src := openTest(t, testConfig(t))
			for i := 0; i < 5; i++ {
				mustPut(t, src, "k", fmt.Sprint(i)) // 2..6
			}
			var snap bytes.Buffer
			if _, err := src.Snapshot(&snap); err != nil {
				t.Fatal(err)
			}
			s := openTest(t, testConfig(t))
			mustPut(t, s, "k", "x") // 2
			ws := s.NewWatchStream(0)
			defer ws.Close()
			mustWatch(t, ws, AutoWatchID, "k", "", 0, false) // from 3
			drain(ws)
			if file {
				path := filepath.Join(t.TempDir(), "snap.db")
				if err := os.WriteFile(path, snap.Bytes(), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := s.ReplaceDBFile(path); err != nil {
					t.Fatal(err)
				}
			} else if err := s.ReplaceDB(&snap); err != nil {
				t.Fatal(err)
			}
			wantResponses(t, "after restore, no write", drain(ws), ""+
				"e0@6[PUT k=1 c2 m3 v2 | PUT k=2 c2 m4 v3 | PUT k=3 c2 m5 v4 | PUT k=4 c2 m6 v5]\n")
		})
	}
}
