package proc

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

var (
	// ErrNotRunning is returned by the operations on a member's process
	// when it has none running.
	ErrNotRunning = errors.New("not running")
	// ErrAddrInUse matches (errors.Is) an ExitError of a run that ended
	// because one of its addresses was taken.
	ErrAddrInUse = errors.New("address already in use")
)

// Polling of the waits: a probe every pollInterval, each bounded by
// probeTimeout.
const (
	pollInterval = 20 * time.Millisecond
	probeTimeout = 2 * time.Second
)

// ExitError is the error of a wait whose process exited before the event
// it waited for.
type ExitError struct {
	Name  string
	State *os.ProcessState
	// Output is the tail of what the run wrote.
	Output string
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("member %s exited (%v):\n%s", e.Name, e.State, e.Output)
}

// Is reports whether target is ErrAddrInUse and the run said so.
func (e *ExitError) Is(target error) bool {
	return target == ErrAddrInUse && strings.Contains(e.Output, ErrAddrInUse.Error())
}

// Member runs a member's processes, one at a time, all with the same flags
// and so the same data dir and ports. Set the exported fields before the
// first Start and leave them alone after; the methods are safe for
// concurrent use.
type Member struct {
	Flags
	// Bin is the binary: cairn, or etcd.
	Bin string
	// LogPath is the file every run's stdout and stderr are appended to,
	// each after a "==== starting" line. Runs have its directory as their
	// working directory, so stray files land next to it.
	LogPath string
	// Env is added to the environment of every run.
	Env []string
	// TLS is the client configuration WaitHealthy asks an https
	// ClientURL's /health with (its trusted CA, and a client certificate
	// when the member asks for one).
	TLS *tls.Config

	mu     sync.Mutex
	run    *run // the latest run, nil before the first Start
	paused bool
}

// run is one process of a Member.
type run struct {
	cmd    *exec.Cmd
	offset int64         // where its output begins in the log
	exitc  chan struct{} // closed once it has exited and state is set
	state  *os.ProcessState
}

func (r *run) exited() bool {
	select {
	case <-r.exitc:
		return true
	default:
		return false
	}
}

// Start launches a process of m and returns without waiting for it to
// serve: see WaitListening, WaitHealthy and Restart.
func (m *Member) Start() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.run != nil && !m.run.exited() {
		return fmt.Errorf("member %s is already running", m.Name)
	}
	if m.Bin == "" {
		return fmt.Errorf("member %s: no binary to run", m.Name)
	}
	logf, err := os.OpenFile(m.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("member %s: %w", m.Name, err)
	}
	args := m.Args()
	fmt.Fprintf(logf, "==== starting %s: %s %s\n", m.Name, m.Bin, strings.Join(args, " "))
	offset, err := logf.Seek(0, io.SeekEnd)
	if err != nil {
		logf.Close()
		return fmt.Errorf("member %s: %w", m.Name, err)
	}
	cmd := exec.Command(m.Bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// An empty NOTIFY_SOCKET: a member must not notify the systemd unit
	// the tests themselves may run in.
	cmd.Env = append(append(os.Environ(), "NOTIFY_SOCKET="), m.Env...)
	cmd.Dir = filepath.Dir(m.LogPath)
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start member %s: %w", m.Name, err)
	}
	r := &run{cmd: cmd, offset: offset, exitc: make(chan struct{})}
	m.run, m.paused = r, false
	go func() {
		_ = cmd.Wait()
		logf.Close()
		r.state = cmd.ProcessState
		close(r.exitc)
	}()
	return nil
}

// latest returns m's latest run, nil before the first Start.
func (m *Member) latest() *run {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.run
}

// Running reports whether a process of m is alive (possibly paused).
func (m *Member) Running() bool {
	r := m.latest()
	return r != nil && !r.exited()
}

// Paused reports whether m's process was stopped by Pause and not resumed.
func (m *Member) Paused() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.paused && m.run != nil && !m.run.exited()
}

