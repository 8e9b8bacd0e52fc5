package config

import (
	"fmt"
	"net"
)

// NotifyReady tells systemd that the member is ready to serve, as etcd does
// under a Type=notify unit: if NOTIFY_SOCKET is set in environ, it sends the
// datagram "READY=1" to that unixgram socket (a name starting with '@' is in
// the abstract namespace). It reports whether it notified; with NOTIFY_SOCKET
// unset or empty it does nothing and returns false, nil.
func NotifyReady(environ []string) (bool, error) {
	socket := parseEnviron(environ)["NOTIFY_SOCKET"]
	if socket == "" {
		return false, nil
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: socket, Net: "unixgram"})
	if err != nil {
		return false, fmt.Errorf("notify systemd at NOTIFY_SOCKET=%s: %w", socket, err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("READY=1")); err != nil {
		return false, fmt.Errorf("notify systemd at NOTIFY_SOCKET=%s: %w", socket, err)
	}
	return true, nil
}
