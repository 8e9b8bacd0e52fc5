package etcdwal

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/cairnkv/cairn/node/wal"
	"github.com/cairnkv/cairn/vfs"
)

// ImportConfig configures Import.
type ImportConfig struct {
	FS vfs.FS
	// WALDir holds etcd's WAL; Import puts the Cairn WAL in its place.
	WALDir string
	// SnapDir is etcd's snapshot directory (member/snap), read for the
	// snapshot file matching the WAL's start marker; "" skips it.
	SnapDir string
	// Metadata makes the Cairn WAL's metadata from etcd's member and
	// cluster IDs (package node's format). Required.
	Metadata func(Metadata) ([]byte, error)
	// SegmentSize is the Cairn WAL's segment size (0: wal's default).
	SegmentSize int64
	// Logger receives the import's progress and a dropped torn tail; nil
	// means no logging.
	Logger *zap.Logger
}

// BackupDir is where Import moves etcd's WAL from walDir. Moving it back
// (after removing the Cairn WAL) restores the directory as etcd left it.
func BackupDir(walDir string) string { return filepath.Clean(walDir) + ".etcd-imported" }

// stagingDir is where Import builds the Cairn WAL before moving it into
// place. Whatever is there belongs to an import that did not finish.
func stagingDir(walDir string) string { return filepath.Clean(walDir) + ".cairn-import" }

// interrupted reports whether an Import stopped after moving etcd's WAL to
// its backup directory and before moving the Cairn WAL into walDir (which
// holds no segment).
func interrupted(fsys vfs.FS, walDir string) bool {
	if !wal.Exist(fsys, stagingDir(walDir)) {
		return false
	}
	_, err := listSegments(fsys, BackupDir(walDir))
	return err == nil
}

// Import converts the etcd WAL in cfg.WALDir into a Cairn WAL holding the
// same log: the metadata cfg.Metadata makes from etcd's IDs, the snapshot
// marker etcd would start from, the last HardState and the entries after
// the marker (see Read). The Cairn WAL is built beside the etcd one, checked
// by reading it back, and only then swapped in: etcd's WAL directory is
// renamed to BackupDir(cfg.WALDir), never deleted, and etcd's snapshot
// files are left where they are (Cairn does not read them). A crash at any
// point leaves a directory that Detect reports as etcd's (Import starts
// over) or as an interrupted import (Import finishes it). Import returns
// what it read from etcd's WAL.
//
// The member must be stopped (Import takes none of etcd's file locks).
// Import does not touch the database: the entries the WAL holds are applied
// to it when the member restarts, as for any WAL. When WALDir is a mount
// point it cannot be renamed and Import fails before changing anything.
func Import(cfg ImportConfig) (*Log, error) {
	if cfg.FS == nil || cfg.WALDir == "" || cfg.Metadata == nil {
		return nil, fmt.Errorf("%w: etcd wal import needs FS, WALDir and Metadata", wal.ErrInvalid)
	}
	lg := cfg.Logger
	if lg == nil {
		lg = zap.NewNop()
	}
	dir := filepath.Clean(cfg.WALDir)
	staging, backup := stagingDir(dir), BackupDir(dir)
	walCfg := wal.Config{FS: cfg.FS, Dir: staging, SegmentSize: cfg.SegmentSize, Logger: lg}

	format, err := Detect(cfg.FS, dir)
	if err != nil {
		return nil, err
	}
	switch format {
	case FormatEtcd:
	case FormatImportInterrupted:
		l, err := Read(cfg.FS, backup, cfg.SnapDir)
		if err != nil {
			return nil, err
		}
		if err := verify(walCfg, l, cfg.Metadata); err != nil {
			return nil, err
		}
		lg.Warn("finishing an interrupted import of an etcd WAL", zap.String("wal-dir", dir), zap.String("etcd-wal", backup))
		if err := swapIn(cfg.FS, staging, dir); err != nil {
			return nil, err
		}
		return l, nil
	case FormatCairn:
		return nil, fmt.Errorf("etcd wal: import: %s already holds a Cairn WAL: %w", dir, fs.ErrExist)
	default:
		return nil, fmt.Errorf("etcd wal: import: no WAL in %s: %w", dir, fs.ErrNotExist)
	}
	if _, err := cfg.FS.Stat(backup); err == nil {
		return nil, fmt.Errorf("etcd wal: import: %s already exists (the etcd WAL of an earlier import?); move it away first: %w", backup, fs.ErrExist)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("etcd wal: import: %w", err)
	}

	l, err := Read(cfg.FS, dir, cfg.SnapDir)
	if err != nil {
		return nil, err
	}
	if l.Snapshot.GetIndex() > 0 && l.Snapshot.ConfState == nil {
		return nil, fmt.Errorf("etcd wal: import: the snapshot marker at index %d has no conf state (written before etcd 3.5) and no snapshot file in %q has it",
			l.Snapshot.GetIndex(), cfg.SnapDir)
	}
	if l.TornTail != nil {
		lg.Warn("dropping the torn tail of the etcd WAL, as etcd would", zap.Error(l.TornTail))
	}
	md, err := cfg.Metadata(l.Metadata)
	if err != nil {
		return nil, fmt.Errorf("etcd wal: import: metadata: %w", err)
	}
	if err := cfg.FS.RemoveAll(staging); err != nil {
		return nil, fmt.Errorf("etcd wal: import: %w", err)
	}
	if err := write(walCfg, md, l); err != nil {
		return nil, err
	}
	if err := verify(walCfg, l, cfg.Metadata); err != nil {
		return nil, err
	}
	if err := cfg.FS.Rename(dir, backup); err != nil {
		return nil, fmt.Errorf("etcd wal: import: %w", err)
	}
	// Durable before the next rename, so no crash can keep the second
	// without the first.
	if err := cfg.FS.SyncDir(filepath.Dir(dir)); err != nil {
		return nil, fmt.Errorf("etcd wal: import: %w", err)
	}
	if err := swapIn(cfg.FS, staging, dir); err != nil {
		return nil, err
	}
	lg.Info("imported etcd WAL",
		zap.String("wal-dir", dir), zap.String("etcd-wal", backup),
		zap.String("member-id", fmt.Sprintf("%x", l.Metadata.NodeID)),
		zap.String("cluster-id", fmt.Sprintf("%x", l.Metadata.ClusterID)),
		zap.Uint64("snapshot-index", l.Snapshot.GetIndex()),
		zap.Uint64("commit", l.HardState.GetCommit()),
		zap.Int("entries", len(l.Entries)))
	return l, nil
}

