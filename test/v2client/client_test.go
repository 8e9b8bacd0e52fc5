package v2client

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/client/v2"

	"github.com/cairnkv/cairn/internal/proc"
)

// envCairn names a prebuilt cairn binary to test instead of building one.
const envCairn = "CAIRN_V2CLIENT_CAIRN"

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	if os.Getenv(envCairn) == "" {
		dir, err := os.MkdirTemp("", "cairn-v2client-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		out := filepath.Join(dir, "cairn")
		cmd := exec.Command("go", "build", "-o", out, proc.CairnPackage)
		cmd.Dir = filepath.Join("..", "..")
		cmd.Env = append(os.Environ(), "GOWORK=off")
		if b, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building cairn: %v\n%s", err, b)
			return 1
		}
		os.Setenv(envCairn, out)
	}
	return m.Run()
}

func startCluster(t *testing.T) []*proc.Member {
	t.Helper()
	bin, err := filepath.Abs(os.Getenv(envCairn))
	if err != nil {
		t.Fatal(err)
	}
	var lastErr error
	for attempt := 0; attempt < 4; attempt++ {
		urls, err := proc.FreeURLs(6)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		token := fmt.Sprintf("cairn-v2client-%d-%d", os.Getpid(), time.Now().UnixNano())
		var ms []*proc.Member
		var peers []proc.Peer
		for i := 0; i < 3; i++ {
			name := fmt.Sprintf("m%d", i)
			if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
				t.Fatal(err)
			}
			m := &proc.Member{
				Flags: proc.Flags{Name: name, DataDir: filepath.Join(dir, name, "data"),
					ClientURL: urls[2*i], PeerURL: urls[2*i+1], Token: token, Extra: []string{"--enable-v2"}},
				Bin: bin, LogPath: filepath.Join(dir, name, "cairn.log"),
			}
			ms = append(ms, m)
			peers = append(peers, m.Peer())
		}
		for _, m := range ms {
			m.InitialCluster = proc.InitialCluster(peers...)
			if err := m.Start(); err != nil {
				t.Fatal(err)
			}
		}
		t.Cleanup(func() {
			for _, m := range ms {
				_ = m.Kill()
				if t.Failed() {
					t.Logf("log of %s:\n%s", m.Name, m.LogTail(40))
				}
			}
		})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		lastErr = nil
		for _, m := range ms {
			if err := m.WaitHealthy(ctx); err != nil {
				lastErr = err
				break
			}
		}
		cancel()
		if lastErr == nil {
			return ms
		}
		if !errors.Is(lastErr, proc.ErrAddrInUse) {
			t.Fatal(lastErr)
		}
		for _, m := range ms {
			_ = m.Kill()
		}
	}
	t.Fatalf("cluster did not start: %v", lastErr)
	return nil
}

