package transport

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync/atomic"
	"testing"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
	"pgregory.net/rapid"
)

// streamed returns the bytes HTTP sends for m with data.
func streamed(t interface {
	Helper()
	Fatal(...any)
}, m *raftpb.Message, data []byte) []byte {
	t.Helper()
	cp := proto.Clone(m).(*raftpb.Message)
	cp.Snapshot.Data = nil
	head, err := snapshotHead(cp, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	return append(head, data...)
}

// decodeAll runs decodeSnapshot over b and returns what it delivered.
func decodeAll(b []byte) (*raftpb.Message, []byte, error) {
	var got *raftpb.Message
	var data []byte
	err := decodeSnapshot(bufio.NewReader(bytes.NewReader(b)), 1<<30, func(m *raftpb.Message, r io.Reader, size int64) error {
		d, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		if int64(len(d)) != size {
			return errors.New("size differs from the data")
		}
		got, data = m, d
		return nil
	})
	return got, data, err
}

// The streamed encoding is an ordinary encoding of the whole message, so a
// receiver that unmarshals the body reads the same message.
func TestStreamedSnapshotIsTheWholeMessage(t *testing.T) {
	data := []byte("the database bytes")
	m := snapMsg(1, 2, data)
	m.Context = []byte("ctx")
	got := new(raftpb.Message)
	if err := proto.Unmarshal(streamed(t, m, data), got); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got, m) {
		t.Fatalf("unmarshalled %v, want %v", got, m)
	}
}

// decodeSnapshot reads both the streamed order and a plain marshalled
// message (an older sender: data before metadata), and delivers the same.
func TestDecodeSnapshotReadsBothOrders(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 1000)
	m := snapMsg(1, 2, data)
	plain, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"streamed": streamed(t, m, data), "plain": plain} {
		got, gotData, err := decodeAll(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Equal(gotData, data) {
			t.Fatalf("%s: data of %d bytes differs", name, len(gotData))
		}
		want := proto.Clone(m).(*raftpb.Message)
		want.Snapshot.Data = nil
		if !proto.Equal(got, want) {
			t.Fatalf("%s: delivered %v, want %v", name, got, want)
		}
	}
}

// Every truncation of a snapshot body is refused as malformed, and never
// delivers part of the data as if it were all of it.
func TestDecodeSnapshotRefusesTruncatedBodies(t *testing.T) {
	data := []byte("0123456789abcdef")
	b := streamed(t, snapMsg(1, 2, data), data)
	for n := 1; n < len(b); n++ {
		_, _, err := decodeAll(b[:n])
		if err == nil {
			t.Fatalf("a body cut at %d of %d bytes was accepted", n, len(b))
		}
		// Cut inside the data: the stream ends early; elsewhere: malformed.
		if !errors.Is(err, errMalformed) && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("cut at %d: %v, want a malformed or unexpected EOF error", n, err)
		}
	}
}

// No input makes decodeSnapshot panic, and what it delivers is the data
// the body holds.
func TestDecodeSnapshotNeverPanics(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		b := rapid.SliceOfN(rapid.Byte(), 0, 200).Draw(t, "body")
		_, _, _ = decodeAll(b)
		if rapid.Bool().Draw(t, "valid prefix") {
			data := rapid.SliceOfN(rapid.Byte(), 0, 50).Draw(t, "data")
			good := streamed(t, snapMsg(1, 2, data), data)
			_, got, err := decodeAll(append(good, b...))
			if len(b) == 0 && (err != nil || !bytes.Equal(got, data)) {
				t.Fatalf("valid body: %v, data %q want %q", err, got, data)
			}
		}
	})
}

// genBody is a SnapshotBody of size pseudo-random bytes generated as they
// are written: no copy of it exists in memory.
type genBody struct {
	size    int64
	seed    uint64
	release chan struct{} // WriteTo waits for it, if not nil
	closed  atomic.Bool
	writes  atomic.Int32
}

func (g *genBody) Size() int64 { return g.size }

func (g *genBody) WriteTo(w io.Writer) (int64, error) {
	g.writes.Add(1)
	if g.release != nil {
		<-g.release
	}
	rng := rand.New(rand.NewPCG(g.seed, 1))
	buf := make([]byte, 64<<10)
	var n int64
	for n < g.size {
		chunk := buf[:min(int64(len(buf)), g.size-n)]
		for i := range chunk {
			chunk[i] = byte(rng.Uint32())
		}
		k, err := w.Write(chunk)
		n += int64(k)
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func (g *genBody) Close() error { g.closed.Store(true); return nil }

func (g *genBody) sum(t testing.TB) [32]byte {
	h := sha256.New()
	g2 := &genBody{size: g.size, seed: g.seed}
	if _, err := g2.WriteTo(h); err != nil {
		t.Fatal(err)
	}
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}

// streamHandler hashes what ProcessSnapshot reads, chunk by chunk.
type streamHandler struct {
	*recorder
	sums chan [32]byte
}

func (h *streamHandler) ProcessSnapshot(_ context.Context, m *raftpb.Message, db io.Reader) error {
	hs := sha256.New()
	if _, err := io.Copy(hs, db); err != nil {
		return err
	}
	var s [32]byte
	copy(s[:], hs.Sum(nil))
	h.sums <- s
	return nil
}

// A snapshot much larger than what either side allocates arrives intact:
// SendSnapshot returns before the database is read, the sender writes it
// into the request as it goes, the receiver hands it on as it arrives, and
// the body is closed once sent.
func TestHTTPSnapshotStreamsInBoundedMemory(t *testing.T) {
	a := startMember(t, 1, testClusterID, 0)
	h := &streamHandler{recorder: newRecorder(), sums: make(chan [32]byte, 1)}
	b := NewHTTP(HTTPConfig{ID: 2, ClusterID: testClusterID, Handler: h, Logger: zap.NewNop()})
	mux := http.NewServeMux()
	mux.Handle(PathPrefix+"/", b.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { b.Close(); srv.CloseClientConnections(); srv.Close() })
	a.tr.AddPeer(2, []string{srv.URL})
	b.AddPeer(1, []string{a.url()})

	const size = 128 << 20
	body := &genBody{size: size, seed: 7, release: make(chan struct{})}
	want := body.sum(t)
	m := snapMsg(1, 2, nil)
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	a.tr.SendSnapshot(m, body) // returns while WriteTo is held back
	close(body.release)
	snaps := a.rec.waitSnap(t, 1)
	select {
	case got := <-h.sums:
		if got != want {
			t.Fatal("the received database differs from the one sent")
		}
	default:
		t.Fatalf("the snapshot was reported %v but never processed", snaps[0])
	}
	if snaps[0] != (snapReport{2, raft.SnapshotFinish}) {
		t.Fatalf("snapshot report %v, want finish", snaps[0])
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > size/4 {
		t.Fatalf("sending and receiving a %d MiB snapshot allocated %d MiB: it is being held in memory", size>>20, alloc>>20)
	}
	eventually(t, waitLimit, "the snapshot body closed", func() (bool, string) { return body.closed.Load(), "" })
}
