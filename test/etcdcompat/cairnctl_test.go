package etcdcompat

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// run runs the binary bin (a key of bins) with args to completion and
// returns its stdout, stderr and exit code.
func run(t *testing.T, bin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bins[bin], args...)
	cmd.Dir = t.TempDir()
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("%s %q: %v", bin, args, err)
	}
	return so.String(), se.String(), code
}

// cairnctl runs cairnctl with args and returns its standard output,
// failing the test if it fails.
func cairnctl(t *testing.T, args ...string) string {
	t.Helper()
	so, se, code := run(t, "cairnctl", args...)
	if code != 0 {
		t.Fatalf("cairnctl %q: exit %d\nstdout:\n%s\nstderr:\n%s", args, code, so, se)
	}
	return so
}

// errorLine is the "Error: ..." line etcdutl and cairnctl end with.
func errorLine(stderr string) string {
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "Error:") {
			return l
		}
	}
	return ""
}

// sameOutput runs the same offline command of etcdutl and cairnctl, each on
// its own copy of file (both may write to it), and fails the test unless
// they print the same and exit alike.
func sameOutput(t *testing.T, file string, args ...string) {
	t.Helper()
	withFile := func(f string) []string {
		out := append([]string(nil), args...)
		for i, a := range out {
			if a == "FILE" {
				out[i] = f
			}
		}
		return out
	}
	ef, cf := file, file // a missing file stays missing
	if _, err := os.Stat(file); err == nil {
		ef, cf = copyFile(t, file), copyFile(t, file)
	}
	eo, ee, ecode := run(t, "etcdutl", withFile(ef)...)
	co, ce, ccode := run(t, "cairnctl", withFile(cf)...)
	if eo != co || ecode != ccode || errorLine(ee) != errorLine(ce) {
		t.Errorf("%q on %s:\netcdutl (exit %d):\n%s%s\ncairnctl (exit %d):\n%s%s", args, filepath.Base(file), ecode, eo, errorLine(ee), ccode, co, errorLine(ce))
	}
}

// cairnctl snapshot status and hashkv print what etcdutl prints, in every
// output format, on Cairn's and etcd's snapshots and on a member's
// database, at every revision, compacted and future ones included.
func TestCairnctlStatusAndHashKVAsEtcdutl(t *testing.T) {
	for _, k := range []kind{cairnKind, etcdKind} {
		t.Run(string(k), func(t *testing.T) {
			src := startNew(t, k, "s1")
			writeHistory(t, src)
			snap := saveSnapshot(t, src)
			for _, w := range []string{"simple", "table", "json", "fields", "protobuf", "yaml"} {
				sameOutput(t, snap, "snapshot", "status", "FILE", "-w", w)
				sameOutput(t, snap, "hashkv", "FILE", "-w", w)
			}
			for rev := int64(1); rev <= historyRevision+1; rev++ {
				sameOutput(t, snap, "hashkv", "FILE", "--rev", fmt.Sprint(rev), "-w", "json")
			}
			// A database with no hash appended: the restored member's.
			dir := filepath.Join(t.TempDir(), "restored")
			etcdutl(t, "snapshot", "restore", copyFile(t, snap), "--data-dir", dir)
			db := filepath.Join(dir, "member", "snap", "db")
			sameOutput(t, db, "snapshot", "status", "FILE", "-w", "json")
			sameOutput(t, db, "hashkv", "FILE", "-w", "json")
			sameDefrag(t, db)

			// Before any compaction (hashkv's compact revision is -1).
			fresh := startNew(t, k, "f1")
			if _, err := fresh.cli.Put(opCtx(t), "k", "v"); err != nil {
				t.Fatal(err)
			}
			freshSnap := saveSnapshot(t, fresh)
			sameOutput(t, freshSnap, "snapshot", "status", "FILE", "-w", "json")
			for rev := int64(0); rev <= 3; rev++ {
				sameOutput(t, freshSnap, "hashkv", "FILE", "--rev", fmt.Sprint(rev), "-w", "json")
			}
		})
	}
	sameOutput(t, filepath.Join(t.TempDir(), "missing.db"), "snapshot", "status", "FILE")
	sameOutput(t, filepath.Join(t.TempDir(), "missing.db"), "hashkv", "FILE")
}

