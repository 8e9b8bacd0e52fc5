package main

import (
	"os"
	"testing"
	"time"
)

// cpuSeconds reads a process's CPU time from /proc: this test's own grows
// by at least what it burns.
func TestCPUSecondsCountsWhatAProcessBurns(t *testing.T) {
	pid := os.Getpid()
	before, err := cpuSeconds([]int{pid})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	x := 0
	for time.Since(start) < 300*time.Millisecond { // burn CPU, not a wait
		for i := range 1000 {
			x += i
		}
	}
	after, err := cpuSeconds([]int{pid})
	if err != nil {
		t.Fatal(err)
	}
	if got := after - before; got < 0.1 {
		t.Fatalf("burned 300 ms of CPU (sum %d), cpuSeconds grew by %.2f s", x, got)
	}
	if _, err := cpuSeconds([]int{pid, 1 << 30}); err == nil {
		t.Fatal("cpuSeconds of a process that does not exist succeeded")
	}
}
