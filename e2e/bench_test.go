package e2e

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// cmd/bench's watch workload, small, against the real binary: every event
// to every watcher, and the server's memory read from /proc.
func TestBenchWatchWorkloadDeliversEveryEvent(t *testing.T) {
	c := NewCluster(t, 1)
	m := c.Members[0]
	out, err := exec.Command(benchBin(t),
		"-endpoints", strings.TrimPrefix(m.ClientURL, "http://"), "-conns", "2", "-clients", "2",
		"-server-pid", fmt.Sprint(m.Pid()), "-settle", "1ms", "-json",
		"watch", "-streams", "3", "-watch-per-stream", "20", "-watched-key-total", "2", "-put-total", "50").CombinedOutput()
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, out)
	}
	var rep map[string]any
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("bench output is not one JSON object: %v\n%s", err, out)
	}
	// 60 watchers over 2 keys, 50 puts alternating between them: every
	// put reaches the 30 watchers of its key.
	if rep["watchers"] != 60.0 || rep["events"] != 1500.0 {
		t.Fatalf("report: %v", rep)
	}
	for _, k := range []string{"deliver_seconds", "events_per_second", "server_rss_start_mib", "server_rss_peak_mib", "server_rss_after_1ms_mib"} {
		if v, ok := rep[k].(float64); !ok || v <= 0 {
			t.Fatalf("report field %s = %v: %v", k, rep[k], rep)
		}
	}
}
