package main

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/cairnkv/cairn/node"
	"github.com/cairnkv/cairn/node/wal"
	"github.com/cairnkv/cairn/vfs"
)

// TestWALIdentityIsWhatTheWALRecords: a restarting member takes its IDs
// from its WAL (a member added at run time has an ID the cluster chose,
// which --initial-cluster and the token do not give).
func TestWALIdentityIsWhatTheWALRecords(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	if _, _, ok := walIdentity(dir); ok {
		t.Fatal("walIdentity found a WAL in a missing folder")
	}
	meta, err := json.Marshal(node.WALMetadata{MemberID: 0x1234, ClusterID: 0x5678})
	if err != nil {
		t.Fatal(err)
	}
	w, err := wal.Create(wal.Config{FS: vfs.OS(), Dir: dir}, meta)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	member, cluster, ok := walIdentity(dir)
	if !ok || member != 0x1234 || cluster != 0x5678 {
		t.Fatalf("walIdentity = %x, %x, %v; want 1234, 5678, true", member, cluster, ok)
	}
}
