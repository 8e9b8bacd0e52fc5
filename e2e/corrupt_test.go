package e2e

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/protobuf/proto"
)

// flipValue changes, in a stopped member's database, the value of key's
// latest revision, as a bad disk or a bug would: nothing in the files says
// anything is wrong.
func flipValue(t *testing.T, dataDir, key string) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dataDir, "member", "snap", "db"), 0o600, &bolt.Options{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("key"))
		var latestKey []byte
		var latest *mvccpb.KeyValue
		err := b.ForEach(func(k, v []byte) error {
			kv := &mvccpb.KeyValue{}
			if err := proto.Unmarshal(v, kv); err != nil {
				return err
			}
			if string(kv.Key) == key && (latest == nil || kv.ModRevision > latest.ModRevision) {
				latestKey, latest = append([]byte(nil), k...), kv
			}
			return nil
		})
		if err != nil {
			return err
		}
		if latest == nil {
			return fmt.Errorf("no revision of %q in the database", key)
		}
		latest.Value = append(bytes.Clone(latest.Value), '!')
		v, err := proto.Marshal(latest)
		if err != nil {
			return err
		}
		return b.Put(latestKey, v)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestCorruptMemberIsDetected: a member whose stored data silently differs
// from the others' is found by the leader's compact hash check (on by
// default, etcd's is an alpha feature gate) at the next compaction: the
// cluster raises a CORRUPT alarm naming that member and refuses writes with
// etcd's "corrupt cluster" error until an operator deals with it.
func TestCorruptMemberIsDetected(t *testing.T) {
	t.Parallel()
	c := NewClusterArgs(t, 3, "--compact-hash-check-time", "200ms")
	cli := c.Client(t, c.Members[0], c.Members[1])
	for i := 0; i < 20; i++ {
		if _, err := cli.Put(ctx(t), fmt.Sprintf("k%d", i%5), fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	victim := c.Members[2]
	id := memberID(t, cli, victim.Name)
	victim.Stop(t)
	flipValue(t, victim.DataDir, "k3")
	victim.Restart(t)
	victim.WaitReady(t)
	// The victim must have applied everything before the compaction, so
	// that its hash at the compacted revision is taken on the same history.
	resp, err := cli.Put(ctx(t), "before-compaction", "1")
	if err != nil {
		t.Fatal(err)
	}
	vc := c.MemberClient(t, victim)
	if _, err := vc.Get(ctx(t), "before-compaction"); err != nil { // linearizable: caught up
		t.Fatal(err)
	}
	if _, err := cli.Compact(ctx(t), resp.Header.Revision); err != nil {
		t.Fatal(err)
	}
	maint := pb.NewMaintenanceClient(cli.ActiveConnection())
	eventually(t, 30*time.Second, "a CORRUPT alarm for the member whose data was changed", func() (bool, string) {
		r, err := maint.Alarm(ctx(t), &pb.AlarmRequest{Action: pb.AlarmRequest_GET})
		if err != nil {
			return false, err.Error()
		}
		for _, a := range r.Alarms {
			if a.Alarm == pb.AlarmType_CORRUPT && a.MemberID != id {
				t.Fatalf("CORRUPT alarm for %x, a sound member (the changed one is %x)", a.MemberID, id)
			}
		}
		return len(r.Alarms) == 1 && r.Alarms[0].MemberID == id && r.Alarms[0].Alarm == pb.AlarmType_CORRUPT, fmt.Sprint(r.Alarms)
	})
	_, err = cli.Put(ctx(t), "after", "1")
	wantRPCError(t, "a write while the cluster is CORRUPT", err, rpctypes.ErrGRPCCorrupt)
	if _, err := cli.Get(ctx(t), "k0"); err != nil {
		t.Fatalf("reads must still work while CORRUPT: %v", err)
	}
	var logged bool
	for _, m := range c.Members {
		if strings.Contains(m.Log(), fmt.Sprintf(`"corrupt-member-id":"%x"`, id)) {
			logged = true
		}
	}
	if !logged {
		t.Error("no member logged the compact hash check's finding with the corrupt member's ID")
	}
}
