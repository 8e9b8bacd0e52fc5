package config

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func listenGram(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func readGram(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	// The deadline only stops a broken test from hanging; it asserts nothing.
	if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 256)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

func TestNotifyReadySendsReadyToSocketPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn := listenGram(t, path)
	ok, err := NotifyReady([]string{"HOME=/", "NOTIFY_SOCKET=" + path})
	if err != nil || !ok {
		t.Fatalf("NotifyReady = %v, %v; want true, nil", ok, err)
	}
	if got := readGram(t, conn); got != "READY=1" {
		t.Fatalf("datagram = %q, want READY=1", got)
	}
}

func TestNotifyReadySendsReadyToAbstractSocket(t *testing.T) {
	name := fmt.Sprintf("@cairn-config-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	conn := listenGram(t, name)
	ok, err := NotifyReady([]string{"NOTIFY_SOCKET=" + name})
	if err != nil || !ok {
		t.Fatalf("NotifyReady = %v, %v; want true, nil", ok, err)
	}
	if got := readGram(t, conn); got != "READY=1" {
		t.Fatalf("datagram = %q, want READY=1", got)
	}
}

func TestNotifyReadyWithoutSocketDoesNothing(t *testing.T) {
	for _, env := range [][]string{nil, {"HOME=/"}, {"NOTIFY_SOCKET="}} {
		ok, err := NotifyReady(env)
		if ok || err != nil {
			t.Fatalf("NotifyReady(%q) = %v, %v; want false, nil", env, ok, err)
		}
	}
}

func TestNotifyReadyReportsMissingSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent.sock")
	ok, err := NotifyReady([]string{"NOTIFY_SOCKET=" + path})
	if ok || err == nil {
		t.Fatalf("NotifyReady = %v, %v; want false and an error", ok, err)
	}
}
