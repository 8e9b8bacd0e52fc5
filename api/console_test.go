package api

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cairnkv/cairn/console"
)

// Without Config.Console (no --enable-console) /console/ is not served;
// with it, the console's pages and status are served beside the gateway
// on the client listener, and its status is the member's own, asked over
// the member's gRPC side.
func TestConsoleServedOnlyWhenEnabled(t *testing.T) {
	off := startServer(t, newMemBackend(t), nil)
	for _, p := range []string{"/console/", "/console/app.js", "/console/api/status"} {
		resp, err := http.Get("http://" + off.addr + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("console off: GET %s = %d, want 404", p, resp.StatusCode)
		}
	}

	var h atomic.Pointer[http.Handler] // the console needs the server's address first
	on := startServer(t, newMemBackend(t), func(c *Config) {
		c.Console = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*h.Load()).ServeHTTP(w, r) })
	})
	c, err := console.New(console.Config{Self: rawConn(t, on.addr), SelfID: testMemberID})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ch := c.Handler()
	h.Store(&ch)
	resp, err := http.Get("http://" + on.addr + "/console/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "Cairn console") {
		t.Fatalf("console on: GET /console/ = %d %.80s", resp.StatusCode, body)
	}
	resp, err = http.Get("http://" + on.addr + "/console/api/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st console.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if len(st.Members) != 1 || st.Members[0].Name != "m1" || !st.Members[0].Reachable || st.Members[0].RaftTerm != testRaftTerm || st.Leader != st.MemberID {
		t.Fatalf("status %+v", st)
	}
	// The gateway is still there beside it.
	resp2, err := http.Post("http://"+on.addr+"/v3/maintenance/status", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != 200 {
		t.Errorf("gateway beside the console: %d", resp2.StatusCode)
	}
}
