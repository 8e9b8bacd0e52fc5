package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/pkg/v3/cobrautl"
	"google.golang.org/protobuf/proto"

	"github.com/cairnkv/cairn/node"
	"github.com/cairnkv/cairn/node/wal"
	"github.com/cairnkv/cairn/node/wal/etcdwal"
	"github.com/cairnkv/cairn/vfs"
)

func newCheckDataDirCommand() *cobra.Command {
	var walDir string
	cmd := &cobra.Command{
		Use:   "data-dir <dir>",
		Short: "Checks a stopped member's data dir: the WAL's checksums, the database's structure, and the database's consistent index against the WAL (offline)",
		Args:  cobra.ExactArgs(1),
		Run: func(cmd *cobra.Command, args []string) {
			rep := checkDataDir(args[0], walDir, os.Stderr)
			rep.print(os.Stdout)
			if len(rep.Problems) > 0 {
				os.Exit(cobrautl.ExitError)
			}
		},
	}
	cmd.Flags().StringVar(&walDir, "wal-dir", "", "the member's WAL directory, if not <dir>/member/wal")
	return cmd
}

// checkReport is what check data-dir found: facts, warnings and problems,
// each one line naming the file (and offset or key) concerned.
type checkReport struct {
	DataDir  string
	Info     []string
	Warnings []string
	Problems []string
}