// write creates the Cairn WAL at cfg.Dir holding l.
func write(cfg wal.Config, md []byte, l *Log) (err error) {
	w, err := wal.Create(cfg, md)
	if err != nil {
		return fmt.Errorf("etcd wal: import: %w", err)
	}
	defer func() {
		if cerr := w.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("etcd wal: import: %w", cerr)
		}
	}()
	if l.Snapshot.GetIndex() > 0 {
		if err := w.SaveSnapshot(l.Snapshot); err != nil {
			return fmt.Errorf("etcd wal: import: %w", err)
		}
	}
	if err := w.Save(l.HardState, l.Entries); err != nil {
		return fmt.Errorf("etcd wal: import: %w", err)
	}
	return nil
}

// verify reads the Cairn WAL at cfg.Dir back and checks it holds l.
func verify(cfg wal.Config, l *Log, metadata func(Metadata) ([]byte, error)) error {
	want, err := metadata(l.Metadata)
	if err != nil {
		return fmt.Errorf("etcd wal: import: metadata: %w", err)
	}
	w, err := wal.Open(cfg)
	if err != nil {
		return fmt.Errorf("etcd wal: import: reading back: %w", err)
	}
	defer w.Close()
	md, hs, snap, ents, err := w.ReadAll()
	if err != nil {
		return fmt.Errorf("etcd wal: import: reading back: %w", err)
	}
	if diff := sameLog(l, hs, snap, ents); diff != "" {
		return fmt.Errorf("etcd wal: import: the Cairn WAL in %s does not read back as the etcd WAL: %s", cfg.Dir, diff)
	} else if string(md) != string(want) {
		return fmt.Errorf("etcd wal: import: the Cairn WAL in %s has metadata %q, want %q", cfg.Dir, md, want)
	}
	return nil
}

// sameLog describes the first difference between l and what a Cairn WAL's
// ReadAll returned (but the metadata), or returns "" when they hold the same
// log.
func sameLog(l *Log, hs *raftpb.HardState, snap *raftpb.SnapshotMetadata, ents []*raftpb.Entry) string {
	if hs.GetTerm() != l.HardState.GetTerm() || hs.GetVote() != l.HardState.GetVote() || hs.GetCommit() != l.HardState.GetCommit() {
		return fmt.Sprintf("hardstate %v, want %v", hs, l.HardState)
	}
	if snap.GetIndex() != l.Snapshot.GetIndex() || snap.GetTerm() != l.Snapshot.GetTerm() ||
		(l.Snapshot.GetIndex() > 0 && !proto.Equal(snap.GetConfState(), l.Snapshot.GetConfState())) {
		return fmt.Sprintf("snapshot marker %v, want %v", snap, l.Snapshot)
	}
	if len(ents) != len(l.Entries) {
		return fmt.Sprintf("%d entries, want %d", len(ents), len(l.Entries))
	}
	for i := range ents {
		if !proto.Equal(ents[i], l.Entries[i]) {
			return fmt.Sprintf("entry %d: %v, want %v", i, ents[i], l.Entries[i])
		}
	}
	return ""
}

// swapIn renames the finished Cairn WAL at staging to dir and makes it
// durable.
func swapIn(fsys vfs.FS, staging, dir string) error {
	if err := fsys.Rename(staging, dir); err != nil {
		return fmt.Errorf("etcd wal: import: %w", err)
	}
	if err := fsys.SyncDir(filepath.Dir(dir)); err != nil {
		return fmt.Errorf("etcd wal: import: %w", err)
	}
	return nil
}
