package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"
	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/pkg/v3/cobrautl"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/mvcc"
	"github.com/cairnkv/cairn/node"
)

// lockTimeout is how long the offline commands wait for the database's
// file lock, held by a running member (etcdutl's --timeout default).
var lockTimeout = 10 * time.Second

// withOfflineDefrag adds etcdutl's --data-dir to etcdctl's defrag: with it,
// the database of a stopped member is defragmented in place; without it,
// etcdctl's online defrag runs.
func withOfflineDefrag(cmd *cobra.Command) *cobra.Command {
	var dataDir string
	online := cmd.Run
	cmd.Short = "Defragments the storage of the members with given endpoints, or offline the data dir of a stopped member (--data-dir)"
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "Defragments a data directory not in use by cairn or etcd (offline, like etcdutl defrag).")
	cmd.MarkFlagDirname("data-dir")
	cmd.Run = func(cmd *cobra.Command, args []string) {
		if dataDir == "" {
			online(cmd, args)
			return
		}
		if err := defragDataDir(dataDir, newLogger(), os.Stderr); err != nil {
			cobrautl.ExitWithError(cobrautl.ExitError, fmt.Errorf("Failed to defragment etcd data[%s] (%w)", dataDir, err))
		}
	}
	return cmd
}

// openLocked opens a database for writing, waiting at most lockTimeout for
// a running member to let go of it.
func openLocked(path string, opts *bolt.Options) (*bolt.DB, error) {
	o := bolt.Options{Timeout: lockTimeout, FreelistType: bolt.FreelistMapType}
	if opts != nil {
		o = *opts
		o.Timeout = lockTimeout
	}
	db, err := bolt.Open(path, 0o600, &o)
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("%s is locked (is a member running on it?): %w", path, err)
	}
	return db, err
}

// defragDataDir rewrites the database of the stopped member at dataDir
// into a fresh file holding only its live pages and swaps it in, as
// etcdutl defrag --data-dir does. A crash leaves either file whole: the
// copy is synced before it replaces the original.
func defragDataDir(dataDir string, lg *zap.Logger, progressW io.Writer) error {
	path := node.DBPath(dataDir)
	_, err := os.Stat(path)
	if err != nil {
		return err
	}
	src, err := openLocked(path, nil)
	if err != nil {
		return err
	}
	defer func() {
		if src != nil {
			src.Close()
		}
	}()
	start := time.Now()
	size, inUse := dbSizes(src)
	lg.Info("defragmenting", zap.String("path", path), zap.Int64("current-db-size-bytes", size), zap.String("current-db-size", humanize.Bytes(uint64(size))),
		zap.Int64("current-db-size-in-use-bytes", inUse), zap.String("current-db-size-in-use", humanize.Bytes(uint64(inUse))))
	tmp := path + ".defrag"
	_ = os.Remove(tmp)
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{FreelistType: bolt.FreelistMapType})
	if err != nil {
		return err
	}
	p := startProgress(progressW, "defrag: copying "+path, 0) // records: no byte total
	if err := copyBuckets(src, dst, p); err != nil {
		dst.Close()
		os.Remove(tmp)
		return err
	}
	p.done()
	newSize, newInUse := dbSizes(dst)
	if err := dst.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := src.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	src = nil
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	lg.Info("finished defragmenting directory", zap.String("path", path),
		zap.Int64("current-db-size-bytes-diff", newSize-size), zap.Int64("current-db-size-bytes", newSize), zap.String("current-db-size", humanize.Bytes(uint64(newSize))),
		zap.Int64("current-db-size-in-use-bytes-diff", newInUse-inUse), zap.Int64("current-db-size-in-use-bytes", newInUse), zap.String("current-db-size-in-use", humanize.Bytes(uint64(newInUse))),
		zap.Duration("took", time.Since(start)))
	return nil
}

// dbSizes returns a database's size and the part of it in use.
func dbSizes(db *bolt.DB) (size, inUse int64) {
	_ = db.View(func(tx *bolt.Tx) error {
		size = tx.Size()
		st := db.Stats()
		inUse = size - int64(st.FreePageN+st.PendingPageN)*int64(db.Info().PageSize)
		return nil
	})
	return size, inUse
}

// copyBuckets copies every bucket of src into dst, densely packed.
func copyBuckets(src, dst *bolt.DB, p *progress) error {
	stx, err := src.Begin(false)
	if err != nil {
		return err
	}
	defer stx.Rollback()
	keys, bytes, err := mvcc.CopyBuckets(stx, dst, func(keys, bytes int64) { p.set(bytes, keys) })
	if err != nil {
		return err
	}
	p.set(bytes, keys)
	return nil
}
