package main

import (
	"io"
	"os"

	"github.com/spf13/cobra"
	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/pkg/v3/cobrautl"

	"github.com/cairnkv/cairn/mvcc"
)

func newHashKVCommand() *cobra.Command {
	var rev int64
	cmd := &cobra.Command{
		Use:   "hashkv <filename>",
		Short: "Prints the KV history hash of a given file (offline, like etcdutl)",
		Args:  cobra.ExactArgs(1),
		Run: func(cmd *cobra.Command, args []string) {
			p := printerFromCmd(cmd)
			h, err := hashKVWithProgress(args[0], rev, os.Stderr)
			if err != nil {
				cobrautl.ExitWithError(cobrautl.ExitError, err)
			}
			exitOnPrintError(p.hashKV(os.Stdout, h))
		},
	}
	cmd.Flags().Int64Var(&rev, "rev", 0, "maximum revision to hash (default: latest revision)")
	return cmd
}

// hashKV hashes the key space of the database at path as of rev (0: the
// latest) as etcd's HashKV does: the numbers etcdutl hashkv prints
// (compact revision -1 before any compaction). Unlike etcdutl it only
// reads the file.
func hashKV(path string, rev int64) (hashKVResult, error) {
	return hashKVWithProgress(path, rev, nil)
}

// hashKVWithProgress is hashKV reporting the revisions and bytes read on
// w (nil: nowhere).
func hashKVWithProgress(path string, rev int64, w io.Writer) (hashKVResult, error) {
	if _, err := os.Stat(path); err != nil {
		return hashKVResult{}, err
	}
	// Fail, rather than wait forever, on a running member's database.
	db, err := openLocked(path, &bolt.Options{ReadOnly: true})
	if err != nil {
		return hashKVResult{}, err
	}
	if err := db.Close(); err != nil {
		return hashKVResult{}, err
	}
	p := startProgress(w, "hashkv: reading "+path, 0)
	h, hashRev, compactRev, err := mvcc.HashKVFile(path, rev, func(revs, bytes int64) { p.set(bytes, revs) })
	if err != nil {
		return hashKVResult{}, err
	}
	p.done()
	return hashKVResult{Hash: h, HashRevision: hashRev, CompactRevision: compactRev}, nil
}