// Pid is the process ID of m's latest run, 0 before the first.
func (m *Member) Pid() int {
	if r := m.latest(); r != nil {
		return r.cmd.Process.Pid
	}
	return 0
}

// signal sends sig to the running process.
func (m *Member) signal(sig syscall.Signal) (*run, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.run
	if r == nil || r.exited() {
		return nil, fmt.Errorf("member %s: %w", m.Name, ErrNotRunning)
	}
	if err := r.cmd.Process.Signal(sig); err != nil {
		if errors.Is(err, os.ErrProcessDone) {
			return nil, fmt.Errorf("member %s: %w", m.Name, ErrNotRunning)
		}
		return nil, fmt.Errorf("signal %v to member %s: %w", sig, m.Name, err)
	}
	switch sig {
	case syscall.SIGSTOP:
		m.paused = true
	case syscall.SIGCONT:
		m.paused = false
	}
	return r, nil
}

// Pause stops m's process with SIGSTOP: it holds its ports and files but
// does nothing, as a process stuck on a slow disk or descheduled.
func (m *Member) Pause() error {
	_, err := m.signal(syscall.SIGSTOP)
	return err
}

// Resume continues m's process with SIGCONT.
func (m *Member) Resume() error {
	_, err := m.signal(syscall.SIGCONT)
	return err
}

// Kill ends m's process with SIGKILL, as a crash would, and waits for it
// to exit.
func (m *Member) Kill() error {
	r, err := m.signal(syscall.SIGKILL)
	if err != nil {
		return err
	}
	<-r.exitc
	return nil
}

// Stop ends m's process with SIGTERM (resuming it if paused) and returns
// how it exited. If it has not exited when ctx is done, Stop kills it and
// returns an error.
func (m *Member) Stop(ctx context.Context) (*os.ProcessState, error) {
	r, err := m.signal(syscall.SIGTERM)
	if err != nil {
		return nil, err
	}
	if m.Paused() {
		_ = m.Resume() // a stopped process does not act on SIGTERM
	}
	select {
	case <-r.exitc:
		return r.state, nil
	case <-ctx.Done():
		_ = r.cmd.Process.Kill()
		<-r.exitc
		return r.state, fmt.Errorf("member %s did not exit on SIGTERM (%w): killed it\n%s", m.Name, ctx.Err(), m.LogTail(20))
	}
}

// Restart starts m (again, or for the first time) and waits until it
// listens on its client URL. While a run exits because an address is
// still taken (an old connection on the port, another process that
// picked it), it starts another, until ctx is done.
func (m *Member) Restart(ctx context.Context) error {
	for {
		if err := m.Start(); err != nil {
			return err
		}
		err := m.WaitListening(ctx)
		if err == nil || !errors.Is(err, ErrAddrInUse) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("member %s could not restart: %w", m.Name, err)
		case <-time.After(100 * time.Millisecond): // a retry's back-off
		}
	}
}

// WaitListening waits until m's client URL accepts connections: m has
// bound its addresses (cairn binds them all before it opens its data) and
// serves, or soon will. It returns an *ExitError if the process exits
// first, and ctx's error if ctx is done first. A connection cannot tell
// m's process from another listening on the same port; a member whose
// port is held by an established connection (the usual way it is taken)
// exits with ErrAddrInUse instead.
func (m *Member) WaitListening(ctx context.Context) error {
	u, err := url.Parse(m.ClientURL)
	if err != nil {
		return fmt.Errorf("member %s: %w", m.Name, err)
	}
	var d net.Dialer
	return m.poll(ctx, "listening", func(ctx context.Context) error {
		c, err := d.DialContext(ctx, "tcp", u.Host)
		if err == nil {
			c.Close()
		}
		return err
	})
}

