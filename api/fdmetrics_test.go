package api

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/testutil"
)

// os_fd_used counts the files the process holds open, and os_fd_limit is
// its soft limit on them, as etcd's.
func TestFDMetricsCountOpenFiles(t *testing.T) {
	if runtime.GOOS != "linux" {
		// Elsewhere there is no /proc/self/fd: os_fd_used is left out.
		if _, ok := fdUsed(); ok {
			t.Fatal("fdUsed works without /proc/self/fd")
		}
		return
	}
	ts := startServer(t, newMemBackend(t), nil)
	scrape := func(name string) float64 {
		code, body, _ := httpDo(t, http.MethodGet, "http://"+ts.addr+"/metrics", "")
		if code != http.StatusOK {
			t.Fatalf("/metrics: %d", code)
		}
		if !strings.Contains(body, "# TYPE "+name+" gauge\n") {
			t.Fatalf("/metrics has no gauge %s", name)
		}
		for _, l := range strings.Split(body, "\n") {
			if v, ok := strings.CutPrefix(l, name+" "); ok {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil {
					t.Fatal(err)
				}
				return f
			}
		}
		t.Fatalf("/metrics has no %s", name)
		return 0
	}
	limit, ok := fdLimit()
	if !ok {
		t.Fatal("no file descriptor limit")
	}
	if v := scrape("os_fd_limit"); v != float64(limit) {
		t.Errorf("os_fd_limit = %v, want %d", v, limit)
	}
	before := scrape("os_fd_used")
	if before < 3 {
		t.Fatalf("os_fd_used = %v, want at least stdin, stdout, stderr", before)
	}
	// Other tests' connections may still be closing meanwhile: open many
	// more files than they could have held.
	const extra = 200
	for i := 0; i < extra; i++ {
		f, err := os.Create(filepath.Join(t.TempDir(), fmt.Sprint(i)))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
	}
	testutil.Eventually(t, 5*time.Second, "os_fd_used counts the files opened", func() (bool, string) {
		v := scrape("os_fd_used")
		return v >= before+extra/2, fmt.Sprintf("os_fd_used %v, before %v", v, before)
	})
}
