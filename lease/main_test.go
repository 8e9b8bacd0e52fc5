package lease

import (
	"flag"
	"os"
	"testing"
)

// TestMain makes 1000 the default -rapid.checks (rapid's own is 100,
// too few to find tie-breaking bugs in the expiry heap reliably); an
// explicit -rapid.checks still wins.
func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "rapid.checks" })
	if !set {
		if err := flag.Set("rapid.checks", "1000"); err != nil {
			panic(err)
		}
	}
	os.Exit(m.Run())
}
