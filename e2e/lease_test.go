package e2e

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestLeaseLifecycle(t *testing.T) {
	t.Parallel()
	c := NewCluster(t, 1)
	cli := c.Client(t)

	g, err := cli.Grant(ctx(t), 2)
	if err != nil || g.TTL != 2 || g.ID == 0 {
		t.Fatalf("grant: %+v %v", g, err)
	}
	if _, err := cli.Put(ctx(t), "svc/a", "up", clientv3.WithLease(g.ID)); err != nil {
		t.Fatal(err)
	}
	ttl, err := cli.TimeToLive(ctx(t), g.ID, clientv3.WithAttachedKeys())
	if err != nil || ttl.GrantedTTL != 2 || ttl.TTL <= 0 || ttl.TTL > 2 || len(ttl.Keys) != 1 || string(ttl.Keys[0]) != "svc/a" {
		t.Fatalf("time-to-live: %+v %v", ttl, err)
	}
	leases, err := cli.Leases(ctx(t))
	if err != nil || len(leases.Leases) != 1 || leases.Leases[0].ID != g.ID {
		t.Fatalf("leases: %+v %v", leases, err)
	}

	// Kept alive for three TTLs, the key stays.
	kctx, stop := context.WithCancel(context.Background())
	ch, err := cli.KeepAlive(kctx, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for range ch {
		}
	}()
	consistently(t, 6*time.Second, "the kept-alive key svc/a", func() (bool, string) {
		r, err := cli.Get(ctx(t), "svc/a")
		return err == nil && len(r.Kvs) == 1, fmt.Sprint(r, err)
	})
	stop()

	// Abandoned, the lease expires and takes the key with it.
	eventually(t, 10*time.Second, "the key of an abandoned 2s lease to go", func() (bool, string) {
		r, err := cli.Get(ctx(t), "svc/a")
		if err != nil {
			t.Fatal(err)
		}
		return len(r.Kvs) == 0, fmt.Sprint(r.Kvs)
	})
	if _, err := cli.TimeToLive(ctx(t), g.ID); err != nil {
		t.Fatalf("time-to-live of an expired lease must answer TTL -1, not %v", err)
	}

	// Revoke deletes every attached key in one revision.
	g2, err := cli.Grant(ctx(t), 60)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"r/1", "r/2", "r/3"} {
		if _, err := cli.Put(ctx(t), k, "v", clientv3.WithLease(g2.ID)); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := cli.Get(ctx(t), "r/1")
	rv, err := cli.Revoke(ctx(t), g2.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rv.Header.Revision != before.Header.Revision+1 {
		t.Fatalf("revoke at revision %d, want %d (one revision for all keys)", rv.Header.Revision, before.Header.Revision+1)
	}
	if r, _ := cli.Get(ctx(t), "r/", clientv3.WithPrefix()); len(r.Kvs) != 0 {
		t.Fatalf("revoked lease's keys remain: %v", r.Kvs)
	}
	if _, err := cli.Revoke(ctx(t), g2.ID); !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		t.Fatalf("second revoke: %v, want %v", err, rpctypes.ErrLeaseNotFound)
	}
	if _, err := cli.Put(ctx(t), "k", "v", clientv3.WithLease(g2.ID)); !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		t.Fatalf("put with a revoked lease: %v, want %v", err, rpctypes.ErrLeaseNotFound)
	}
}

func TestEtcdctlLeaseCommands(t *testing.T) {
	t.Parallel()
	c := NewCluster(t, 1)
	out := c.Etcdctl(t, "lease", "grant", "60")
	m := regexp.MustCompile(`^lease ([0-9a-f]+) granted with TTL\(60s\)\n$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("lease grant: %q", out)
	}
	id := m[1]
	if got := c.Etcdctl(t, "put", "--lease="+id, "k", "v"); got != "OK\n" {
		t.Fatalf("put --lease: %q", got)
	}
	ttl := c.Etcdctl(t, "lease", "timetolive", id, "--keys")
	if !regexp.MustCompile(`^lease ` + id + ` granted with TTL\(60s\), remaining\((59|60)s\), attached keys\(\[k\]\)\n$`).MatchString(ttl) {
		t.Fatalf("lease timetolive --keys: %q", ttl)
	}
	if got := c.Etcdctl(t, "lease", "list"); got != fmt.Sprintf("found 1 leases\n%s\n", id) {
		t.Fatalf("lease list: %q", got)
	}
	if got := c.Etcdctl(t, "lease", "keep-alive", "--once", id); got != fmt.Sprintf("lease %s keepalived with TTL(60)\n", id) {
		t.Fatalf("lease keep-alive --once: %q", got)
	}
	if got := c.Etcdctl(t, "lease", "revoke", id); got != fmt.Sprintf("lease %s revoked\n", id) {
		t.Fatalf("lease revoke: %q", got)
	}
	if got := c.Etcdctl(t, "get", "k"); strings.TrimSpace(got) != "" {
		t.Fatalf("get after revoke: %q", got)
	}
}

func TestLeasesSurviveLeaderKill(t *testing.T) {
	t.Parallel()
	c := NewCluster(t, 3)
	cli := c.Client(t)
	var ids []clientv3.LeaseID
	for i := 0; i < 3; i++ {
		g, err := cli.Grant(ctx(t), 3)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, g.ID)
		if _, err := cli.Put(ctx(t), fmt.Sprintf("svc/%d", i), "up", clientv3.WithLease(g.ID)); err != nil {
			t.Fatal(err)
		}
	}
	kctx, stop := context.WithCancel(context.Background())
	defer stop()
	for _, id := range ids {
		ch, err := cli.KeepAlive(kctx, id)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for range ch {
			}
		}()
	}
	lead := c.waitLeader(t, c.Members, -1)
	c.Members[lead].Kill(t)
	var rest []*Member
	for i, m := range c.Members {
		if i != lead {
			rest = append(rest, m)
		}
	}
	c.waitLeader(t, rest, lead)
	// More than two TTLs after the leader died, the keys are all there.
	rc := c.Client(t, rest...)
	consistently(t, 7*time.Second, "the kept-alive keys after a leader kill", func() (bool, string) {
		for i := range ids {
			r, err := rc.Get(ctx(t), fmt.Sprintf("svc/%d", i))
			if err != nil || len(r.Kvs) != 1 {
				return false, fmt.Sprintf("svc/%d: %v %v", i, r, err)
			}
		}
		return true, ""
	})
}

// consistently checks cond every 100 ms while d of real time passes, and
// fails the test the first time it does not hold. It is for what must stay
// true as time passes, such as a kept-alive lease outliving several TTLs:
// there is no event to wait for, the passing time is what is tested, so
// the wait is kept, but a failure ends it at once.
func consistently(t testing.TB, d time.Duration, what string, cond func() (ok bool, detail string)) {
	t.Helper()
	start := time.Now()
	for {
		if ok, detail := cond(); !ok {
			t.Fatalf("%s: stopped holding after %v of %v (%s)", what, time.Since(start).Round(time.Millisecond), d, detail)
		}
		if time.Since(start) >= d {
			return
		}
		time.Sleep(100 * time.Millisecond) // the checking interval
	}
}
