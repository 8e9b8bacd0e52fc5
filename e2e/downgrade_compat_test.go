package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cairnkv/cairn/internal/testutil"
)

// Downgrades as etcd 3.7.3 does them. This test passes against etcd too:
// CAIRN_E2E_CAIRN=/path/to/etcd go test ./e2e -run TestDowngradeCompat.

// memberVersions is what one member reports: /version's cluster and
// storage versions, and Status's storage version and downgrade job.
type memberVersions struct {
	Cluster, Storage, StatusStorage, Target string
	Enabled                                 bool
}

func (v memberVersions) String() string {
	return fmt.Sprintf("cluster=%s storage=%s status-storage=%s downgrade=%v/%s", v.Cluster, v.Storage, v.StatusStorage, v.Enabled, v.Target)
}

func versionsOf(t *testing.T, c *Cluster, m *Member) (memberVersions, error) {
	t.Helper()
	var out memberVersions
	resp, err := http.Get(m.ClientURL + "/version")
	if err != nil {
		return out, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return out, err
	}
	var v struct {
		Cluster string `json:"etcdcluster"`
		Storage string `json:"storage"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return out, fmt.Errorf("/version %q: %w", body, err)
	}
	st, err := c.MemberClient(t, m).Status(ctx(t), m.ClientURL)
	if err != nil {
		return out, err
	}
	return memberVersions{Cluster: v.Cluster, Storage: v.Storage, StatusStorage: st.StorageVersion,
		Target: st.DowngradeInfo.GetTargetVersion(), Enabled: st.DowngradeInfo.GetEnabled()}, nil
}

// waitVersions waits until every member reports want.
func waitVersions(t *testing.T, c *Cluster, what string, want memberVersions) {
	t.Helper()
	testutil.Eventually(t, 30*time.Second, what, func() (bool, string) {
		var got []string
		ok := true
		for _, m := range c.Members {
			v, err := versionsOf(t, c, m)
			if err != nil {
				return false, err.Error()
			}
			got = append(got, m.Name+": "+v.String())
			ok = ok && v == want
		}
		return ok, strings.Join(got, "; ")
	})
}

// dbVersions reads a stopped member's database: the storage version in
// meta, and the cluster bucket's cluster version and downgrade job.
func dbVersions(t *testing.T, m *Member) (storage, cluster, downgrade string) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(m.DataDir, "member", "snap", "db"), 0o400, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket([]byte("meta")); b != nil {
			storage = string(b.Get([]byte("storageVersion")))
		}
		if b := tx.Bucket([]byte("cluster")); b != nil {
			cluster, downgrade = string(b.Get([]byte("clusterVersion"))), string(b.Get([]byte("downgrade")))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return storage, cluster, downgrade
}

// ctlLine runs etcdctl against every member and returns its exit code and
// the last line of its output (the result, or etcdctl's "Error: ...").
func ctlLine(t *testing.T, c *Cluster, args ...string) (int, string) {
	t.Helper()
	r := c.etcdctlAt(t, c.ClientURLs(), "", args...)
	if r.Code != 0 {
		return r.Code, lastLine(r.Stderr)
	}
	return r.Code, lastLine(r.Stdout)
}

func TestDowngradeCompat(t *testing.T) {
	c := NewCluster(t, 3)
	atVersion := func(v string) memberVersions { return memberVersions{Cluster: v, Storage: v, StatusStorage: v} }
	// A new cluster's version is decided by its leader's monitor.
	waitVersions(t, c, "a new cluster at 3.7", atVersion("3.7.0"))

	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"downgrade", "validate", "3.6"}, 0, "Downgrade validate success, cluster version 3.7"},
		{[]string{"downgrade", "validate", "3.6.0"}, 0, "Downgrade validate success, cluster version 3.7"},
		{[]string{"downgrade", "validate", "3.5"}, 1, "Error: etcdserver: invalid downgrade target version"},
		{[]string{"downgrade", "validate", "3.7"}, 1, "Error: etcdserver: invalid downgrade target version"},
		{[]string{"downgrade", "validate", "4.0"}, 1, "Error: etcdserver: invalid downgrade target version"},
		{[]string{"downgrade", "validate", "abc"}, 1, "Error: etcdserver: wrong downgrade target version format"},
		{[]string{"downgrade", "validate", "v3.6"}, 1, "Error: etcdserver: wrong downgrade target version format"},
		{[]string{"downgrade", "enable", "3.5"}, 1, "Error: etcdserver: invalid downgrade target version"},
		{[]string{"downgrade", "cancel"}, 0, "Downgrade cancel success, cluster version 3.7"}, // no job: success all the same
		{[]string{"downgrade", "enable", "3.6"}, 0, "Downgrade enable success, cluster version 3.7"},
		{[]string{"downgrade", "enable", "3.6"}, 1, "Error: etcdserver: cluster has a downgrade job in progress"},
		{[]string{"downgrade", "validate", "3.6"}, 1, "Error: etcdserver: cluster has a downgrade job in progress"},
	} {
		code, got := ctlLine(t, c, tc.args...)
		if code != tc.code || got != tc.want {
			t.Fatalf("etcdctl %s: exit %d %q, want exit %d %q", strings.Join(tc.args, " "), code, got, tc.code, tc.want)
		}
	}
	var js struct {
		Header struct {
			ClusterID uint64 `json:"cluster_id"`
		} `json:"header"`
		Version string `json:"version"`
	}
	if err := json.Unmarshal([]byte(c.Etcdctl(t, "downgrade", "cancel", "-w", "json")), &js); err != nil || js.Version != "3.7" || js.Header.ClusterID == 0 {
		t.Fatalf("downgrade cancel -w json: %+v %v", js, err)
	}
	c.Etcdctl(t, "downgrade", "enable", "3.6")

	downgraded := memberVersions{Cluster: "3.6.0", Storage: "3.6.0", StatusStorage: "3.6.0", Target: "3.6.0", Enabled: true}
	waitVersions(t, c, "the cluster downgraded to 3.6", downgraded)
	table := c.Etcdctl(t, "endpoint", "status", "-w", "table")
	for _, m := range c.Members {
		host := strings.TrimPrefix(m.ClientURL, "http://")
		var row string
		for _, l := range strings.Split(table, "\n") {
			if strings.Contains(l, host) {
				row = l
			}
		}
		// STORAGE VERSION, then at the end DOWNGRADE TARGET VERSION and DOWNGRADE ENABLED.
		cells := strings.FieldsFunc(row, func(r rune) bool { return r == '│' || r == '|' })
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if len(cells) != 16 || cells[3] != "3.6.0" || cells[14] != "3.6.0" || cells[15] != "true" {
			t.Fatalf("endpoint status row of %s: %q\n%s", m.Name, cells, table)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"downgrade", "validate", "3.6"}, "Error: etcdserver: invalid downgrade target version"},
		{[]string{"downgrade", "validate", "3.5"}, "Error: etcdserver: cluster has a downgrade job in progress"},
	} {
		if code, got := ctlLine(t, c, tc.args...); code != 1 || got != tc.want {
			t.Fatalf("etcdctl %s while downgraded: exit %d %q, want %q", strings.Join(tc.args, " "), code, got, tc.want)
		}
	}

	// A snapshot says which storage version it holds.
	snap, err := c.MemberClient(t, c.Members[1]).SnapshotWithVersion(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, snap.Snapshot)
	snap.Snapshot.Close()
	if snap.Version != "3.6.0" {
		t.Fatalf("snapshot of a downgraded member: version %q, want 3.6.0", snap.Version)
	}

	// The database records it, and a restart keeps it.
	m := c.Members[0]
	stopCompat(t, m)
	storage, cluster, dg := dbVersions(t, m)
	if storage != "3.6.0" || cluster != "3.6.0" || dg != `{"target-version":"3.6.0","enabled":true}` {
		t.Fatalf("database of a stopped member: meta/storageVersion %q, cluster/clusterVersion %q, cluster/downgrade %q", storage, cluster, dg)
	}
	m.Restart(t)
	m.WaitReady(t)
	waitVersions(t, c, "the cluster still downgraded after a restart", downgraded)

	if code, got := ctlLine(t, c, "downgrade", "cancel"); code != 0 || got != "Downgrade cancel success, cluster version 3.6" {
		t.Fatalf("downgrade cancel: exit %d %q", code, got)
	}
	waitVersions(t, c, "the cluster back at 3.7 after the cancel", atVersion("3.7.0"))
	stopCompat(t, m)
	if storage, cluster, dg := dbVersions(t, m); storage != "3.7.0" || cluster != "3.7.0" || dg != `{"target-version":"","enabled":false}` {
		t.Fatalf("database after the cancel: meta/storageVersion %q, cluster/clusterVersion %q, cluster/downgrade %q", storage, cluster, dg)
	}
}