func keysAPI(t *testing.T, endpoints ...string) client.KeysAPI {
	t.Helper()
	c, err := client.New(client.Config{Endpoints: endpoints, HeaderTimeoutPerRequest: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return client.NewKeysAPI(c)
}

func wantCode(t *testing.T, what string, err error, code int) {
	t.Helper()
	var ce client.Error
	if !errors.As(err, &ce) || ce.Code != code {
		t.Fatalf("%s: %v, want etcd error code %d", what, err, code)
	}
}

// TestEtcdV2Client: etcd 3.5's own v2 client library on every call it
// makes, against three members: sets, reads, CAS, create-only, in-order
// keys, directories, TTLs, a watcher on one member woken by a write through
// another, and the members API.
func TestEtcdV2Client(t *testing.T) {
	ms := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, b := keysAPI(t, ms[0].ClientURL), keysAPI(t, ms[1].ClientURL)

	r, err := a.Set(ctx, "/message", "Hello world", nil)
	if err != nil || r.Action != "set" || r.Node.Value != "Hello world" {
		t.Fatalf("set: %+v %v", r, err)
	}
	g, err := b.Get(ctx, "/message", &client.GetOptions{Quorum: true})
	if err != nil || g.Node.Value != "Hello world" || g.Index < r.Node.ModifiedIndex {
		t.Fatalf("quorum get on another member: %+v %v", g, err)
	}
	_, err = a.Set(ctx, "/message", "x", &client.SetOptions{PrevExist: client.PrevNoExist})
	wantCode(t, "create over a key", err, client.ErrorCodeNodeExist)
	_, err = a.Set(ctx, "/message", "x", &client.SetOptions{PrevValue: "nope"})
	wantCode(t, "cas", err, client.ErrorCodeTestFailed)
	r, err = a.Set(ctx, "/message", "Hello etcd", &client.SetOptions{PrevIndex: r.Node.ModifiedIndex})
	if err != nil || r.Action != "compareAndSwap" || r.PrevNode.Value != "Hello world" {
		t.Fatalf("cas: %+v %v", r, err)
	}
	if _, err := a.Get(ctx, "/nothing", nil); !client.IsKeyNotFound(err) {
		t.Fatalf("missing key: %v", err)
	}

	// A watcher on one member, woken by a write through another.
	w := b.Watcher("/watched", &client.WatcherOptions{AfterIndex: r.Index})
	got := make(chan *client.Response, 1)
	go func() {
		resp, err := w.Next(ctx)
		if err != nil {
			t.Error(err)
		}
		got <- resp
	}()
	if _, err := a.Set(ctx, "/watched", "now", nil); err != nil {
		t.Fatal(err)
	}
	if resp := <-got; resp == nil || resp.Node.Value != "now" {
		t.Fatalf("watch: %+v", resp)
	}

	// Directories and in-order keys.
	if _, err := a.Set(ctx, "/dir", "", &client.SetOptions{Dir: true}); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"job1", "job2"} {
		if _, err := a.CreateInOrder(ctx, "/dir", v, nil); err != nil {
			t.Fatal(err)
		}
	}
	l, err := b.Get(ctx, "/dir", &client.GetOptions{Sort: true, Recursive: true, Quorum: true})
	if err != nil || len(l.Node.Nodes) != 2 || l.Node.Nodes[0].Value != "job1" || l.Node.Nodes[1].Value != "job2" {
		t.Fatalf("in-order keys: %+v %v", l, err)
	}
	_, err = a.Delete(ctx, "/dir", &client.DeleteOptions{Dir: true})
	wantCode(t, "rmdir of a full directory", err, client.ErrorCodeDirNotEmpty)
	if _, err := a.Delete(ctx, "/dir", &client.DeleteOptions{Recursive: true}); err != nil {
		t.Fatal(err)
	}

	// A TTL: the key expires through raft; a recursive watcher of the
	// root sees the expire event on another member.
	r, err = a.Set(ctx, "/ttl", "v", &client.SetOptions{TTL: time.Second})
	if err != nil || r.Node.TTL != 1 || r.Node.Expiration == nil {
		t.Fatalf("ttl set: %+v %v", r, err)
	}
	ew := b.Watcher("/ttl", &client.WatcherOptions{AfterIndex: r.Node.ModifiedIndex})
	e, err := ew.Next(ctx)
	if err != nil || e.Action != "expire" || e.PrevNode.Value != "v" {
		t.Fatalf("expiry: %+v %v", e, err)
	}

	// Members.
	c, err := client.New(client.Config{Endpoints: []string{ms[2].ClientURL}})
	if err != nil {
		t.Fatal(err)
	}
	mapi := client.NewMembersAPI(c)
	list, err := mapi.List(ctx)
	if err != nil || len(list) != 3 {
		t.Fatalf("members: %+v %v", list, err)
	}
	var names []string
	for _, m := range list {
		names = append(names, m.Name)
	}
	if !strings.Contains(strings.Join(names, ","), "m0") {
		t.Fatalf("member names %v", names)
	}
	lead, err := mapi.Leader(ctx)
	if err != nil || lead == nil || lead.ID == "" {
		t.Fatalf("leader: %+v %v", lead, err)
	}
}
