package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/client/pkg/v3/types"
	"go.etcd.io/etcd/pkg/v3/cobrautl"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/cairnkv/cairn/node"
	"github.com/cairnkv/cairn/node/wal"
	"github.com/cairnkv/cairn/vfs"
)

// restoreOptions are snapshot restore's flags, with etcdutl's names and
// defaults.
type restoreOptions struct {
	Snapshot            string
	Name                string
	DataDir             string
	WALDir              string
	InitialCluster      string
	InitialClusterToken string
	PeerURLs            string
	SkipHashCheck       bool
	BumpRevision        uint64
	MarkCompacted       bool

	Log      *zap.Logger // nil: none
	Progress io.Writer   // nil: none
}

func newSnapshotRestoreCommand() *cobra.Command {
	var o restoreOptions
	cmd := &cobra.Command{
		Use:   "restore <filename> --data-dir {output dir} [options]",
		Short: "Restores a Cairn or etcd member snapshot to a Cairn data directory (offline, like etcdutl)",
		Long: `Restores a snapshot (etcdctl snapshot save, or a copied member/snap/db with --skip-hash-check)
into a new data directory that cairn starts from with the same --name, --initial-cluster and
--initial-cluster-token (and --initial-cluster-state new). Run it once per member, with the same
--initial-cluster and token.`,
		Run: func(cmd *cobra.Command, args []string) {
			if len(args) != 1 {
				cobrautl.ExitWithError(cobrautl.ExitBadArgs, errors.New("snapshot restore requires exactly one argument"))
			}
			if err := validateBump(o.BumpRevision, o.MarkCompacted); err != nil {
				cobrautl.ExitWithError(cobrautl.ExitBadArgs, err)
			}
			o.Snapshot = args[0]
			o.Log = newLogger()
			o.Progress = os.Stderr
			if err := restoreSnapshot(o); err != nil {
				cobrautl.ExitWithError(cobrautl.ExitError, err)
			}
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.DataDir, "data-dir", "", "Path to the output data directory")
	f.StringVar(&o.WALDir, "wal-dir", "", "Path to the WAL directory (use --data-dir if none given)")
	f.StringVar(&o.InitialCluster, "initial-cluster", "default=http://localhost:2380", "Initial cluster configuration for restore bootstrap")
	f.StringVar(&o.InitialClusterToken, "initial-cluster-token", "etcd-cluster", "Initial cluster token for the etcd cluster during restore bootstrap")
	f.StringVar(&o.PeerURLs, "initial-advertise-peer-urls", "http://localhost:2380", "List of this member's peer URLs to advertise to the rest of the cluster")
	f.StringVar(&o.Name, "name", "default", "Human-readable name for this member")
	f.BoolVar(&o.SkipHashCheck, "skip-hash-check", false, "Ignore snapshot integrity hash value (required if copied from data directory)")
	var mmap uint64
	f.Uint64Var(&mmap, "initial-memory-map-size", 0, "Accepted for etcdutl's scripts and ignored: Cairn's database sizes its memory map itself")
	f.Uint64Var(&o.BumpRevision, "bump-revision", 0, "How much to increase the latest revision after restore")
	f.BoolVar(&o.MarkCompacted, "mark-compacted", false, "Mark the latest revision after restore as the point of scheduled compaction (required if --bump-revision > 0, disallowed otherwise)")
	cmd.MarkFlagDirname("data-dir")
	cmd.MarkFlagDirname("wal-dir")
	return cmd
}

// validateBump applies etcdutl's rule: --bump-revision and
// --mark-compacted go together.
func validateBump(bump uint64, mark bool) error {
	if (bump == 0 && mark) || (bump > 0 && !mark) {
		return errors.New("--mark-compacted required if --revision-bump > 0")
	}
	return nil
}

// restoreSnapshot makes o.DataDir (and o.WALDir) a member of a new cluster
// holding the snapshot's data, as etcdutl snapshot restore does for etcd,
// with Cairn's WAL. On failure it removes what it created.
func restoreSnapshot(o restoreOptions) (err error) {
	lg := o.Log
	if lg == nil {
		lg = zap.NewNop()
	}
	if err := validateBump(o.BumpRevision, o.MarkCompacted); err != nil {
		return err
	}
	members, self, err := restoreMembers(o)
	if err != nil {
		return err
	}
	ids := make([]uint64, len(members))
	for i, m := range members {
		ids[i] = m.ID
	}
	clusterID := node.ClusterID(ids, o.InitialClusterToken)

	dataDir := o.DataDir
	if dataDir == "" {
		dataDir = o.Name + ".etcd"
	}
	if names, err := os.ReadDir(dataDir); err == nil && len(names) > 0 || err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("data-dir %q not empty or could not be read", dataDir)
	}
	walDir := o.WALDir
	if walDir == "" {
		walDir = node.WALDir(dataDir)
	} else if _, err := os.Stat(walDir); err == nil {
		return fmt.Errorf("wal-dir %q exists", walDir)
	}
	dbPath := node.DBPath(dataDir)
	lg.Info("restoring snapshot", zap.String("path", o.Snapshot), zap.String("wal-dir", walDir),
		zap.String("data-dir", dataDir), zap.String("snap-dir", filepath.Dir(dbPath)))

	// Whatever this creates goes if the restore fails.
	created := []string{}
	for _, d := range []string{dataDir, filepath.Join(dataDir, "member"), walDir} {
		if _, err := os.Stat(d); errors.Is(err, os.ErrNotExist) {
			created = append(created, d)
		}
	}
	defer func() {
		if err != nil {
			for _, d := range created {
				_ = os.RemoveAll(d)
			}
		}
	}()
	if err := os.MkdirAll(filepath.Dir(dbPath), 0o700); err != nil {
		return err
	}
	if err := copySnapshot(o.Snapshot, dbPath, o.SkipHashCheck, o.Progress); err != nil {
		return err
	}
	if o.MarkCompacted && o.BumpRevision > 0 {
		latest, err := bumpRevision(dbPath, o.BumpRevision)
		if err != nil {
			return err
		}
		lg.Info("bumped latest revision and marked it compacted", zap.Int64("new-latest-revision", latest), zap.Uint64("bump-amount", o.BumpRevision))
	}
	res, err := node.Restore(node.RestoreConfig{
		DBPath:    dbPath,
		WAL:       wal.Config{FS: vfs.OS(), Dir: walDir, Logger: lg},
		Self:      self,
		ClusterID: clusterID,
		Members:   members,
	})
	if err != nil {
		return err
	}
	lg.Info("restored snapshot", zap.String("path", o.Snapshot), zap.String("wal-dir", walDir), zap.String("data-dir", dataDir),
		zap.String("member-id", fmt.Sprintf("%x", self)), zap.String("cluster-id", fmt.Sprintf("%x", clusterID)),
		zap.Uint64("consistent-index", res.Index), zap.Uint64("term", res.Term))
	return nil
}

