package testutil

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// fatalRecorder records Fatalf instead of stopping the test.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Helper()                           {}
func (f *fatalRecorder) Fatalf(format string, args ...any) { f.msg = fmt.Sprintf(format, args...) }

func TestEventuallyReturnsOnceTheConditionHolds(t *testing.T) {
	calls := 0
	Eventually(t, time.Minute, "the third call", func() (bool, string) {
		calls++
		return calls == 3, ""
	})
	if calls != 3 {
		t.Fatalf("cond called %d times, want 3", calls)
	}
}

func TestEventuallyFailsWithTheLastDetail(t *testing.T) {
	f := &fatalRecorder{TB: t}
	n := 0
	Eventually(f, 10*time.Millisecond, "never", func() (bool, string) {
		n++
		if n > 1000 {
			t.Fatal("Eventually kept polling after its deadline")
		}
		return false, "still no"
	})
	if !strings.Contains(f.msg, "never") || !strings.Contains(f.msg, "still no") {
		t.Fatalf("failure message %q does not name what was awaited and the last detail", f.msg)
	}
}
