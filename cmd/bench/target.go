package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cairnkv/cairn/internal/proc"
)

// target is what a comparison or a sweep runs a workload against: running
// endpoints, or a binary (cairn or etcd, which take the same flags) started
// fresh, on free loopback ports with a new data dir, for every run.
type target struct {
	name      string
	endpoints []string // a running server
	bin       string   // or a binary to start
	members   int
	flags     []string // extra server flags
	keep      bool     // keep the data dirs and logs
}

func (t target) String() string {
	if t.bin != "" {
		return fmt.Sprintf("%s (%s, %s)", t.name, t.bin, membersText(t.members))
	}
	return fmt.Sprintf("%s (%s)", t.name, strings.Join(t.endpoints, ","))
}

// servers are a target's running endpoints, with the processes to sample
// and how to stop them.
type servers struct {
	endpoints []string
	pids      []int
	dir       string
	stop      func() error
	members   []*proc.Member // the processes started, if any
}

// restart stops every member (SIGTERM, as an operator would) and starts
// them again on the same data dirs and ports. It returns when the
// processes are started, with the time they were, not when they serve:
// the caller measures that. The servers' pids are the new processes'.
func (s *servers) restart(ctx context.Context) (started time.Time, err error) {
	if len(s.members) == 0 {
		return time.Time{}, fmt.Errorf("restart: no server process started by bench")
	}
	for _, m := range s.members {
		sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		_, err := m.Stop(sctx)
		cancel()
		if err != nil {
			return time.Time{}, fmt.Errorf("restart: stopping %s: %w", m.Name, err)
		}
	}
	started = time.Now()
	for _, m := range s.members {
		if err := m.Start(); err != nil {
			return time.Time{}, fmt.Errorf("restart: %w", err)
		}
	}
	s.pids = s.pids[:0]
	for _, m := range s.members {
		s.pids = append(s.pids, m.Pid())
	}
	return started, nil
}

// serverReady bounds how long a started server may take to serve.
const serverReady = 60 * time.Second

// start returns t's endpoints: t.endpoints as they are, or t.members fresh
// processes of t.bin forming one cluster.
func (t target) start(ctx context.Context) (*servers, error) {
	if t.bin == "" {
		return &servers{endpoints: t.endpoints, stop: func() error { return nil }}, nil
	}
	dir, err := os.MkdirTemp("", "bench-"+t.name+"-")
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		s, err := t.startIn(ctx, dir)
		if err == nil {
			return s, nil
		}
		// A port taken between picking it and binding it: try others.
		if attempt < 3 && errors.Is(err, proc.ErrAddrInUse) {
			continue
		}
		if !t.keep {
			os.RemoveAll(dir)
		}
		return nil, err
	}
}

func (t target) startIn(ctx context.Context, dir string) (*servers, error) {
	urls, err := proc.FreeURLs(2 * t.members)
	if err != nil {
		return nil, err
	}
	var peers []proc.Peer
	var ms []*proc.Member
	for i := 0; i < t.members; i++ {
		name := fmt.Sprintf("m%d", i)
		m := &proc.Member{
			Flags: proc.Flags{
				Name:      name,
				DataDir:   filepath.Join(dir, name+".data"),
				ClientURL: urls[2*i],
				PeerURL:   urls[2*i+1],
				Token:     filepath.Base(dir),
				// etcd's default raft timings, rather than proc's quick ones.
				Extra: append([]string{"--heartbeat-interval", "100", "--election-timeout", "1000"}, t.flags...),
			},
			Bin:     t.bin,
			LogPath: filepath.Join(dir, name+".log"),
		}
		os.RemoveAll(m.DataDir)
		ms = append(ms, m)
		peers = append(peers, m.Peer())
	}
	// stopAll stops the members at once: each stops in its own time.
	stopAll := func() error {
		errs := make([]error, len(ms))
		var wg sync.WaitGroup
		for i, m := range ms {
			if !m.Running() {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				_, errs[i] = m.Stop(sctx)
			}()
		}
		wg.Wait()
		return errors.Join(errs...)
	}
	s := &servers{dir: dir, members: ms}
	for _, m := range ms {
		m.InitialCluster = proc.InitialCluster(peers...)
		if err := m.Start(); err != nil {
			stopAll()
			return nil, err
		}
		s.endpoints = append(s.endpoints, strings.TrimPrefix(m.ClientURL, "http://"))
		s.pids = append(s.pids, m.Pid())
	}
	rctx, cancel := context.WithTimeout(ctx, serverReady)
	defer cancel()
	for _, m := range ms {
		if err := m.WaitHealthy(rctx); err != nil {
			stopAll()
			return nil, fmt.Errorf("%s: %w", t.name, err)
		}
	}
	cleanup := func() error {
		err := stopAll()
		if !t.keep {
			os.RemoveAll(dir)
		}
		return err
	}
	id := running.add(cleanup)
	s.stop = func() error {
		running.remove(id)
		return cleanup()
	}
	return s, nil
}

// running are the clusters started and not yet stopped, so an interrupt
// stops them rather than leaving them behind.
var running = &runningSet{stops: map[int]func() error{}}

type runningSet struct {
	mu    sync.Mutex
	next  int
	stops map[int]func() error
}

func (r *runningSet) add(stop func() error) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.next++
	r.stops[r.next] = stop
	return r.next
}

func (r *runningSet) remove(id int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.stops, id)
}

func (r *runningSet) stopAll() {
	r.mu.Lock()
	stops := r.stops
	r.stops = map[int]func() error{}
	r.mu.Unlock()
	for _, stop := range stops {
		_ = stop()
	}
}

// stopOnInterrupt stops the started clusters and exits on SIGINT or
// SIGTERM; call the returned function to stop watching.
func stopOnInterrupt(stderr io.Writer) func() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-ch:
			fmt.Fprintf(stderr, "bench: %v: stopping the servers it started\n", sig)
			running.stopAll()
			os.Exit(130)
		case <-done:
		}
	}()
	return func() {
		signal.Stop(ch)
		close(done)
	}
}
