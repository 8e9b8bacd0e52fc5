package main

import (
	"os"

	"github.com/spf13/cobra"
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
			h, err := hashKV(args[0], rev)
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
// latest) as etcd's HashKV does, the number etcdutl hashkv prints. Like
// etcdutl it opens the file for writing (it may add the buckets and
// storage version a database lacks): run it on a copy of a live file.
func hashKV(path string, rev int64) (hashKVResult, error) {
	if _, err := os.Stat(path); err != nil {
		return hashKVResult{}, err
	}
	// Fail, rather than wait forever, on a running member's database.
	db, err := openLocked(path, nil)
	if err != nil {
		return hashKVResult{}, err
	}
	if err := db.Close(); err != nil {
		return hashKVResult{}, err
	}
	kv, err := mvcc.Open(mvcc.Config{Path: path})
	if err != nil {
		return hashKVResult{}, err
	}
	defer kv.Close()
	h, hashRev, compactRev, err := kv.HashKV(rev)
	if err != nil {
		return hashKVResult{}, err
	}
	return hashKVResult{Hash: h, HashRevision: hashRev, CompactRevision: compactRev}, nil
}
