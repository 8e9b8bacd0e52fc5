package e2e

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// renderTable draws a table as etcdctl's -w table does (tablewriter
// defaults with right-aligned rows): box-drawing borders, headers upper
// case and centred (extra space on the right), cells right-aligned, one
// space of padding.
func renderTable(hdr []string, rows [][]string) string {
	widths := make([]int, len(hdr))
	for i, h := range hdr {
		widths[i] = utf8.RuneCountInString(h)
	}
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	line := func(l, m, r string) string {
		parts := make([]string, len(widths))
		for i, w := range widths {
			parts[i] = strings.Repeat("─", w+2)
		}
		return l + strings.Join(parts, m) + r + "\n"
	}
	var b strings.Builder
	b.WriteString(line("┌", "┬", "┐"))
	b.WriteString("│")
	for i, h := range hdr {
		h = strings.ToUpper(h)
		pad := widths[i] - utf8.RuneCountInString(h)
		b.WriteString(" " + strings.Repeat(" ", pad/2) + h + strings.Repeat(" ", pad-pad/2) + " │")
	}
	b.WriteString("\n")
	b.WriteString(line("├", "┼", "┤"))
	for _, r := range rows {
		b.WriteString("│")
		for i, c := range r {
			b.WriteString(" " + strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c)) + c + " │")
		}
		b.WriteString("\n")
	}
	b.WriteString(line("└", "┴", "┘"))
	return b.String()
}

