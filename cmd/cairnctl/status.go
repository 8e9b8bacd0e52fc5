package main

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"strings"

	"github.com/coreos/go-semver/semver"
	"github.com/spf13/cobra"
	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/pkg/v3/cobrautl"
	"google.golang.org/protobuf/proto"
)

// dbStatus is snapshot status's result, with etcdutl's JSON names.
type dbStatus struct {
	Hash      uint32 `json:"hash"`
	Revision  int64  `json:"revision"`
	TotalKey  int    `json:"totalKey"`
	TotalSize int64  `json:"totalSize"`
	Version   string `json:"version"`
}

func newSnapshotStatusCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "status <filename>",
		Short: "Gets backend snapshot status of a given file (offline, like etcdutl)",
		Long: `When --write-out is set to simple, this command prints out comma-separated status lists for each endpoint.
The items in the lists are hash, revision, total keys, total size.
`,
		Run: func(cmd *cobra.Command, args []string) {
			if len(args) != 1 {
				cobrautl.ExitWithError(cobrautl.ExitBadArgs, errors.New("snapshot status requires exactly one argument"))
			}
			p := printerFromCmd(cmd)
			ds, err := snapshotStatus(args[0], os.Stderr)
			if err != nil {
				cobrautl.ExitWithError(cobrautl.ExitError, err)
			}
			exitOnPrintError(p.dbStatus(os.Stdout, ds))
		},
	}
}

// snapshotStatus reads a database (a snapshot or member/snap/db) without
// changing it and returns what etcdutl snapshot status reports: the CRC-32C
// of every bucket name, key and value in order, the last revision, the
// number of live keys, the size and the storage version. The structure is
// checked first (bbolt's consistency check), with etcdutl's error.
func snapshotStatus(path string, progressW io.Writer) (dbStatus, error) {
	var ds dbStatus
	_, err := os.Stat(path)
	if err != nil {
		return ds, err
	}
	db, err := openLocked(path, &bolt.Options{ReadOnly: true})
	if err != nil {
		return ds, err
	}
	defer db.Close()
	p := startProgress(progressW, "status: reading "+path, 0) // records: no byte total
	h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	live := map[string]bool{}
	err = db.View(func(tx *bolt.Tx) error {
		var problems []string
		for err := range tx.Check() {
			problems = append(problems, err.Error())
		}
		if len(problems) > 0 {
			return fmt.Errorf("snapshot file integrity check failed. %d errors found.\n%s", len(problems), strings.Join(problems, "\n"))
		}
		ds.TotalSize = tx.Size()
		if mb := tx.Bucket([]byte("meta")); mb != nil {
			if v, err := semver.NewVersion(string(mb.Get([]byte("storageVersion")))); err == nil {
				ds.Version = v.String()
			}
		}
		var done, keys int64
		c := tx.Cursor()
		for name, _ := c.First(); name != nil; name, _ = c.Next() {
			b := tx.Bucket(name)
			if b == nil {
				return fmt.Errorf("nil bucket: %q", name)
			}
			h.Write(name)
			isKey := string(name) == "key"
			err := b.ForEach(func(k, v []byte) error {
				h.Write(k)
				h.Write(v)
				done += int64(len(k) + len(v))
				keys++
				if keys%1024 == 0 {
					p.set(done, keys)
				}
				if !isKey {
					return nil
				}
				main, tomb, err := parseRevision(k)
				if err != nil {
					return fmt.Errorf("cannot parse revision key: %q err: %w", k, err)
				}
				ds.Revision = main
				var kv mvccpb.KeyValue
				if err := proto.Unmarshal(v, &kv); err != nil {
					return fmt.Errorf("cannot unmarshal value, key: %q value: %q err: %w", k, v, err)
				}
				if tomb {
					delete(live, string(kv.Key))
				} else {
					live[string(kv.Key)] = true
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("error during bucket key iteration, name: %q err: %w", name, err)
			}
		}
		p.set(done, keys)
		return nil
	})
	if err != nil {
		return ds, err
	}
	p.done()
	ds.TotalKey = len(live)
	ds.Hash = h.Sum32()
	return ds, nil
}

// parseRevision reads a key of the key bucket: 17 bytes (main, '_', sub),
// or 18 with the tombstone mark 't'.
func parseRevision(k []byte) (main int64, tomb bool, err error) {
	switch {
	case len(k) == 18 && k[17] == 't':
		tomb = true
	case len(k) != 17:
		return 0, false, fmt.Errorf("invalid revision length: %d", len(k))
	}
	if k[8] != '_' {
		return 0, false, fmt.Errorf("invalid revision separator %q", k[8])
	}
	return int64(uint64(k[0])<<56 | uint64(k[1])<<48 | uint64(k[2])<<40 | uint64(k[3])<<32 |
		uint64(k[4])<<24 | uint64(k[5])<<16 | uint64(k[6])<<8 | uint64(k[7])), tomb, nil
}
