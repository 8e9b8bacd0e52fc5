//go:build unix

package api

import "syscall"

// fdLimit is the process's soft limit on open files, etcd's
// file_descriptor_limit.
func fdLimit() (uint64, bool) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0, false
	}
	return uint64(r.Cur), true
}
