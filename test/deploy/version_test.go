package deploy

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/proc"
	"github.com/cairnkv/cairn/internal/testutil"
	"github.com/cairnkv/cairn/version"
)

// gitDescribe is what make stamps by default.
func gitDescribe(t *testing.T) string {
	t.Helper()
	cmd := exec.Command("git", "describe", "--tags", "--always", "--dirty")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git describe: %v (the tests run in a git checkout)", err)
	}
	return strings.TrimSpace(string(out))
}

// cairnVersionLine is the "Git Version:" of bin --version.
func cairnVersionLine(t *testing.T, bin string) string {
	t.Helper()
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("%s --version: %v\n%s", bin, err, out)
	}
	for line := range strings.SplitSeq(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "Git Version: "); ok {
			return v
		}
	}
	t.Fatalf("%s --version prints no Git Version line:\n%s", bin, out)
	return ""
}

// TestMakeBuildStampsVersion: make build stamps git describe's version,
// which cairn --version prints and /version serves beside etcd's versions.
func TestMakeBuildStampsVersion(t *testing.T) {
	bin := t.TempDir()
	before := gitDescribe(t)
	cmd := exec.Command("make", "-C", root, "build", "BIN="+bin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make build: %v\n%s", err, out)
	}
	// Another commit in this checkout between the two describes is the
	// only way they differ.
	want := []string{before, gitDescribe(t)}
	got := cairnVersionLine(t, filepath.Join(bin, "cairn"))
	if !slices.Contains(want, got) {
		t.Fatalf("cairn --version: Git Version %q, want git describe's %q", got, want[0])
	}

	ports, err := proc.FreePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	curl := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	purl := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	startCairn(t, "cairn", filepath.Join(bin, "cairn"), []string{
		"--name", "v", "--data-dir", t.TempDir(),
		"--listen-client-urls", curl, "--advertise-client-urls", curl,
		"--listen-peer-urls", purl, "--initial-advertise-peer-urls", purl, "--initial-cluster", "v=" + purl,
	}, nil)
	ctx := ctxT(t, 60*time.Second)
	var v map[string]string
	testutil.Eventually(t, 30*time.Second, "/version with etcd's cluster version", func() (bool, string) {
		v = nil
		err := httpJSON(ctx, curl+"/version", "", &v)
		return err == nil && v["etcdcluster"] == version.EtcdCluster, fmt.Sprint(v, err)
	})
	if v["git"] != got || v["etcdserver"] != version.Etcd || v["cairn"] != version.Cairn {
		t.Errorf("/version = %v, want git %q, etcdserver %q (etcd's, which clients switch on), cairn %q", v, got, version.Etcd, version.Cairn)
	}
}

// TestMakeRelease: make release builds static cairn, cairnctl and etcdctl
// for linux/amd64 and linux/arm64, stamped, in dist/ with a SHA256SUMS
// that sha256sum -c accepts.
func TestMakeRelease(t *testing.T) {
	dist := filepath.Join(t.TempDir(), "dist")
	const stamp = "v0.0.0-release-test"
	cmd := exec.Command("make", "-C", root, "release", "DIST="+dist, "VERSION="+stamp)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make release: %v\n%s", err, out)
	}
	sums := map[string]string{}
	b, err := os.ReadFile(filepath.Join(dist, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
		sum, name, ok := strings.Cut(line, "  ")
		if !ok {
			t.Fatalf("SHA256SUMS line %q is not sha256sum's", line)
		}
		sums[name] = sum
	}
	machines := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}
	var want []string
	for _, arch := range []string{"amd64", "arm64"} {
		name := "cairn-" + stamp + "-linux-" + arch
		want = append(want, name+".tar.gz")
		for _, b := range []string{"cairn", "cairnctl", "etcdctl"} {
			p := name + "/" + b
			want = append(want, p)
			f, err := elf.Open(filepath.Join(dist, p))
			if err != nil {
				t.Errorf("%s: %v", p, err)
				continue
			}
			if f.Machine != machines[arch] {
				t.Errorf("%s: machine %v, want %v", p, f.Machine, machines[arch])
			}
			for _, prog := range f.Progs {
				if prog.Type == elf.PT_INTERP {
					t.Errorf("%s has a dynamic loader: not static (CGO_ENABLED=0)", p)
				}
			}
			if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
				t.Errorf("%s links %v: not static", p, libs)
			}
			_ = f.Close()
		}
		tarNames := tarball(t, filepath.Join(dist, name+".tar.gz"))
		if w := []string{name + "/cairn", name + "/cairnctl", name + "/etcdctl"}; !slices.Equal(tarNames, w) {
			t.Errorf("%s.tar.gz holds %v, want %v", name, tarNames, w)
		}
	}
	var names []string
	for n := range sums {
		names = append(names, n)
	}
	slices.Sort(names)
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("SHA256SUMS lists %v, want %v", names, want)
	}
	for n, sum := range sums {
		if got := fileSHA256(t, filepath.Join(dist, n)); got != sum {
			t.Errorf("%s: sha256 %s, SHA256SUMS says %s", n, got, sum)
		}
	}
	// This machine runs the amd64 build: its stamp is the VERSION given.
	if got := cairnVersionLine(t, filepath.Join(dist, "cairn-"+stamp+"-linux-amd64", "cairn")); got != stamp {
		t.Errorf("release cairn --version: Git Version %q, want %q", got, stamp)
	}
}

func tarball(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if h.Typeflag == tar.TypeReg {
			names = append(names, h.Name)
		}
	}
	slices.Sort(names)
	return names
}

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}
