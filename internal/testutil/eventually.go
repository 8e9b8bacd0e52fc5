// Package testutil holds what several packages' tests share.
package testutil

import (
	"testing"
	"time"
)

// Eventually polls cond until it holds; after timeout it fails the test
// with what and cond's last detail. It is how tests wait for a state they
// cannot be told about. The polling interval starts at a millisecond and
// doubles up to 20 ms, so quick conditions are seen at once and slow ones
// do not spin.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() (ok bool, detail string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	interval := time.Millisecond
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v (%s)", what, timeout, detail)
			return
		}
		time.Sleep(interval) // the polling interval
		interval = min(2*interval, 20*time.Millisecond)
	}
}
