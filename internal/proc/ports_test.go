package proc

import (
	"fmt"
	"net"
	"strings"
	"testing"
)

func TestFreePortsAreDistinctAndBindable(t *testing.T) {
	ports, err := FreePorts(20)
	if err != nil {
		t.Fatal(err)
	}
	if len(ports) != 20 {
		t.Fatalf("FreePorts(20) returned %d ports", len(ports))
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if p <= 0 || p > 65535 || seen[p] {
			t.Fatalf("FreePorts(20) = %v: port %d is invalid or repeated", ports, p)
		}
		seen[p] = true
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Fatalf("port %d from FreePorts is not free: %v", p, err)
		}
		l.Close()
	}
}

func TestFreeURLsAreLoopbackHTTP(t *testing.T) {
	urls, err := FreeURLs(3)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, u := range urls {
		if !strings.HasPrefix(u, "http://127.0.0.1:") || seen[u] {
			t.Fatalf("FreeURLs(3) = %q", urls)
		}
		seen[u] = true
	}
}
