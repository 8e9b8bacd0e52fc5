package api

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// testDB is a deterministic pseudo database of n bytes.
func testDB(n int) []byte {
	r := rand.New(rand.NewPCG(1, uint64(n)))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// verifyLikeEtcdctl checks a saved snapshot the way etcdctl/etcdutl do:
// a size that is 32 more than a multiple of 512 means a sha256 trailer,
// which must be the hash of everything before it.
func verifyLikeEtcdctl(t *testing.T, got []byte) []byte {
	t.Helper()
	if len(got)%512 != sha256.Size {
		t.Fatalf("snapshot of %d bytes has no sha256 trailer by etcdctl's rule", len(got))
	}
	db, sum := got[:len(got)-sha256.Size], got[len(got)-sha256.Size:]
	if h := sha256.Sum256(db); !bytes.Equal(h[:], sum) {
		t.Fatal("sha256 trailer does not match the database")
	}
	return db
}

func TestSnapshotThroughClientIsDBPlusSHA256(t *testing.T) {
	for _, tc := range []struct {
		name   string
		size   int
		opener bool
	}{
		{"spooled, partial last chunk", 5*32*1024 + 3*4096, false},
		{"spooled, exact chunks", 4 * 32 * 1024, false},
		{"spooled, empty", 0, false},
		{"opener", 3*32*1024 + 512, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mb := newMemBackend(t)
			mb.db = testDB(tc.size)
			var be Backend = mb
			ob := &openerBackend{memBackend: mb}
			if tc.opener {
				be = ob
			}
			ts := startServer(t, be, nil)
			c := newClient(t, ts.addr, nil)
			rc, err := c.Snapshot(ctxT(t))
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tc.size+sha256.Size {
				t.Fatalf("got %d bytes, want %d", len(got), tc.size+sha256.Size)
			}
			if !bytes.Equal(verifyLikeEtcdctl(t, got), mb.db) {
				t.Fatal("snapshot bytes differ from the backend's database")
			}
			// The handler returned (and closed the snapshot) before the
			// client saw the end of the stream.
			mb.mu.Lock()
			opened, closed := ob.opened, ob.closed
			mb.mu.Unlock()
			if tc.opener && (opened != 1 || closed != 1) {
				t.Fatalf("opener used %d times, closed %d times", opened, closed)
			}
		})
	}
}

func TestSnapshotMessagesCarryRemainingBytesAndVersion(t *testing.T) {
	mb := newMemBackend(t)
	mb.db = testDB(2*32*1024 + 1000)
	ts := startServer(t, mb, nil)
	stream, err := pb.NewMaintenanceClient(rawConn(t, ts.addr)).Snapshot(ctxT(t), &pb.SnapshotRequest{})
	if err != nil {
		t.Fatal(err)
	}
	type msg struct {
		blob      int
		remaining uint64
	}
	var got []msg
	for {
		r, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if r.Version != "3.7.0" {
			t.Fatalf("version = %q, want 3.7.0", r.Version)
		}
		got = append(got, msg{len(r.Blob), r.RemainingBytes})
	}
	want := []msg{{32768, 32768 + 1000}, {32768, 1000}, {1000, 0}, {32, 0}}
	if len(got) != len(want) {
		t.Fatalf("messages = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("messages = %v, want %v", got, want)
		}
	}
}

func TestSnapshotLogsProgress(t *testing.T) {
	mb := newMemBackend(t)
	mb.db = testDB(9 << 20)
	ts := startServer(t, mb, nil)
	rc, err := newClient(t, ts.addr, nil).Snapshot(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, rc); err != nil {
		t.Fatal(err)
	}
	rc.Close()
	var sent []int64
	for _, e := range ts.logs.FilterMessage("sent database snapshot bytes").All() {
		sent = append(sent, e.ContextMap()["sent-bytes"].(int64))
	}
	if len(sent) != 2 || sent[0] != 8<<20 || sent[1] != 9<<20 {
		t.Fatalf("progress logged at %v, want [8 MiB, 9 MiB]", sent)
	}
	for _, m := range []string{"sending database snapshot to client", "successfully sent database snapshot to client"} {
		if ts.logs.FilterMessage(m).Len() != 1 {
			t.Fatalf("missing log %q", m)
		}
	}
}