func (r *checkReport) info(format string, args ...any) {
	r.Info = append(r.Info, fmt.Sprintf(format, args...))
}
func (r *checkReport) warn(format string, args ...any) {
	r.Warnings = append(r.Warnings, fmt.Sprintf(format, args...))
}
func (r *checkReport) problem(format string, args ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

func (r *checkReport) print(w io.Writer) {
	for _, s := range r.Info {
		fmt.Fprintln(w, "ok:", s)
	}
	for _, s := range r.Warnings {
		fmt.Fprintln(w, "warning:", s)
	}
	for _, s := range r.Problems {
		fmt.Fprintln(w, "problem:", s)
	}
	if len(r.Problems) == 0 {
		fmt.Fprintf(w, "data dir %s: no problem found\n", r.DataDir)
	} else {
		fmt.Fprintf(w, "data dir %s: %d problem(s) found\n", r.DataDir, len(r.Problems))
	}
}

// walState is what the check learnt from the WAL.
type walState struct {
	snapIndex, lastIndex, commit uint64
	member                       uint64 // the member the WAL belongs to
}

// checkDataDir checks the stopped member's files under dataDir without
// changing them.
func checkDataDir(dataDir, walDir string, progressW io.Writer) *checkReport {
	rep := &checkReport{DataDir: dataDir}
	if walDir == "" {
		walDir = node.WALDir(dataDir)
	}
	if _, err := os.Stat(dataDir); err != nil {
		rep.problem("%v", err)
		return rep
	}
	ws, walOK := checkWAL(rep, walDir, filepath.Join(dataDir, "member", "snap"), progressW)
	res, dbOK := checkDB(rep, node.DBPath(dataDir), progressW)
	if !walOK || !dbOK {
		return rep
	}
	ci, term := res.CI, res.Term
	switch {
	case slices.Contains(res.Removed, ws.member):
		rep.problem("database %s: member %x, whose WAL this is, was removed from the cluster (cairn refuses to start; add it back as a new member with an empty data dir)", node.DBPath(dataDir), ws.member)
	case len(res.Members) > 0 && !slices.Contains(res.Members, ws.member):
		rep.warn("database %s: member %x, whose WAL this is, is not among its members %x (a database from another cluster, or a member whose addition is not applied yet)", node.DBPath(dataDir), ws.member, res.Members)
	}
	last := max(ws.lastIndex, ws.snapIndex)
	switch {
	case ci < ws.snapIndex && fileExists(filepath.Join(dataDir, "member", "snap", fmt.Sprintf("%016x.snap.db", ws.snapIndex))):
		rep.warn("database %s: consistent index %d is behind the WAL's snapshot marker at %d, and the snapshot's database is staged beside it: an install a crash interrupted, which cairn finishes at start", node.DBPath(dataDir), ci, ws.snapIndex)
	case ci < ws.snapIndex:
		rep.problem("database %s: consistent index %d is behind the WAL's snapshot marker at %d: the database is older than the WAL (cairn refuses to start)", node.DBPath(dataDir), ci, ws.snapIndex)
	case ci > last:
		rep.problem("database %s: consistent index %d is ahead of the WAL's last entry %d: the WAL in %s lost entries the database applied (cairn refuses to start)", node.DBPath(dataDir), ci, last, walDir)
	default:
		rep.info("consistent index %d (term %d) is within the WAL (snapshot marker %d, last entry %d, commit %d): %d entries to replay at start", ci, term, ws.snapIndex, last, ws.commit, last-ci)
	}
	return rep
}

// checkWAL verifies every record of the WAL in walDir (Cairn's, or etcd's
// that cairn imports at start).
func checkWAL(rep *checkReport, walDir, snapDir string, progressW io.Writer) (walState, bool) {
	format, err := etcdwal.Detect(vfs.OS(), walDir)
	if err != nil {
		rep.problem("WAL %s: %v", walDir, err)
		return walState{}, false
	}
	switch format {
	case etcdwal.FormatNone:
		rep.problem("WAL %s: no WAL segment found", walDir)
		return walState{}, false
	case etcdwal.FormatEtcd, etcdwal.FormatImportInterrupted:
		dir := walDir
		if format == etcdwal.FormatImportInterrupted {
			dir = etcdwal.BackupDir(walDir)
			rep.warn("WAL %s: an import of etcd's WAL was interrupted; cairn finishes it at start", walDir)
		}
		l, err := etcdwal.Read(vfs.OS(), dir, snapDir)
		if err != nil {
			rep.problem("WAL %s (etcd's format): %v", dir, err)
			return walState{}, false
		}
		if l.TornTail != nil {
			rep.warn("WAL %s: torn tail, dropped at start: %v", dir, l.TornTail)
		}
		rep.info("WAL %s: etcd's format (cairn imports it at start), %d segment(s), member %x of cluster %x, snapshot marker %d, %d entries after it, commit %d",
			dir, len(l.Segments), l.Metadata.NodeID, l.Metadata.ClusterID, l.Snapshot.GetIndex(), len(l.Entries), l.HardState.GetCommit())
		ws := walState{snapIndex: l.Snapshot.GetIndex(), commit: l.HardState.GetCommit(), member: l.Metadata.NodeID}
		if n := len(l.Entries); n > 0 {
			ws.lastIndex = l.Entries[n-1].GetIndex()
		}
		return ws, true
	}
	var p *progress
	c, err := wal.Verify(vfs.OS(), walDir, func(done, total int64) {
		if p == nil {
			p = startProgress(progressW, "check: reading WAL "+walDir, total)
		}
		p.set(done, 0)
	})
	if p != nil {
		p.done()
	}
	if err != nil {
		var ce *wal.CorruptError
		if errors.As(err, &ce) {
			rep.problem("WAL segment %s, offset %d: %s", ce.File, ce.Offset, ce.Reason)
		} else {
			rep.problem("WAL %s: %v", walDir, err)
		}
		return walState{}, false
	}
	if c.TornTail != nil {
		rep.warn("WAL segment %s ends in a torn record at offset %d (%s): what a crash mid-write leaves; cairn cuts it off at start", c.TornTail.File, c.TornTail.Offset, c.TornTail.Reason)
	}
	md, err := node.ParseWALMetadata(c.Metadata)
	if err != nil {
		rep.problem("WAL %s: %v", c.Segments[0], err)
		return walState{}, false
	}
	ws := walState{snapIndex: c.Snapshot.GetIndex(), lastIndex: c.LastIndex, commit: c.HardState.GetCommit(), member: md.MemberID}
	if n := len(c.Entries); n > 0 {
		ws.lastIndex = c.Entries[n-1].GetIndex()
	}
	rep.info("WAL %s: %d segment(s), %d bytes, checksums good; member %x of cluster %x, snapshot marker %d (term %d), %d entries after it, term %d, commit %d",
		walDir, len(c.Segments), c.Bytes, md.MemberID, md.ClusterID, c.Snapshot.GetIndex(), c.Snapshot.GetTerm(), len(c.Entries), c.HardState.GetTerm(), c.HardState.GetCommit())
	return ws, true
}

// envCheckDB, when set, makes the cairnctl binary (or its test binary)
// check the database it names and print the result as JSON, in place of
// anything else: checkDB runs it as a child process, since bbolt's check
// of a damaged file can crash the process (a panic on its own goroutine,
// or a fault reading a wild pointer), which a report must survive.
const envCheckDB = "CAIRNCTL_CHECK_DB"

// dbCheck is the child's result.
type dbCheck struct {
	CI, Term         uint64
	Keys             int64
	Members, Removed []uint64 // the member records' IDs
	Problems         []string
}

// runCheckDBChild is the child's side: it checks the database named by
// envCheckDB and exits. It returns if the variable is not set.
func runCheckDBChild() {
	path := os.Getenv(envCheckDB)
	if path == "" {
		return
	}
	res := checkDBInProcess(path, os.Stderr)
	_ = json.NewEncoder(os.Stdout).Encode(res)
	os.Exit(0)
}

// checkDB checks the database's bbolt structure (every page reachable
// once, free list consistent, keys in order) and every record of the key
// bucket, in a child process, and returns its consistent index and term.
func checkDB(rep *checkReport, path string, progressW io.Writer) (res dbCheck, ok bool) {
	if _, err := os.Stat(path); err != nil {
		rep.problem("database: %v", err)
		return res, false
	}
	exe, err := os.Executable()
	if err != nil {
		rep.problem("database %s: cannot run the check: %v", path, err)
		return res, false
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), envCheckDB+"="+path)
	var out, errOut bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = io.MultiWriter(&errOut, progressOrDiscard(progressW))
	runErr := cmd.Run()
	if jerr := json.Unmarshal(out.Bytes(), &res); runErr != nil || jerr != nil {
		rep.problem("database %s: the bbolt structure is damaged: reading it crashed (%s)", path, crashLine(errOut.String(), runErr, jerr))
		return res, false
	}
	for _, p := range res.Problems {
		rep.problem("%s", p)
	}
	if len(res.Problems) > 0 {
		return res, false
	}
	rep.info("database %s: bbolt structure good, %d revisions decoded, consistent index %d, term %d, members %x", path, res.Keys, res.CI, res.Term, res.Members)
	return res, true
}

func progressOrDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// crashLine picks what a crashed child said about its crash.
func crashLine(stderr string, errs ...error) string {
	for _, l := range strings.Split(stderr, "\n") {
		for _, p := range []string{"panic:", "fatal error:", "unexpected fault address"} {
			if strings.HasPrefix(l, p) {
				return strings.TrimSpace(l)
			}
		}
	}
	for _, err := range errs {
		if err != nil {
			return err.Error()
		}
	}
	return "no result"
}

// checkDBInProcess is the check itself, in the child.
func checkDBInProcess(path string, progressW io.Writer) dbCheck {
	var res dbCheck
	problem := func(format string, args ...any) {
		res.Problems = append(res.Problems, fmt.Sprintf(format, args...))
	}
	_, err := os.Stat(path)
	if err != nil {
		problem("database: %v", err)
		return res
	}
	db, err := openLocked(path, &bolt.Options{ReadOnly: true})
	if err != nil {
		problem("database %s: %v", path, err)
		return res
	}
	defer db.Close()
	p := startProgress(progressW, "check: reading database "+path, 0) // records: no byte total
	_ = db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			problem("database %s: bbolt structure: %v", path, err)
		}
		if len(res.Problems) > 0 {
			return nil // reading on through damaged pages could crash
		}
		mb := tx.Bucket([]byte("meta"))
		kb := tx.Bucket([]byte("key"))
		if mb == nil || kb == nil {
			problem("database %s: no %q or %q bucket: not a Cairn or etcd database", path, "meta", "key")
			return nil
		}
		if v := mb.Get([]byte("consistent_index")); len(v) == 8 {
			res.CI = binary.BigEndian.Uint64(v)
		} else {
			problem("database %s: meta has no consistent index", path)
		}
		if v := mb.Get([]byte("term")); len(v) == 8 {
			res.Term = binary.BigEndian.Uint64(v)
		}
		for name, ids := range map[string]*[]uint64{"members": &res.Members, "members_removed": &res.Removed} {
			if b := tx.Bucket([]byte(name)); b != nil {
				_ = b.ForEach(func(k, _ []byte) error {
					id, err := strconv.ParseUint(string(k), 16, 64)
					if err != nil {
						problem("database %s: bucket %s: key %q is not a member ID", path, name, k)
						return nil
					}
					*ids = append(*ids, id)
					return nil
				})
			}
		}
		var bytes int64
		bad := 0
		_ = kb.ForEach(func(k, v []byte) error {
			res.Keys++
			bytes += int64(len(k) + len(v))
			if res.Keys%1024 == 0 {
				p.set(bytes, res.Keys)
			}
			if _, _, err := parseRevision(k); err != nil {
				if bad++; bad <= 10 {
					problem("database %s: bucket key: key %x: %v", path, k, err)
				}
				return nil
			}
			var kv mvccpb.KeyValue
			if err := proto.Unmarshal(v, &kv); err != nil {
				if bad++; bad <= 10 {
					problem("database %s: bucket key: revision key %x: undecodable value: %v", path, k, err)
				}
			}
			return nil
		})
		if bad > 10 {
			problem("database %s: bucket key: %d bad records in all", path, bad)
		}
		p.set(bytes, res.Keys)
		return nil
	})
	p.done()
	return res
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
