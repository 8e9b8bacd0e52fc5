package node

import "testing"

// The shell drains work queued behind its loop after the core stopped, and
// some of it reads the core's state: a stopped core answers as a closed
// store does, never with a nil store (a panic at shutdown, found by e2e).
func TestStoppedCoreAnswersReads(t *testing.T) {
	for _, stop := range []string{"close", "crash"} {
		c := newTestCore(t, 1)
		if stop == "close" {
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
		} else {
			c.Crash()
		}
		if v := c.ClusterVersion(); v != "" {
			t.Errorf("%s: ClusterVersion = %q", stop, v)
		}
		if v := c.StorageVersion(); v != "" {
			t.Errorf("%s: StorageVersion = %q", stop, v)
		}
		_ = c.Downgrade()
		_ = c.Members()
		if err := c.Close(); err != nil {
			t.Errorf("%s: a second Close: %v", stop, err)
		}
	}
}
