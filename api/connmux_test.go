package api

import (
	"bufio"
	"net"
	"net/http"
	"testing"
	"time"
)

// A request shorter than the HTTP/2 preface must be classified from its
// first bytes, not held until the sniff timeout.
func TestShortHTTP1RequestIsServedWithoutWaitingForMoreBytes(t *testing.T) {
	ts := startServer(t, newMemBackend(t), nil)
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := "GET /livez HTTP/1.0\r\n\r\n" // 23 bytes < len(http2Preface)
	if len(req) >= len(http2Preface) {
		t.Fatal("request is not shorter than the preface")
	}
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	// Well under sniffTimeout: a sniffer waiting for 24 bytes would stall here.
	c.SetReadDeadline(time.Now().Add(sniffTimeout / 2))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /livez over HTTP/1.0: %d", resp.StatusCode)
	}
}
