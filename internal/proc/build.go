package proc

import (
	"fmt"
	"os/exec"
	"strings"
)

// CairnPackage is the import path of the cairn daemon.
const CairnPackage = "github.com/cairnkv/cairn/cmd/cairn"

// BuildOptions are how Build compiles a binary.
type BuildOptions struct {
	// Race builds with the race detector: a race in the running binary
	// is then reported in its log (see Member.DataRace).
	Race bool
	// Tags are build tags (cairnbugs plants the bugs of cmd/cairn/bugs_on.go).
	Tags []string
}

// Build compiles the Go package pkg (an import path, CairnPackage say)
// into the binary out with `go build`, from the current directory's module.
func Build(out, pkg string, o BuildOptions) error {
	args := buildArgs(out, pkg, o)
	if b, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, b)
	}
	return nil
}

func buildArgs(out, pkg string, o BuildOptions) []string {
	args := []string{"build", "-o", out}
	if o.Race {
		args = append(args, "-race")
	}
	if len(o.Tags) > 0 {
		args = append(args, "-tags", strings.Join(o.Tags, ","))
	}
	return append(args, pkg)
}