// restoreMembers reads the new cluster from --initial-cluster and checks
// this member's name and peer URLs against it, as etcd's bootstrap check
// does (without resolving host names).
func restoreMembers(o restoreOptions) ([]node.Member, uint64, error) {
	urlsMap, err := types.NewURLsMap(o.InitialCluster)
	if err != nil {
		return nil, 0, err
	}
	seen := map[string]bool{}
	for _, urls := range urlsMap {
		for _, u := range urls {
			if seen[u.String()] {
				return nil, 0, fmt.Errorf("initial cluster %s has duplicate url", o.InitialCluster)
			}
			seen[u.String()] = true
		}
	}
	mine, ok := urlsMap[o.Name]
	if !ok {
		return nil, 0, fmt.Errorf("couldn't find local name %q in the initial cluster configuration", o.Name)
	}
	advertised, err := types.NewURLs(strings.Split(o.PeerURLs, ","))
	if err != nil {
		return nil, 0, err
	}
	if !slices.Equal(advertised.StringSlice(), mine.StringSlice()) {
		var pairs []string
		for _, u := range mine {
			pairs = append(pairs, o.Name+"="+u.String())
		}
		return nil, 0, fmt.Errorf("--initial-cluster has %s but missing from --initial-advertise-peer-urls=%s (resolved urls: %q != %q)",
			strings.Join(pairs, ","), advertised.String(), strings.Join(advertised.StringSlice(), ","), strings.Join(mine.StringSlice(), ","))
	}
	var members []node.Member
	var self uint64
	for name, urls := range urlsMap {
		m := node.Member{ID: node.MemberID(urls.StringSlice(), o.InitialClusterToken), Name: name, PeerURLs: urls.StringSlice()}
		members = append(members, m)
		if name == o.Name {
			self = m.ID
		}
	}
	slices.SortFunc(members, func(a, b node.Member) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return members, self, nil
}

// hasChecksum reports whether a snapshot file of size n ends with the
// sha256 of the rest (Maintenance.Snapshot appends it; the size of a bbolt
// file is a multiple of its page size, so this is as etcd decides).
func hasChecksum(n int64) bool { return n%512 == sha256.Size }

// copySnapshot copies the database of the snapshot at src to dst, checking
// the appended sha256 unless skip (and dropping it either way). The errors
// are etcdutl's.
func copySnapshot(src, dst string, skip bool, progressW io.Writer) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	size := st.Size()
	withHash := hasChecksum(size)
	if !withHash && !skip {
		return errors.New("snapshot missing hash but --skip-hash-check=false")
	}
	dbSize := size
	var want []byte
	if withHash {
		dbSize -= sha256.Size
		want = make([]byte, sha256.Size)
		if _, err := in.ReadAt(want, dbSize); err != nil {
			return err
		}
	}
	out, err := os.OpenFile(dst, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	p := startProgress(progressW, "restore: copying "+filepath.Base(src), dbSize)
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(out, h), &countingReader{r: io.LimitReader(in, dbSize), p: p}); err != nil {
		out.Close()
		return err
	}
	p.done()
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	if withHash && !skip {
		if got := h.Sum(nil); !bytes.Equal(got, want) {
			return fmt.Errorf("expected sha256 %v, got %v", want, got)
		}
	}
	return nil
}

