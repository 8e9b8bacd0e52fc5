package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// memSampler reads a server's memory from /proc/PID/status.
type memSampler struct {
	pid      int
	startRSS int64 // KiB
}

func startMem(pid int) *memSampler {
	m := &memSampler{pid: pid}
	if pid > 0 {
		m.startRSS, _ = procStatus(pid, "VmRSS")
	}
	return m
}

// finish samples the peak resident set now, waits settle, and samples the
// resident set again: the memory the server keeps once the load is gone.
func (m *memSampler) finish(settle time.Duration) report {
	if m.pid <= 0 {
		return nil
	}
	peak, err := procStatus(m.pid, "VmHWM")
	if err != nil {
		return report{{"server_memory_error", err.Error()}}
	}
	time.Sleep(settle) // the measurement: memory this long after the load
	after, err := procStatus(m.pid, "VmRSS")
	if err != nil {
		return report{{"server_memory_error", err.Error()}}
	}
	return report{
		{"server_rss_start_mib", mib(m.startRSS)},
		{"server_rss_peak_mib", mib(peak)},
		{fmt.Sprintf("server_rss_after_%s_mib", settle), mib(after)},
	}
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
