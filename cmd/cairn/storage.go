package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cairnkv/cairn/config"
	"github.com/cairnkv/cairn/node"
	"github.com/cairnkv/cairn/vfs"
)

// applyCoreFlags sets what the member's flags say about its raft core and
// storage on c: --unsafe-no-fsync, --memory-mlock, --compaction-batch-limit,
// --pre-vote and --initial-election-tick-advance.
func applyCoreFlags(c *node.Config, cfg *config.Config) {
	if cfg.UnsafeNoFsync {
		// As etcd's: neither the WAL nor bbolt is synced, and the WAL's
		// fsync histogram stays empty, since no fsync is called.
		c.WALFS = vfs.NoSync(vfs.OS())
		c.BackendNoSync = true
		c.ObserveWALSave = func(time.Duration) {}
	}
	c.BackendMlock = cfg.MemoryMlock
	c.CompactionBatchLimit = cfg.CompactionBatchLimit
	c.CompactionPace = cfg.CompactionSleepInterval
	c.DisablePreVote = !cfg.PreVote
	c.NoInitialElectionTickAdvance = !cfg.InitialElectionTickAdvance
}

// compactHashCheckTime is server.Config's CompactHashCheckTime: the
// interval, or negative (off) when the CompactHashCheck feature gate is.
func compactHashCheckTime(cfg *config.Config) time.Duration {
	if !cfg.FeatureGates.Enabled(config.GateCompactHashCheck) {
		return -1
	}
	return cfg.CompactHashCheckTime
}

// checkDirs checks, as etcd does at start, that the member can write where
// it keeps its data, instead of failing minutes later when the WAL cuts a
// new segment: it creates the data dir, its member/ and member/snap/
// directories if missing and writes a file in each, and writes one in the
// WAL dir if it exists (a new member's WAL dir is created, and so tried,
// at once). The errors are etcd's.
func checkDirs(dataDir, walDir string) error {
	member := filepath.Join(dataDir, "member")
	if err := touchDirAll(dataDir); err != nil {
		return fmt.Errorf("cannot access data directory: %w", err)
	}
	if err := touchDirAll(member); err != nil {
		return fmt.Errorf("cannot access member directory: %w", err)
	}
	if err := touchDirAll(filepath.Dir(node.DBPath(dataDir))); err != nil {
		return fmt.Errorf("failed to create snapshot directory: %w", err)
	}
	if _, err := os.Stat(walDir); err == nil {
		if err := isDirWriteable(walDir); err != nil {
			return fmt.Errorf("cannot write to WAL directory: %w", err)
		}
	}
	return nil
}

// touchDirAll creates dir (0700, as etcd) if missing and checks that it
// is writable.
func touchDirAll(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return isDirWriteable(dir)
}

// isDirWriteable writes and removes dir/.touch, as etcd's fileutil does.
func isDirWriteable(dir string) error {
	f := filepath.Join(dir, ".touch")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		return err
	}
	return os.Remove(f)
}

// explainStartError adds what to do to the start errors whose cause the
// operator controls.
func explainStartError(err error, cfg *config.Config) error {
	if err == nil {
		return nil
	}
	if cfg.MemoryMlock && strings.Contains(err.Error(), "mlock error") {
		return fmt.Errorf("%w (--memory-mlock needs the CAP_IPC_LOCK capability or a locked-memory limit, ulimit -l, above the database's size)", err)
	}
	return err
}