// startCairnctlRestored restores snap with cairnctl snapshot restore into
// a new data dir, as the member name of a one-member cluster, and starts
// cairn on it with the same flags.
func startCairnctlRestored(t *testing.T, name, snap string, extra ...string) *server {
	t.Helper()
	return start(t, cairnKind, name, func(dataDir, peerURL string) {
		cairnctl(t, append([]string{"snapshot", "restore", snap,
			"--data-dir", dataDir,
			"--name", name,
			"--initial-cluster", name + "=" + peerURL,
			"--initial-advertise-peer-urls", peerURL}, extra...)...)
	})
}

// An etcd 3.7.3 snapshot restored with cairnctl starts Cairn directly on
// Cairn's WAL (nothing to import) with etcd's keys, history, compaction,
// leases, HashKV and member IDs.
func TestEtcdSnapshotRestoredByCairnctl(t *testing.T) {
	src := startNew(t, etcdKind, "e1")
	writeHistory(t, src)
	want := capture(t, src)
	checkHistory(t, src, want)
	snap := saveSnapshot(t, src)

	dst := startCairnctlRestored(t, "r1", snap)
	// HashKV at the compaction revision: see TestEtcdSnapshotRestoresIntoCairn.
	compareStates(t, src, dst, want, capture(t, dst), historyCompact)
	checkMembers(t, dst)
	checkWrite(t, dst, want.Revision)
	if _, err := os.Stat(filepath.Join(dst.DataDir, "member", "wal.etcd-imported")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cairnctl's restore left an etcd WAL to import (%v): it must write Cairn's", err)
	}
}

// The database cairnctl restores is one etcdutl accepts: snapshot status
// and hashkv read it (as cairnctl does), and etcdutl snapshot restore
// --skip-hash-check turns it into a data dir a real etcd starts on with
// the original's state.
func TestCairnctlRestoredDBAcceptedByEtcdutl(t *testing.T) {
	src := startNew(t, cairnKind, "c1")
	writeHistory(t, src)
	want := capture(t, src)
	snap := saveSnapshot(t, src)

	dir := filepath.Join(t.TempDir(), "restored")
	cairnctl(t, "snapshot", "restore", snap, "--data-dir", dir)
	db := filepath.Join(dir, "member", "snap", "db")
	sameOutput(t, db, "snapshot", "status", "FILE", "-w", "json")
	sameOutput(t, db, "hashkv", "FILE", "-w", "json")

	dst := start(t, etcdKind, "r1", func(dataDir, peerURL string) {
		etcdutl(t, "snapshot", "restore", copyFile(t, db), "--skip-hash-check",
			"--data-dir", dataDir, "--name", "r1",
			"--initial-cluster", "r1="+peerURL, "--initial-advertise-peer-urls", peerURL)
	})
	compareStates(t, src, dst, want, capture(t, dst))
	checkMembers(t, dst)
}

