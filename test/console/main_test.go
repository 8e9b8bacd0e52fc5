package console

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/cairnkv/cairn/internal/proc"
)

const (
	envCairn       = "CAIRN_CONSOLE_CAIRN"       // a prebuilt cairn to test
	envEtcdctl     = "CAIRN_CONSOLE_ETCDCTL"     // a prebuilt etcdctl
	envChromium    = "CAIRN_CONSOLE_CHROMIUM"    // the browser
	envScreenshots = "CAIRN_CONSOLE_SCREENSHOTS" // where the screenshots go
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "cairn-console-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	for _, b := range []struct{ env, name, pkg string }{
		{envCairn, "cairn", proc.CairnPackage},
		{envEtcdctl, "etcdctl", "go.etcd.io/etcd/etcdctl/v3"},
	} {
		if os.Getenv(b.env) != "" {
			continue
		}
		out := filepath.Join(dir, b.name)
		cmd := exec.Command("go", "build", "-o", out, b.pkg)
		cmd.Dir = filepath.Join("..", "..") // the parent module, whose go.mod has both
		cmd.Env = append(os.Environ(), "GOWORK=off")
		if b, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n%s", out, err, b)
			return 1
		}
		os.Setenv(b.env, out)
	}
	return m.Run()
}
