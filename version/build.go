package version

import (
	"runtime/debug"
	"strings"
)

// Git is the version of the tree the binary was built from, as
// `git describe --tags --always --dirty` prints it. make build and make
// release stamp it:
//
//	go build -ldflags "-X github.com/cairnkv/cairn/version.Git=$(git describe --tags --always --dirty)"
//
// It is empty in a binary built otherwise; GitVersion then falls back to
// the VCS information go build records.
var Git string

// GitVersion is the git version of this binary: Git when stamped, else
// the revision go build recorded (12 hex digits, "-dirty" when the tree
// had changes), else the module version of `go install ...@version`, else
// "" (a build with -buildvcs=false outside a tagged module).
func GitVersion() string {
	if Git != "" {
		return Git
	}
	return fromBuildInfo(debug.ReadBuildInfo)
}

func fromBuildInfo(read func() (*debug.BuildInfo, bool)) string {
	bi, ok := read()
	if !ok || bi == nil {
		return ""
	}
	var rev string
	var dirty bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			return v
		}
		return ""
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return rev
}

// Describe is Git's version, or "unknown" when the binary does not know it.
func Describe() string {
	if v := strings.TrimSpace(GitVersion()); v != "" {
		return v
	}
	return "unknown"
}