// --bump-revision N --mark-compacted is etcdutl's: restored by etcdutl
// into etcd and by cairnctl into Cairn, the same snapshot serves the same
// revision, compaction, keys, leases and HashKV, and takes its next write
// at the same revision.
func TestCairnctlBumpRevisionAsEtcdutl(t *testing.T) {
	src := startNew(t, cairnKind, "c1")
	writeHistory(t, src)
	snap := saveSnapshot(t, src)
	const bump = 1000

	// The restored databases: the key space and compaction are the same.
	edir, cdir := filepath.Join(t.TempDir(), "e"), filepath.Join(t.TempDir(), "c")
	etcdutl(t, "snapshot", "restore", copyFile(t, snap), "--data-dir", edir, "--bump-revision", fmt.Sprint(bump), "--mark-compacted")
	cairnctl(t, "snapshot", "restore", snap, "--data-dir", cdir, "--bump-revision", fmt.Sprint(bump), "--mark-compacted")
	for _, args := range [][]string{{"hashkv", "FILE", "-w", "json"}, {"hashkv", "FILE", "-w", "json", "--rev", fmt.Sprint(historyRevision + bump)}} {
		e := etcdutl(t, append(args[:1:1], append([]string{copyFile(t, filepath.Join(edir, "member", "snap", "db"))}, args[2:]...)...)...)
		c := cairnctl(t, append(args[:1:1], append([]string{copyFile(t, filepath.Join(cdir, "member", "snap", "db"))}, args[2:]...)...)...)
		if string(e) != c {
			t.Errorf("%q after a bump: etcdutl's db %s, cairnctl's %s", args, e, c)
		}
	}

	e := startRestoredWith(t, etcdKind, "r1", snap, "--bump-revision", fmt.Sprint(bump), "--mark-compacted")
	c := startCairnctlRestored(t, "r1", snap, "--bump-revision", fmt.Sprint(bump), "--mark-compacted")
	want := capture(t, e)
	if want.Revision != historyRevision+bump || want.CompactRevision != historyRevision+bump {
		t.Fatalf("etcd after etcdutl's bump: revision %d compacted %d, want both %d", want.Revision, want.CompactRevision, historyRevision+bump)
	}
	compareStates(t, e, c, want, capture(t, c))
	checkWrite(t, e, want.Revision)
	checkWrite(t, c, want.Revision)
}

// startRestoredWith is startRestored with more etcdutl flags.
func startRestoredWith(t *testing.T, k kind, name, snap string, extra ...string) *server {
	t.Helper()
	return start(t, k, name, func(dataDir, peerURL string) {
		etcdutl(t, append([]string{"snapshot", "restore", copyFile(t, snap),
			"--data-dir", dataDir,
			"--name", name,
			"--initial-cluster", name + "=" + peerURL,
			"--initial-advertise-peer-urls", peerURL}, extra...)...)
	})
}

// sameDefrag runs etcdutl defrag --data-dir and cairnctl defrag --data-dir
// on copies of the database db: both print nothing on stdout and succeed,
// and leave databases with the same records (snapshot status's hash,
// revision and keys, and hashkv).
func sameDefrag(t *testing.T, db string) {
	t.Helper()
	var outs []string
	for _, bin := range []string{"etcdutl", "cairnctl"} {
		dir := t.TempDir()
		if err := os.MkdirAll(filepath.Join(dir, "member", "snap"), 0o700); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(db)
		if err != nil {
			t.Fatal(err)
		}
		copied := filepath.Join(dir, "member", "snap", "db")
		if err := os.WriteFile(copied, b, 0o600); err != nil {
			t.Fatal(err)
		}
		so, se, code := run(t, bin, "defrag", "--data-dir", dir)
		if code != 0 || so != "" {
			t.Errorf("%s defrag --data-dir: exit %d, stdout %q, stderr:\n%s", bin, code, so, se)
		}
		status, _, _ := run(t, bin, "snapshot", "status", copied, "-w", "fields")
		hash, _, _ := run(t, bin, "hashkv", copied)
		var kept []string
		for _, l := range strings.Split(status, "\n") {
			if !strings.HasPrefix(l, `"Size"`) { // the page layout may differ
				kept = append(kept, l)
			}
		}
		outs = append(outs, strings.Join(kept, "\n")+hash)
	}
	if outs[0] != outs[1] {
		t.Errorf("after defrag: etcdutl's database:\n%s\ncairnctl's:\n%s", outs[0], outs[1])
	}
	none := filepath.Join(t.TempDir(), "none")
	_, ee, ecode := run(t, "etcdutl", "defrag", "--data-dir", none)
	_, ce, ccode := run(t, "cairnctl", "defrag", "--data-dir", none)
	if ecode != ccode || errorLine(ee) != errorLine(ce) || ecode == 0 {
		t.Errorf("defrag of a dir without a database: etcdutl exit %d %q, cairnctl exit %d %q", ecode, errorLine(ee), ccode, errorLine(ce))
	}
}
