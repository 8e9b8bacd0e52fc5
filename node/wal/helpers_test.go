package wal

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/cairnkv/cairn/vfs"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/protobuf/proto"
)

func ent(index, term uint64, data string) *raftpb.Entry {
	return &raftpb.Entry{
		Index: proto.Uint64(index),
		Term:  proto.Uint64(term),
		Type:  raftpb.EntryNormal.Enum(),
		Data:  []byte(data),
	}
}

// ents returns entries lo..hi (inclusive) at term, with data naming both.
func ents(lo, hi, term uint64) []*raftpb.Entry {
	var out []*raftpb.Entry
	for i := lo; i <= hi; i++ {
		out = append(out, ent(i, term, fmt.Sprintf("e%d-t%d", i, term)))
	}
	return out
}

func hs(term, vote, commit uint64) *raftpb.HardState {
	return &raftpb.HardState{Term: proto.Uint64(term), Vote: proto.Uint64(vote), Commit: proto.Uint64(commit)}
}

func snapMeta(index, term uint64, voters ...uint64) *raftpb.SnapshotMetadata {
	return &raftpb.SnapshotMetadata{
		Index:     proto.Uint64(index),
		Term:      proto.Uint64(term),
		ConfState: &raftpb.ConfState{Voters: voters},
	}
}

// memConfig returns a Config on a new MemFS. A segSize of 0 gives 64 KiB
// segments, big enough that the tests using it never rotate, small enough to
// keep them fast.
func memConfig(segSize int64) (Config, *vfs.MemFS) {
	if segSize == 0 {
		segSize = 64 << 10
	}
	m := vfs.NewMem()
	return Config{FS: m, Dir: "/data/wal", SegmentSize: segSize}, m
}

func mustCreate(t testing.TB, cfg Config, md string) *WAL {
	t.Helper()
	w, err := Create(cfg, []byte(md))
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return w
}

func mustSave(t testing.TB, w *WAL, st *raftpb.HardState, es []*raftpb.Entry) {
	t.Helper()
	if err := w.Save(st, es); err != nil {
		t.Fatalf("Save(%v, %d entries): %v", st, len(es), err)
	}
}

type readResult struct {
	md   []byte
	st   *raftpb.HardState
	snap *raftpb.SnapshotMetadata
	ents []*raftpb.Entry
}

// reopen opens cfg's WAL and reads it all; the WAL stays open for appending.
func reopen(t testing.TB, cfg Config) (*WAL, readResult) {
	t.Helper()
	w, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	md, st, snap, es, err := w.ReadAll()
	if err != nil {
		t.Fatalf("ReadAll: %v", err)
	}
	return w, readResult{md, st, snap, es}
}

func checkEntries(t testing.TB, got, want []*raftpb.Entry) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d entries (%s), want %d (%s)", len(got), span(got), len(want), span(want))
	}
	for i := range want {
		if !proto.Equal(got[i], want[i]) {
			t.Fatalf("entry %d = %v, want %v", i, got[i], want[i])
		}
	}
}

func span(es []*raftpb.Entry) string {
	if len(es) == 0 {
		return "none"
	}
	return fmt.Sprintf("%d..%d", es[0].GetIndex(), es[len(es)-1].GetIndex())
}

func checkHardState(t testing.TB, got, want *raftpb.HardState) {
	t.Helper()
	if got == nil || !proto.Equal(got, want) {
		t.Fatalf("HardState = %v, want %v", got, want)
	}
}

// segments lists the segment file names in cfg.Dir.
func segments(t testing.TB, cfg Config) []string {
	t.Helper()
	names, err := cfg.FS.List(cfg.Dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range names {
		if _, _, ok := parseSegmentName(n); ok {
			out = append(out, filepath.Join(cfg.Dir, n))
		}
	}
	return out
}

func observedLogger() (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(zap.InfoLevel)
	return zap.New(core), logs
}
