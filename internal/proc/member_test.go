package proc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as a fake member when this variable is set: it
// serves /health on its --listen-client-urls until SIGTERM, as cairn does.
const envFake = "PROC_TEST_FAKE_MEMBER"

func TestMain(m *testing.M) {
	if os.Getenv(envFake) != "" {
		os.Exit(fakeMember(os.Args[1:]))
	}
	os.Exit(m.Run())
}

func fakeMember(args []string) int {
	var client string
	for i, a := range args {
		if a == "--listen-client-urls" && i+1 < len(args) {
			client = args[i+1]
		}
	}
	wd, _ := os.Getwd()
	fmt.Fprintf(os.Stderr, "fake: wd %s env %s\n", wd, os.Getenv(envFake))
	u, err := url.Parse(client)
	if err != nil {
		fmt.Fprintf(os.Stderr, "fake: %v\n", err)
		return 2
	}
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGTERM)
	l, err := net.Listen("tcp", u.Host)
	if err != nil {
		fmt.Fprintf(os.Stderr, "fake: %v\n", err)
		return 1
	}
	go http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"health":"true","reason":""}`)
	}))
	fmt.Fprintln(os.Stderr, "fake serving")
	<-sigc
	fmt.Fprintln(os.Stderr, "fake stopped")
	return 0
}

// newFake lays out a fake member under a temp dir.
func newFake(t *testing.T) *Member {
	t.Helper()
	urls, err := FreeURLs(2)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	m := &Member{
		Flags: Flags{
			Name: "m0", DataDir: filepath.Join(dir, "data"), ClientURL: urls[0], PeerURL: urls[1],
			InitialCluster: "m0=" + urls[1],
		},
		Bin:     os.Args[0],
		LogPath: filepath.Join(dir, "m0.log"),
		Env:     []string{envFake + "=yes"},
	}
	t.Cleanup(func() { _ = m.Kill() })
	return m
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestMemberLifecycle(t *testing.T) {
	m := newFake(t)
	if m.Running() || m.Pid() != 0 {
		t.Fatalf("before Start: Running %v Pid %d, want false 0", m.Running(), m.Pid())
	}
	if err := m.Kill(); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Kill before Start = %v, want ErrNotRunning", err)
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	if err := m.Start(); err == nil {
		t.Fatal("a second Start while running succeeded")
	}
	if err := m.WaitHealthy(ctxT(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}
	pid := m.Pid()
	if pid == 0 || !m.Running() {
		t.Fatalf("after Start: Running %v Pid %d", m.Running(), pid)
	}
	if log := m.Log(); !strings.Contains(log, "fake: wd "+filepath.Dir(m.LogPath)+" env yes\n") ||
		!strings.HasPrefix(log, "==== starting m0: "+m.Bin+" --name m0 ") {
		t.Errorf("log does not show the run's working dir, environment and command line:\n%s", log)
	}

	// Paused, it answers nothing; resumed, it serves again.
	if err := m.Pause(); err != nil {
		t.Fatal(err)
	}
	if !m.Paused() {
		t.Error("Paused() = false after Pause")
	}
	waitStopped(t, m.Pid())
	if err := m.WaitHealthy(ctxT(t, 300*time.Millisecond)); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitHealthy of a paused member = %v, want a deadline error", err)
	}
	if err := m.Resume(); err != nil {
		t.Fatal(err)
	}
	if err := m.WaitHealthy(ctxT(t, 30*time.Second)); err != nil {
		t.Fatalf("after Resume: %v", err)
	}

	// SIGTERM reaches even a paused process.
	if err := m.Pause(); err != nil {
		t.Fatal(err)
	}
	st, err := m.Stop(ctxT(t, 30*time.Second))
	if err != nil || !st.Success() {
		t.Fatalf("Stop of a paused member = %v, %v; want exit 0", st, err)
	}
	if m.Running() || m.Paused() {
		t.Errorf("after Stop: Running %v Paused %v", m.Running(), m.Paused())
	}
	if got := m.LogTail(1); got != "fake stopped" {
		t.Errorf("LogTail(1) = %q, want \"fake stopped\"", got)
	}

	// Restart: same flags, a new process, the log appended to.
	if err := m.Restart(ctxT(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}
	if m.Pid() == pid {
		t.Errorf("Restart kept pid %d", pid)
	}
	if n := strings.Count(m.Log(), "==== starting m0: "+m.Bin+" "+strings.Join(m.Args(), " ")+"\n"); n != 2 {
		t.Errorf("log holds %d starts with the same command line, want 2", n)
	}
	if err := m.Kill(); err != nil {
		t.Fatal(err)
	}
	if m.Running() {
		t.Error("Running() after Kill")
	}
	if _, err := m.Stop(ctxT(t, time.Second)); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Stop after Kill = %v, want ErrNotRunning", err)
	}
	if err := m.WaitHealthy(ctxT(t, time.Second)); err == nil || !strings.Contains(err.Error(), "signal: killed") {
		t.Errorf("WaitHealthy after Kill = %v, want the killed run's ExitError", err)
	}
}

// waitFor polls cond until it holds, failing the test with what and
// cond's last detail after 10 s.
func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for {
		ok, detail := cond()
		if ok {
			return
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("%s: not after 10s (%s)", what, detail)
		}
	}
}

// waitStopped waits until process pid is stopped (state T in
// /proc/pid/stat): SIGSTOP takes effect after kill(2) returns.
func waitStopped(t *testing.T, pid int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("process %d stopped", pid), func() (bool, string) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			t.Fatalf("process state: %v", err)
		}
		// "pid (comm) state ...", where comm may hold anything but ")".
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		return len(f) > 0 && f[0] == "T", string(b)
	})
}

// occupyPort takes the port of rawURL as an ephemeral port of a client's
// connection does (how a member's port is most often taken from it),
// until the test ends or the returned function is called.
func occupyPort(t *testing.T, rawURL string) func() {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	local, err := net.ResolveTCPAddr("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := (&net.Dialer{LocalAddr: local}).Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	release := func() {
		srv.Close()
		conn.Close()
	}
	t.Cleanup(release)
	return release
}

func TestWaitReportsAnExitOnATakenAddress(t *testing.T) {
	m := newFake(t)
	occupyPort(t, m.ClientURL)
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	err := m.WaitListening(ctxT(t, 30*time.Second))
	var ee *ExitError
	if !errors.As(err, &ee) || !errors.Is(err, ErrAddrInUse) || ee.State.ExitCode() != 1 ||
		!strings.HasSuffix(ee.Output, "bind: address already in use") || strings.Contains(ee.Output, "====") {
		t.Fatalf("WaitListening = %#v, want an ExitError with exit status 1 and the run's output ending in the bind error", err)
	}
}

func TestRestartRetriesWhileTheAddressIsTaken(t *testing.T) {
	m := newFake(t)
	release := occupyPort(t, m.ClientURL)
	done := make(chan error, 1)
	go func() { done <- m.Restart(ctxT(t, 30*time.Second)) }()
	waitFor(t, "a start failing on the taken port", func() (bool, string) {
		select {
		case err := <-done:
			t.Fatalf("Restart returned %v while the port was taken", err)
		default:
		}
		return strings.Contains(m.Log(), "address already in use"), m.LogTail(5)
	})
	release()
	if err := <-done; err != nil {
		t.Fatalf("Restart after the port was released: %v", err)
	}
	if err := m.WaitHealthy(ctxT(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}
}

func TestRestartGivesUpOnOtherExits(t *testing.T) {
	m := newFake(t)
	m.ClientURL = "http://256.0.0.1:1" // not an address: listen fails at once
	err := m.Restart(ctxT(t, 30*time.Second))
	var ee *ExitError
	if !errors.As(err, &ee) || errors.Is(err, ErrAddrInUse) {
		t.Fatalf("Restart = %v, want an ExitError other than ErrAddrInUse", err)
	}
	if n := strings.Count(m.Log(), "==== starting"); n != 1 {
		t.Errorf("%d starts, want 1", n)
	}
}

func TestDataRace(t *testing.T) {
	m := &Member{LogPath: filepath.Join(t.TempDir(), "log")}
	if err := os.WriteFile(m.LogPath, []byte("start\nok\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := m.DataRace(); r != "" {
		t.Errorf("DataRace of a clean log = %q", r)
	}
	report := "==================\nWARNING: DATA RACE\nWrite at 0x00c by goroutine 7:\n"
	if err := os.WriteFile(m.LogPath, []byte("start\n"+report), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := m.DataRace(); r != report[len("==================\n"):] {
		t.Errorf("DataRace = %q", r)
	}
}

func TestMemberWait(t *testing.T) {
	m := newFake(t)
	if _, _, err := m.Wait(ctxT(t, time.Second)); err == nil {
		t.Fatal("Wait before Start: no error")
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	if err := m.WaitHealthy(ctxT(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Wait(ctxT(t, 200*time.Millisecond)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait on a running member = %v, want a deadline error", err)
	}
	if err := syscall.Kill(m.Pid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	st, out, err := m.Wait(ctxT(t, 30*time.Second))
	if err != nil || !st.Success() {
		t.Fatalf("Wait after SIGTERM = %v, %v; want exit 0", st, err)
	}
	if !strings.HasSuffix(out, "fake stopped\n") || strings.Contains(out, "==== starting") {
		t.Errorf("Wait's output is not the run's own:\n%s", out)
	}
}