// revBytes encodes a revision as etcd's key bucket and meta do: big-endian
// main, '_', big-endian sub.
func revBytes(main, sub int64) []byte {
	b := make([]byte, 17)
	binary.BigEndian.PutUint64(b, uint64(main))
	b[8] = '_'
	binary.BigEndian.PutUint64(b[9:], uint64(sub))
	return b
}

// bumpRevision does what etcdutl's --bump-revision with --mark-compacted
// does: a revision amount past the latest is recorded in the key bucket
// (with an empty value), so the store's revision jumps there, and it is
// marked as the scheduled compaction, so reads below it get ErrCompacted
// and watchers from before it are cancelled rather than miss events. It
// returns the new latest revision.
func bumpRevision(path string, amount uint64) (int64, error) {
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		return 0, err
	}
	var latest int64
	err = db.Update(func(tx *bolt.Tx) error {
		kb := tx.Bucket([]byte("key"))
		mb := tx.Bucket([]byte("meta"))
		if kb == nil || mb == nil {
			return errors.New("not a Cairn or etcd database: no \"key\" or \"meta\" bucket")
		}
		if k, _ := kb.Cursor().Last(); k != nil {
			if len(k) < 17 {
				return fmt.Errorf("cannot parse revision key: %q", k)
			}
			latest = int64(binary.BigEndian.Uint64(k))
		}
		latest += int64(amount)
		if err := kb.Put(revBytes(latest, 0), []byte{}); err != nil {
			return err
		}
		return mb.Put([]byte("scheduledCompactRev"), revBytes(latest, 0))
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	return latest, err
}

// newLogger is etcdutl's: console lines on stderr.
func newLogger() *zap.Logger {
	cfg := zap.NewProductionConfig()
	cfg.Encoding = "console"
	cfg.EncoderConfig.EncodeTime = zapcore.RFC3339TimeEncoder
	cfg.Sampling = nil
	lg, err := cfg.Build()
	if err != nil {
		cobrautl.ExitWithError(cobrautl.ExitBadArgs, err)
	}
	return lg
}
