package e2e

import (
	"context"
	"net"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/cairnkv/cairn/internal/proc"
)

// reusePortListen binds addr with SO_REUSEPORT.
func reusePortListen(addr string) (net.Listener, error) {
	lc := net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}); err != nil {
			return err
		}
		return serr
	}}
	return lc.Listen(context.Background(), "tcp", addr)
}

// --socket-reuse-port sets SO_REUSEPORT on the member's listeners, so
// another socket with it can bind the same port (etcd's flag); without the
// flag the same bind fails.
func TestFlagsCompatSocketReusePort(t *testing.T) {
	for _, reuse := range []bool{true, false} {
		var extra []string
		if reuse {
			extra = append(extra, "--socket-reuse-port")
		}
		c := NewClusterArgs(t, 1, extra...)
		addr := strings.TrimPrefix(c.Members[0].ClientURL, "http://")
		l, err := reusePortListen(addr)
		if reuse && err != nil {
			t.Fatalf("binding the client port of a member started with --socket-reuse-port: %v", err)
		}
		if !reuse && err == nil {
			l.Close()
			t.Fatal("bound the client port of a member started without --socket-reuse-port")
		}
		if l != nil {
			l.Close()
		}
	}
}

// --warning-unary-request-duration logs a request that took longer, as
// etcd's "request stats" warning: the method, and the key with the value's
// size only.
func TestFlagsCompatWarningUnaryRequestDuration(t *testing.T) {
	c := NewClusterArgs(t, 1, "--warning-unary-request-duration", "1ns")
	if _, err := c.Client(t).Put(ctx(t), "slow", "v"); err != nil { // a 1-byte value
		t.Fatal(err)
	}
	log := c.Members[0].Log()
	if !strings.Contains(log, `"msg":"request stats"`) || !strings.Contains(log, `"response type":"/etcdserverpb.KV/Put"`) ||
		!strings.Contains(log, `value_size:1`) {
		t.Fatalf("no slow-request warning for the put in the log:\n%s", proc.Tail(log, 20))
	}
}
