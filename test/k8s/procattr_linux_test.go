package k8s

import "syscall"

// serverProcAttr puts the server in its own process group and has the
// kernel kill it if the test process dies without running its cleanups
// (an interrupted or crashed `go test`), so no server outlives its test.
func serverProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
