package main

import (
	"fmt"
	"io"
	"os"
	"time"

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
// latest) as etcd's HashKV does, the number etcdutl hashkv prints. Like
// etcdutl it opens the file for writing (it may add the buckets and
// storage version a database lacks): run it on a copy of a live file.
func hashKV(path string, rev int64) (hashKVResult, error) {
	h, _, err := hashKVKeys(path, rev)
	return h, err
}

// hashKVKeys is hashKV, also returning the number of live keys.
func hashKVKeys(path string, rev int64) (hashKVResult, int64, error) {
	if _, err := os.Stat(path); err != nil {
		return hashKVResult{}, 0, err
	}
	// Fail, rather than wait forever, on a running member's database.
	db, err := openLocked(path, nil)
	if err != nil {
		return hashKVResult{}, 0, err
	}
	if err := db.Close(); err != nil {
		return hashKVResult{}, 0, err
	}
	kv, err := mvcc.Open(mvcc.Config{Path: path})
	if err != nil {
		return hashKVResult{}, 0, err
	}
	defer kv.Close()
	h, hashRev, compactRev, err := kv.HashKV(rev)
	if err != nil {
		return hashKVResult{}, 0, err
	}
	return hashKVResult{Hash: h, HashRevision: hashRev, CompactRevision: compactRev}, kv.Stats().Keys, nil
}

// hashKVWithProgress is hashKV reporting on w while it runs: reading the
// key index has no byte count to show, so it reports the time spent, then
// the keys read.
func hashKVWithProgress(path string, rev int64, w io.Writer) (hashKVResult, error) {
	st, err := os.Stat(path)
	if err != nil {
		return hashKVResult{}, err
	}
	start := time.Now()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				fmt.Fprintf(w, "hashkv: reading the key index of %s (%d bytes): %v\n", path, st.Size(), time.Since(start).Round(time.Second))
			}
		}
	}()
	h, keys, err := hashKVKeys(path, rev)
	close(stop)
	<-done
	if err == nil {
		fmt.Fprintf(w, "hashkv: done: %d keys of %s in %v\n", keys, path, time.Since(start).Round(time.Millisecond))
	}
	return h, err
}
