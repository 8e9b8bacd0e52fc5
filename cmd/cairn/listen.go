package main

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// listenConfig returns the listeners' configuration: etcd's
// --socket-reuse-address (SO_REUSEADDR, which Go sets on TCP listeners
// anyway) and --socket-reuse-port (SO_REUSEPORT: several processes may
// bind the same port).
func listenConfig(reuseAddr, reusePort bool) *net.ListenConfig {
	if !reuseAddr && !reusePort {
		return &net.ListenConfig{}
	}
	return &net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		if network != "tcp" && network != "tcp4" && network != "tcp6" {
			return nil // unix sockets: nothing to reuse
		}
		var serr error
		err := c.Control(func(fd uintptr) {
			if reuseAddr {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
			}
			if serr == nil && reusePort {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
}
