package e2e

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// snapshotBytesEnv makes TestFollowerCatchesUpThroughStreamedSnapshot write
// that many bytes before the follower comes back (make bench-snapshot sets
// 2 GiB); the default is small enough for make test.
const snapshotBytesEnv = "CAIRN_E2E_SNAPSHOT_BYTES"

// A follower that was down while the cluster moved on and compacted its log
// catches up through a snapshot of the whole database streamed over the
// peer listener: saved to disk as it arrives, installed, every key there;
// the leader keeps its leadership (no election, same term) throughout, and
// nothing but the database is left in member/snap. With a large database
// (CAIRN_E2E_SNAPSHOT_BYTES) the members' anonymous memory must stay far
// below the database's size: neither side holds it in memory.
func TestFollowerCatchesUpThroughStreamedSnapshot(t *testing.T) {
	t.Parallel()
	total := int64(8 << 20)
	if v := os.Getenv(snapshotBytesEnv); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			t.Fatalf("%s=%q: want a positive number of bytes", snapshotBytesEnv, v)
		}
		total = n
	}
	valSize := min(int64(1<<20), max(total/400, 1024))
	puts := max(int(total/valSize), 400)
	c := NewClusterArgs(t, 3, "--snapshot-count=100", "--snapshot-catchup-entries=50",
		"--quota-backend-bytes="+strconv.FormatInt(max(2*total, 2<<30), 10))
	lead := c.waitLeader(t, c.Members, -1)
	follower := c.Members[(lead+1)%3]
	leader := c.Members[lead]
	follower.Stop(t)

	cli := c.MemberClient(t, leader)
	val := strings.Repeat("v", int(valSize))
	start := time.Now()
	var lastRev int64
	for i := range puts {
		r, err := cli.Put(ctx(t), fmt.Sprintf("big/%08d", i), val)
		if err != nil {
			t.Fatalf("put %d of %d: %v", i, puts, err)
		}
		lastRev = r.Header.Revision
	}
	t.Logf("wrote %d keys of %d bytes in %v", puts, valSize, time.Since(start).Round(time.Millisecond))
	before, err := cli.Status(ctx(t), leader.ClientURL)
	if err != nil {
		t.Fatal(err)
	}

	// Sample both members' anonymous memory while the follower catches up.
	var peaks sync.Map
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			for _, m := range []*Member{leader, follower} {
				if kb := rssAnonKB(m.Pid()); kb > 0 {
					if p, ok := peaks.Load(m.Name); !ok || kb > p.(int64) {
						peaks.Store(m.Name, kb)
					}
				}
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	})
	start = time.Now()
	follower.Restart(t)
	fcli := c.MemberClient(t, follower)
	eventually(t, readyTimeout+time.Duration(total>>26)*time.Second, follower.Name+" to catch up", func() (bool, string) {
		r, err := fcli.Get(ctx(t), "big/", clientv3.WithPrefix(), clientv3.WithCountOnly(), clientv3.WithSerializable())
		if err != nil {
			return false, err.Error()
		}
		return r.Header.Revision >= lastRev && r.Count == int64(puts), fmt.Sprintf("rev %d count %d", r.Header.Revision, r.Count)
	})
	close(stop)
	sampler.Wait()
	t.Logf("%s caught up in %v", follower.Name, time.Since(start).Round(time.Millisecond))
	if !strings.Contains(follower.Log(), "saved snapshot database") {
		t.Fatalf("%s caught up without a streamed snapshot; log:\n%s", follower.Name, follower.LogTail(40))
	}
	// Saving the snapshot's database is timed as etcd times it, and the
	// install ends (the new database serves reads a moment before the
	// install is over: the members, alarms and leases load after the swap).
	ms := scrapeMetrics(t, follower)
	for _, name := range []string{"etcd_snap_db_save_total_duration_seconds_count", "etcd_snap_db_fsync_duration_seconds_count"} {
		if v, _ := ms.sum(name); v < 1 {
			t.Errorf("%s: %s = %v after a streamed snapshot, want >= 1", follower.Name, name, v)
		}
	}
	eventually(t, readyTimeout, "etcd_server_snapshot_apply_in_progress_total back to 0 on "+follower.Name, func() (bool, string) {
		v, ok := scrapeMetrics(t, follower).sum("etcd_server_snapshot_apply_in_progress_total")
		return ok && v == 0, fmt.Sprintf("%v (exists %v)", v, ok)
	})
	r, err := fcli.Get(ctx(t), fmt.Sprintf("big/%08d", puts-1), clientv3.WithSerializable())
	if err != nil || len(r.Kvs) != 1 || string(r.Kvs[0].Value) != val {
		t.Fatalf("the last key on %s: %v %v", follower.Name, r, err)
	}
	after, err := cli.Status(ctx(t), leader.ClientURL)
	if err != nil {
		t.Fatal(err)
	}
	if after.Leader != before.Leader || after.RaftTerm != before.RaftTerm {
		t.Fatalf("leadership changed while %s caught up: leader %x term %d, then leader %x term %d",
			follower.Name, before.Leader, before.RaftTerm, after.Leader, after.RaftTerm)
	}
	snapDir := filepath.Join(follower.DataDir, "member", "snap")
	ents, err := os.ReadDir(snapDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() != "db" {
			t.Errorf("%s left %s in %s", follower.Name, e.Name(), snapDir)
		}
	}
	for _, m := range []*Member{leader, follower} {
		p, _ := peaks.Load(m.Name)
		peak, _ := p.(int64)
		t.Logf("%s: peak anonymous memory while catching up %d MiB (leader database %d MiB)", m.Name, peak>>10, before.DbSize>>20)
		if total >= 1<<30 && peak<<10 > before.DbSize/4 {
			t.Errorf("%s used %d MiB of anonymous memory for a %d MiB database: the snapshot is held in memory", m.Name, peak>>10, before.DbSize>>20)
		}
	}
}

// rssAnonKB reads a process's resident anonymous memory in KiB (0 if gone).
func rssAnonKB(pid int) int64 {
	if pid == 0 {
		return 0
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "RssAnon:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return n
		}
	}
	return 0
}