// WaitHealthy waits until m's /health says {"health":"true"}, that is,
// until it has a leader and serves a read. It returns an *ExitError if
// the process exits first, and ctx's error if ctx is done first.
func (m *Member) WaitHealthy(ctx context.Context) error {
	return m.poll(ctx, "healthy", func(ctx context.Context) error { return HealthTLS(ctx, m.ClientURL, m.TLS) })
}

// poll runs probe until it succeeds, the process exits or ctx is done.
func (m *Member) poll(ctx context.Context, what string, probe func(context.Context) error) error {
	r := m.latest()
	if r == nil {
		return fmt.Errorf("member %s: %w", m.Name, ErrNotRunning)
	}
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, probeTimeout)
		err := probe(pctx)
		cancel()
		if r.exited() {
			return m.exitError(r)
		}
		if err == nil {
			return nil
		}
		select {
		case <-r.exitc:
			return m.exitError(r)
		case <-ctx.Done():
			return fmt.Errorf("member %s not %s: %w (last probe: %v)", m.Name, what, ctx.Err(), err)
		case <-tick.C:
		}
	}
}

func (m *Member) exitError(r *run) error {
	<-r.exitc
	return &ExitError{Name: m.Name, State: r.state, Output: Tail(m.output(r), 20)}
}

// output returns what run r has written to the log.
func (m *Member) output(r *run) string {
	b, err := os.ReadFile(m.LogPath)
	if err != nil {
		return fmt.Sprintf("<no log: %v>", err)
	}
	return string(b[min(r.offset, int64(len(b))):])
}

// Log returns everything m's runs have written so far.
func (m *Member) Log() string {
	b, err := os.ReadFile(m.LogPath)
	if err != nil {
		return fmt.Sprintf("<no log: %v>", err)
	}
	return string(b)
}

// LogTail returns the last n lines of m's log.
func (m *Member) LogTail(n int) string {
	return Tail(m.Log(), n)
}

// DataRace returns the first race report in m's log (a binary built with
// BuildOptions.Race writes one for each race it sees), or "".
func (m *Member) DataRace() string { return DataRace(m.Log()) }

// DataRace returns the first data race report in a process's output, or "".
func DataRace(log string) string {
	i := strings.Index(log, "WARNING: DATA RACE")
	if i < 0 {
		return ""
	}
	return log[i:min(len(log), i+6000)]
}

// Tail returns the last n lines of s.
func Tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Health asks the member serving clientURL for /health once: nil when it
// says {"health":"true"}.
func Health(ctx context.Context, clientURL string) error { return HealthTLS(ctx, clientURL, nil) }

// HealthTLS is Health over TLS configured by tc (nil: plain http, or TLS
// with the system's roots for an https URL).
func HealthTLS(ctx context.Context, clientURL string, tc *tls.Config) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, clientURL+"/health", nil)
	if err != nil {
		return err
	}
	client := http.DefaultClient
	if tc != nil {
		tr := &http.Transport{TLSClientConfig: tc, DisableKeepAlives: true}
		defer tr.CloseIdleConnections()
		client = &http.Client{Transport: tr}
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/health: %s %s", resp.Status, b)
	}
	var h struct{ Health string }
	if err := json.Unmarshal(b, &h); err != nil {
		return fmt.Errorf("/health: %w: %s", err, b)
	}
	if h.Health != "true" {
		return fmt.Errorf("/health: %s", b)
	}
	return nil
}

// Wait waits until m's latest run exits and returns its state and what it
// wrote to the log, or ctx's error. The run is left alone when ctx ends.
func (m *Member) Wait(ctx context.Context) (*os.ProcessState, string, error) {
	r := m.latest()
	if r == nil {
		return nil, "", fmt.Errorf("member %s was never started", m.Name)
	}
	select {
	case <-r.exitc:
		return r.state, m.output(r), nil
	case <-ctx.Done():
		return nil, "", fmt.Errorf("member %s still running: %w", m.Name, ctx.Err())
	}
}
