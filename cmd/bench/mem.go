package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// memSampler reads servers' memory from /proc/PID/status. With several
// servers (the members of a cluster) it reports the largest of each.
// It also sums the servers' CPU time (user and system) over the run.
type memSampler struct {
	pids     []int
	startRSS int64   // KiB
	startCPU float64 // seconds, summed over pids
}

func startMem(pids []int) *memSampler {
	m := &memSampler{pids: pids}
	for _, pid := range pids {
		if rss, err := procStatus(pid, "VmRSS"); err == nil {
			m.startRSS = max(m.startRSS, rss)
		}
	}
	m.startCPU, _ = cpuSeconds(pids)
	return m
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times: 100 on every
// Linux architecture Go supports.
const clockTicks = 100

// cpuSeconds sums the user and system CPU time of the processes, from
// /proc/PID/stat (fields 14 and 15).
func cpuSeconds(pids []int) (float64, error) {
	var ticks int64
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return 0, err
		}
		// The command name (field 2) is in parentheses and may hold
		// spaces: count fields after its closing parenthesis.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 13 {
			return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
		}
		for _, s := range f[11:13] { // fields 14 (utime) and 15 (stime)
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
			}
			ticks += n
		}
	}
	return float64(ticks) / clockTicks, nil
}

// finish samples the peak resident set now, waits settle, and samples the
// resident set again: the memory the server keeps once the load is gone.
func (m *memSampler) finish(settle time.Duration) report {
	if len(m.pids) == 0 {
		return nil
	}
	var cpu report
	if end, err := cpuSeconds(m.pids); err == nil {
		cpu = report{{"server_cpu_seconds", round(end-m.startCPU, 2)}}
	}
	var peak, after int64
	for _, pid := range m.pids {
		p, err := procStatus(pid, "VmHWM")
		if err != nil {
			return report{{"server_memory_error", err.Error()}}
		}
		peak = max(peak, p)
	}
	time.Sleep(settle) // the measurement: memory this long after the load
	for _, pid := range m.pids {
		a, err := procStatus(pid, "VmRSS")
		if err != nil {
			return report{{"server_memory_error", err.Error()}}
		}
		after = max(after, a)
	}
	return append(cpu, report{
		{"server_rss_start_mib", mib(m.startRSS)},
		{"server_rss_peak_mib", mib(peak)},
		{fmt.Sprintf("server_rss_after_%s_mib", settle), mib(after)},
		// The same under a name that does not change with -settle.
		{"server_rss_mib", mib(after)},
	}...)
}

func mib(kib int64) float64 { return float64(kib*10/1024) / 10 }

// procStatus returns a "Name: N kB" line of /proc/pid/status, in KiB.
func procStatus(pid int, name string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, name+":"); ok {
			fields := strings.Fields(rest)
			if len(fields) == 0 {
				break
			}
			return strconv.ParseInt(fields[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("%s not in /proc/%d/status", name, pid)
}

// dbSize asks every endpoint for its status (Maintenance.Status) and
// reports the largest database file and the largest part of it in use.
func dbSize(ctx context.Context, c *clientv3.Client, endpoints []string) report {
	var size, inUse int64
	for _, ep := range endpoints {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := c.Status(sctx, ep)
		cancel()
		if err != nil {
			return report{{"db_size_error", err.Error()}}
		}
		size = max(size, st.DbSize)
		inUse = max(inUse, st.DbSizeInUse)
	}
	return report{
		{"db_size_mib", round(float64(size)/(1<<20), 2)},
		{"db_size_in_use_mib", round(float64(inUse)/(1<<20), 2)},
	}
}