// humanBytes formats n as go-humanize's Bytes does (SI units), which is
// what etcdctl prints for sizes.
func humanBytes(n uint64) string {
	if n < 10 {
		return fmt.Sprintf("%d B", n)
	}
	units := []string{"B", "kB", "MB", "GB", "TB", "PB", "EB"}
	e := math.Floor(math.Log(float64(n)) / math.Log(1000))
	val := math.Floor(float64(n)/math.Pow(1000, e)*10+0.5) / 10
	f := "%.0f %s"
	if val < 10 {
		f = "%.1f %s"
	}
	return fmt.Sprintf(f, val, units[int(e)])
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[uint64]string{0: "0 B", 9: "9 B", 10: "10 B", 999: "999 B", 1000: "1.0 kB", 20480: "20 kB", 1234567: "1.2 MB", 2147483648: "2.1 GB"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestEtcdctlKV(t *testing.T) {
	t.Parallel()
	c := NewCluster(t, 1)
	cli := c.Client(t)

	check := func(what, got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("%s: output\n%q\nwant\n%q", what, got, want)
		}
	}
	check("put foo bar", c.Etcdctl(t, "put", "foo", "bar"), "OK\n")
	check("get foo", c.Etcdctl(t, "get", "foo"), "foo\nbar\n")
	check("put --prev-kv", c.Etcdctl(t, "put", "foo", "bar2", "--prev-kv"), "OK\nfoo\nbar\n")
	check("put p/a", c.Etcdctl(t, "put", "p/a", "1"), "OK\n")
	check("put p/b", c.Etcdctl(t, "put", "p/b", "2"), "OK\n")
	check("get --prefix", c.Etcdctl(t, "get", "--prefix", "p/"), "p/a\n1\np/b\n2\n")
	check("get --prefix --keys-only", c.Etcdctl(t, "get", "--prefix", "--keys-only", "p/"), "p/a\n\np/b\n\n")
	check("get --print-value-only", c.Etcdctl(t, "get", "foo", "--print-value-only"), "bar2\n")
	check("get --prefix --limit 1", c.Etcdctl(t, "get", "--prefix", "--limit", "1", "p/"), "p/a\n1\n")
	check("get --prefix --order DESCEND", c.Etcdctl(t, "get", "--prefix", "--order", "DESCEND", "p/"), "p/b\n2\np/a\n1\n")
	check("get --rev 2", c.Etcdctl(t, "get", "foo", "--rev", "2"), "foo\nbar\n")
	check("get missing", c.Etcdctl(t, "get", "missing"), "")

	// -w json: the RangeResponse as JSON, bytes in base64.
	st, err := cli.Status(ctx(t), c.Members[0].ClientURL)
	if err != nil {
		t.Fatal(err)
	}
	h := st.Header
	check("get -w json", c.Etcdctl(t, "get", "foo", "-w", "json"),
		fmt.Sprintf(`{"header":{"cluster_id":%d,"member_id":%d,"revision":5,"raft_term":%d},"kvs":[{"key":"Zm9v","create_revision":2,"mod_revision":3,"version":2,"value":"YmFyMg=="}],"count":1}`+"\n",
			h.ClusterId, h.MemberId, h.RaftTerm))

	check("del foo", c.Etcdctl(t, "del", "foo"), "1\n")
	check("del missing", c.Etcdctl(t, "del", "foo"), "0\n")
	check("del --prefix --prev-kv", c.Etcdctl(t, "del", "--prefix", "--prev-kv", "p/"), "2\np/a\n1\np/b\n2\n")

	// txn from stdin: compares, blank line, success ops, blank line, failure ops.
	check("put key1", c.Etcdctl(t, "put", "key1", "v1"), "OK\n")
	txn := "value(\"key1\") = \"v1\"\nmod(\"key1\") > \"0\"\n\nput key1 \"overwrote\"\nget key1\n\nput key1 \"failure\"\n\n"
	check("txn success", c.EtcdctlStdin(t, txn, "txn"), "SUCCESS\n\nOK\n\nkey1\noverwrote\n")
	check("txn failure", c.EtcdctlStdin(t, txn, "txn"), "FAILURE\n\nOK\n")
	check("get key1 after txns", c.Etcdctl(t, "get", "key1"), "key1\nfailure\n")
	txnDel := "version(\"key1\") = \"3\"\n\ndel key1\nput key2 \"x\"\n\n\n"
	check("txn del", c.EtcdctlStdin(t, txnDel, "txn"), "SUCCESS\n\n1\n\nOK\n")

	// Revision bookkeeping seen by clientv3 agrees with what etcdctl did:
	// foo@2,3 p/a@4 p/b@5 del foo@6 del p/@7 key1@8 txn@9 txn@10 txn@11.
	g, err := cli.Get(ctx(t), "key2")
	checkGet(t, "clientv3 get key2", g, err, wantKVs(want("key2", "x", 11, 11, 1)), 1, false, 11)

	// compaction, then reading the compacted revision fails with etcd's error.
	check("compaction", c.Etcdctl(t, "compaction", "9"), "compacted revision 9\n")
	r := c.etcdctlAt(t, c.ClientURLs(), "", "get", "key1", "--rev", "8")
	if r.Code != 1 || r.Stdout != "" || lastLine(r.Stderr) != "Error: etcdserver: mvcc: required revision has been compacted" {
		t.Errorf("get at compacted rev: exit %d stdout %q stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	r = c.etcdctlAt(t, c.ClientURLs(), "", "get", "key1", "--rev", "100")
	if r.Code != 1 || lastLine(r.Stderr) != "Error: etcdserver: mvcc: required revision is a future revision" {
		t.Errorf("get at future rev: exit %d stdout %q stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	r = c.etcdctlAt(t, c.ClientURLs(), "", "put", "", "v")
	if r.Code != 1 || lastLine(r.Stderr) != "Error: etcdserver: key is not provided" {
		t.Errorf("put empty key: exit %d stdout %q stderr %q", r.Code, r.Stdout, r.Stderr)
	}
}

func TestEtcdctlOperations(t *testing.T) {
	t.Parallel()
	c := NewCluster(t, 1)
	cli := c.Client(t)
	m := c.Members[0]
	for i := 0; i < 20; i++ {
		if _, err := cli.Put(ctx(t), fmt.Sprintf("k%02d", i), strings.Repeat("v", 100)); err != nil {
			t.Fatal(err)
		}
	}

	ml, err := cli.MemberList(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(ml.Members) != 1 {
		t.Fatalf("member list: %v", ml.Members)
	}
	id := fmt.Sprintf("%x", ml.Members[0].ID)
	wantML := renderTable([]string{"ID", "Status", "Name", "Peer Addrs", "Client Addrs", "Is Learner"},
		[][]string{{id, "started", m.Name, m.PeerURL, m.ClientURL, "false"}})
	if got := c.Etcdctl(t, "member", "list", "-w", "table"); got != wantML {
		t.Errorf("member list -w table:\n%s\nwant\n%s", got, wantML)
	}
	if got, w := c.Etcdctl(t, "member", "list"), fmt.Sprintf("%s, started, %s, %s, %s, false\n", id, m.Name, m.PeerURL, m.ClientURL); got != w {
		t.Errorf("member list: %q, want %q", got, w)
	}

	health := c.Etcdctl(t, "endpoint", "health")
	if !regexp.MustCompile(`^` + regexp.QuoteMeta(m.ClientURL) + ` is healthy: successfully committed proposal: took = [0-9.]+[µnm]?s\n$`).MatchString(health) {
		t.Errorf("endpoint health: %q", health)
	}

	if got := c.Etcdctl(t, "alarm", "list"); got != "" {
		t.Errorf("alarm list: %q, want nothing", got)
	}

	status := func() *clientv3.StatusResponse {
		t.Helper()
		st, err := cli.Status(ctx(t), m.ClientURL)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	st := status()
	if st.Version != "3.7.0" || st.DbSize <= 0 || st.DbSizeInUse <= 0 || st.DbSizeInUse > st.DbSize ||
		st.Leader != ml.Members[0].ID || st.RaftIndex == 0 || st.RaftAppliedIndex != st.RaftIndex || st.IsLearner || len(st.Errors) != 0 {
		t.Errorf("status %+v", st)
	}
	statusTable := func(st *clientv3.StatusResponse) string {
		resp := (*pb.StatusResponse)(st)
		return renderTable([]string{
			"endpoint", "ID", "version", "storage version", "db size", "in use", "percentage not in use", "quota", "is leader", "is learner", "raft term",
			"raft index", "raft applied index", "errors", "downgrade target version", "downgrade enabled",
		}, [][]string{{
			m.ClientURL, id, "3.7.0", resp.GetStorageVersion(),
			humanBytes(uint64(resp.GetDbSize())), humanBytes(uint64(resp.GetDbSizeInUse())),
			fmt.Sprintf("%d%%", 100-resp.GetDbSizeInUse()*100/resp.GetDbSize()),
			humanBytes(uint64(resp.GetDbSizeQuota())),
			"true", "false", fmt.Sprint(resp.GetRaftTerm()), fmt.Sprint(resp.GetRaftIndex()), fmt.Sprint(resp.GetRaftAppliedIndex()),
			"", "", "false",
		}})
	}
	// The sizes and indexes move when a batch commits or the member
	// publishes itself between the two calls: retry until they agree.
	eventually(t, requestTimeout, "endpoint status -w table to match Status", func() (bool, string) {
		got := c.Etcdctl(t, "endpoint", "status", "-w", "table")
		want := statusTable(status())
		return got == want, fmt.Sprintf("got\n%s\nwant\n%s", got, want)
	})

	// snapshot save: the file is the database followed by its sha256.
	snap := filepath.Join(t.TempDir(), "snap.db")
	r := c.etcdctlAt(t, []string{m.ClientURL}, "", "snapshot", "save", snap)
	// etcd sends its storage version in the snapshot stream, the same
	// string Status reports as storage_version.
	if r.Code != 0 || r.Stdout != "Snapshot saved at "+snap+"\nServer version "+st.StorageVersion+"\n" {
		t.Errorf("snapshot save: exit %d stdout %q stderr %s", r.Code, r.Stdout, r.Stderr)
	}
	data, err := os.ReadFile(snap)
	if err != nil {
		t.Error(err)
	}
	stAfter := status()
	if err == nil && int64(len(data)) != stAfter.DbSize+sha256.Size {
		t.Errorf("snapshot file is %d bytes, want db size %d + %d", len(data), stAfter.DbSize, sha256.Size)
	}
	if len(data) > sha256.Size {
		db, sum := data[:len(data)-sha256.Size], data[len(data)-sha256.Size:]
		if s := sha256.Sum256(db); !bytes.Equal(s[:], sum) {
			t.Errorf("snapshot checksum %x does not match the sha256 of the database %x", sum, s)
		}
		dbPath := filepath.Join(t.TempDir(), "db")
		if err := os.WriteFile(dbPath, db, 0o600); err != nil {
			t.Fatal(err)
		}
		checkBoltDB(t, dbPath)
	}

	// compaction and defrag.
	if got := c.Etcdctl(t, "compaction", "--physical", "15"); got != "compacted revision 15\n" {
		t.Errorf("compaction --physical 15: %q", got)
	}
	defrag := c.Etcdctl(t, "defrag")
	if !regexp.MustCompile(`^Finished defragmenting etcd member\[` + regexp.QuoteMeta(m.ClientURL) + `\]\. took [0-9.]+[µnm]?s\n$`).MatchString(defrag) {
		t.Errorf("defrag: %q", defrag)
	}
	g, err := cli.Get(ctx(t), "k", clientv3.WithPrefix(), clientv3.WithCountOnly())
	checkGet(t, "count after defrag", g, err, wantKVs(), 20, false, 21)
	stDefrag := status()
	if stDefrag.DbSizeInUse > stDefrag.DbSize || stDefrag.DbSize > stAfter.DbSize {
		t.Errorf("after defrag db size %d in use %d; before %d", stDefrag.DbSize, stDefrag.DbSizeInUse, stAfter.DbSize)
	}
	if got := c.Etcdctl(t, "endpoint", "status", "-w", "table"); got != statusTable(status()) {
		t.Errorf("endpoint status -w table after defrag:\n%s\nwant\n%s", got, statusTable(status()))
	}
}

// checkBoltDB opens path as a bbolt database and checks it holds etcd's
// key bucket with the 21 revisions written by TestEtcdctlOperations, and
// passes bbolt's consistency check.
func checkBoltDB(t *testing.T, path string) {
	t.Helper()
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("snapshot is not a bbolt database: %v", err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		var errs []error
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		if len(errs) > 0 {
			return fmt.Errorf("bbolt check: %w", errors.Join(errs...))
		}
		b := tx.Bucket([]byte("key"))
		if b == nil {
			var names []string
			tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
				names = append(names, string(name))
				return nil
			})
			return fmt.Errorf("no \"key\" bucket; buckets: %q", names)
		}
		if n := b.Stats().KeyN; n != 20 {
			return fmt.Errorf("\"key\" bucket holds %d revisions, want 20", n)
		}
		if tx.Bucket([]byte("meta")) == nil {
			return fmt.Errorf("no \"meta\" bucket")
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}
