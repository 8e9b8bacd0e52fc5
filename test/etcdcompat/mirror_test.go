package etcdcompat

import (
	"bytes"
	"fmt"
	"os/exec"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/internal/testutil"
)

// dump is what docs/backup.md compares after make-mirror: every key and
// value, as `etcdctl get "" --prefix` prints them.
func dump(t *testing.T, s *server) string {
	t.Helper()
	out := cairnctl(t, "--endpoints", s.ClientURL, "get", "", "--prefix")
	return out
}

// Online migration from a live etcd 3.7.3 into Cairn with make-mirror
// (docs/backup.md): cairnctl make-mirror (etcdctl's) copies every key and
// then follows etcd's writes, and the key/value dumps of both agree. What
// make-mirror cannot keep, and so what `endpoint hashkv` cannot compare:
// the destination writes each key anew, so revisions (create, mod,
// version) and the HashKV over them differ, and leases are not copied.
func TestMakeMirrorFromEtcdIntoCairn(t *testing.T) {
	e := startNew(t, etcdKind, "e1")
	c := startNew(t, cairnKind, "c1")
	writeHistory(t, e)

	mirror := exec.Command(bins["cairnctl"], "--endpoints", e.ClientURL, "make-mirror", c.ClientURL)
	var out bytes.Buffer
	mirror.Stdout, mirror.Stderr = &out, &out
	if err := mirror.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = mirror.Process.Kill()
		_ = mirror.Wait()
		if t.Failed() {
			t.Logf("make-mirror's output:\n%s", out.String())
		}
	})
	same := func(what string) {
		t.Helper()
		testutil.Eventually(t, 30*time.Second, what, func() (bool, string) {
			ed, cd := dump(t, e), dump(t, c)
			return ed == cd && ed != "", fmt.Sprintf("etcd:\n%s\ncairn:\n%s", ed, cd)
		})
	}
	same("the mirror holds etcd's keys")

	// Writes made on etcd while the mirror runs follow.
	ctx := opCtx(t)
	if _, err := e.cli.Put(ctx, "while-mirroring", "1"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.cli.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.cli.Txn(ctx).Then(clientv3.OpPut("t1", "x"), clientv3.OpPut("t2", "y")).Commit(); err != nil {
		t.Fatal(err)
	}
	same("the mirror follows etcd's writes")

	// The findings docs/backup.md states: revisions and HashKV differ,
	// leases are not mirrored.
	eg, err := e.cli.Get(ctx, "lk")
	if err != nil || len(eg.Kvs) != 1 || eg.Kvs[0].Lease == 0 {
		t.Fatalf("etcd's leased key: %v %v", eg, err)
	}
	cg, err := c.cli.Get(ctx, "lk")
	if err != nil || len(cg.Kvs) != 1 || cg.Kvs[0].Lease != 0 || string(cg.Kvs[0].Value) != "held" {
		t.Errorf("the mirrored leased key: %v %v; want its value without a lease (make-mirror copies no lease)", cg, err)
	}
	ll, err := c.cli.Leases(ctx)
	if err != nil || len(ll.Leases) != 0 {
		t.Errorf("leases on the mirror: %v %v, want none", ll, err)
	}
	eh, ch := hashKV(t, e, 0), hashKV(t, c, 0)
	t.Logf("after make-mirror: etcd HashKV %+v, cairn HashKV %+v (revisions differ, so HashKV does)", eh, ch)
	if eh.HashRevision == ch.HashRevision && eh.Hash == ch.Hash {
		t.Errorf("HashKV agrees after make-mirror (%+v): docs/backup.md says it cannot; update it", eh)
	}
}
