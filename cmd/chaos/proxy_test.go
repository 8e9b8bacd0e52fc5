package main

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// echoBackend accepts connections, reads an HTTP request head, then
// echoes every byte back: a stand-in for a member's peer listener.
func echoBackend(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveConns(t, l, func(c net.Conn) {
		br := bufio.NewReader(c)
		if _, _, err := readHead(br); err != nil {
			return
		}
		_, _ = io.Copy(c, br)
	})
}

// serveConns serves each connection l accepts with handle, which the
// connection is closed after, until the test ends; it returns l's address.
func serveConns(t *testing.T, l net.Listener, handle func(net.Conn)) string {
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return l.Addr().String()
}

// testNet is a 3-member network whose member i has ID i+100, with one
// proxy in front of member 1 forwarding to an echo backend.
func testNet(t *testing.T) (*Network, string) {
	t.Helper()
	nw := NewNetwork(3, func(id uint64) int {
		if id >= 100 && id < 103 {
			return int(id - 100)
		}
		return -1
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := nw.NewProxy(1, l, echoBackend(t))
	t.Cleanup(func() {
		p.Close()
		nw.Close()
	})
	return nw, p.Addr()
}

// dialAs opens a stream to the proxy as member from (ID from+100, hex).
func dialAs(t *testing.T, addr string, from int) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	head := "POST /raft/stream HTTP/1.1\r\nHost: x\r\nX-Cairn-From: " + strconv.FormatUint(uint64(from+100), 16) + "\r\n\r\n"
	if _, err := c.Write([]byte(head)); err != nil {
		t.Fatal(err)
	}
	return c
}

// roundTrip writes msg and reads len(msg) bytes back within wait.
func roundTrip(c net.Conn, msg string, wait time.Duration) (string, error) {
	if _, err := c.Write([]byte(msg)); err != nil {
		return "", err
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	defer c.SetReadDeadline(time.Time{})
	buf := make([]byte, len(msg))
	_, err := io.ReadFull(c, buf)
	return string(buf), err
}

func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

func TestProxyForwardsBothWays(t *testing.T) {
	_, addr := testNet(t)
	c := dialAs(t, addr, 0)
	got, err := roundTrip(c, "ping", 5*time.Second)
	if err != nil || got != "ping" {
		t.Fatalf("round trip = %q, %v; want ping", got, err)
	}
}

func TestBlackholeDropsUntilHealThenCloses(t *testing.T) {
	nw, addr := testNet(t)
	c := dialAs(t, addr, 0)
	if got, err := roundTrip(c, "a", 5*time.Second); err != nil || got != "a" {
		t.Fatalf("before the cut: %q, %v", got, err)
	}
	nw.Set(0, 1, LinkBlackhole, 0)
	if got, err := roundTrip(c, "b", 300*time.Millisecond); !isTimeout(err) {
		t.Fatalf("through a blackhole: got %q, %v; want silence (a read timeout)", got, err)
	}
	// A new connection on the cut link is accepted but silent too.
	c2 := dialAs(t, addr, 0)
	if got, err := roundTrip(c2, "c", 300*time.Millisecond); !isTimeout(err) {
		t.Fatalf("new connection through a blackhole: got %q, %v; want silence", got, err)
	}
	nw.Set(0, 1, LinkUp, 0)
	for _, conn := range []net.Conn{c, c2} {
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := conn.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("blackholed connection after heal: read %d, %v; want io.EOF (closed)", n, err)
		}
	}
	c3 := dialAs(t, addr, 0)
	if got, err := roundTrip(c3, "d", 5*time.Second); err != nil || got != "d" {
		t.Fatalf("after heal: %q, %v", got, err)
	}
}

func TestRefuseClosesConnections(t *testing.T) {
	nw, addr := testNet(t)
	c := dialAs(t, addr, 2)
	if got, err := roundTrip(c, "a", 5*time.Second); err != nil || got != "a" {
		t.Fatalf("before the cut: %q, %v", got, err)
	}
	nw.Set(2, 1, LinkRefuse, 0)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("open connection on a refused link: read %d, %v; want io.EOF", n, err)
	}
	c2 := dialAs(t, addr, 2)
	_ = c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c2.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("new connection on a refused link: read %d, %v; want io.EOF", n, err)
	}
}

func TestCutLinkLeavesOtherSendersAlone(t *testing.T) {
	nw, addr := testNet(t)
	nw.Set(0, 1, LinkRefuse, 0)
	nw.Set(1, 2, LinkRefuse, 0) // the reverse direction of another pair
	c := dialAs(t, addr, 2)
	if got, err := roundTrip(c, "x", 5*time.Second); err != nil || got != "x" {
		t.Fatalf("m2→m1 while m0→m1 is cut: %q, %v; want x", got, err)
	}
	if mode, _ := nw.Link(2, 1); mode != LinkUp {
		t.Fatalf("link m2→m1 is %v, want up", mode)
	}
}

func TestDelayHoldsBytesBack(t *testing.T) {
	nw, addr := testNet(t)
	c := dialAs(t, addr, 0)
	if got, err := roundTrip(c, "a", 5*time.Second); err != nil || got != "a" {
		t.Fatalf("before the delay: %q, %v", got, err)
	}
	const d = 200 * time.Millisecond
	nw.Set(0, 1, LinkUp, d)
	start := time.Now()
	got, err := roundTrip(c, "b", 10*time.Second)
	if err != nil || got != "b" {
		t.Fatalf("through a delayed link: %q, %v", got, err)
	}
	// Both directions of the connection are delayed: at least 2d.
	if el := time.Since(start); el < 2*d {
		t.Fatalf("round trip through a link delayed by %v took %v, want at least %v", d, el, 2*d)
	}
}

func TestReadHeadFindsSender(t *testing.T) {
	for _, tc := range []struct {
		head string
		want uint64
	}{
		{"POST /raft/stream HTTP/1.1\r\nX-Cairn-From: 1a\r\nX-Cairn-To: 2\r\n\r\n", 0x1a},
		{"POST / HTTP/1.1\r\nx-cairn-from:  ff \r\n\r\n", 0xff},
		{"POST / HTTP/1.1\r\nHost: a\r\n\r\n", 0},
		{"POST / HTTP/1.1\r\nX-Cairn-From: zz\r\n\r\n", 0},
	} {
		head, from, err := readHead(bufio.NewReader(strings.NewReader(tc.head + "body")))
		if err != nil || from != tc.want || string(head) != tc.head {
			t.Errorf("readHead(%q) = %q, %x, %v; want the head, %x, nil", tc.head, head, from, err, tc.want)
		}
	}
	if _, _, err := readHead(bufio.NewReader(strings.NewReader("POST / HTTP/1.1\r\nHost"))); err == nil {
		t.Errorf("readHead of a truncated head: no error")
	}
}
