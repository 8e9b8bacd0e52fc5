package deploy

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/testutil"
)

// debianSystemdRoot is a tar of a Debian bookworm root with systemd, made
// by debootstrap once and kept in the user's cache directory.
func debianSystemdRoot(t *testing.T, ctx context.Context) (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	tarPath := filepath.Join(cache, "cairn-deploy", "bookworm-systemd.tar")
	if _, err := os.Stat(tarPath); err == nil {
		return tarPath, nil
	}
	db, err := exec.LookPath("debootstrap")
	if err != nil {
		return "", fmt.Errorf("no debootstrap (Debian: apt-get install debootstrap)")
	}
	if os.Geteuid() != 0 {
		return "", fmt.Errorf("debootstrap needs root")
	}
	if err := os.MkdirAll(filepath.Dir(tarPath), 0o755); err != nil {
		return "", err
	}
	rootfs := t.TempDir()
	start := time.Now()
	out, err := exec.CommandContext(ctx, db, "--variant=minbase", "--include=systemd,systemd-sysv,dbus", "bookworm", rootfs, "http://deb.debian.org/debian").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("debootstrap: %v\n%s", err, tail(string(out), 10))
	}
	tmp := tarPath + ".tmp"
	if out, err := exec.CommandContext(ctx, "tar", "-C", rootfs, "-cf", tmp, ".").CombinedOutput(); err != nil {
		return "", fmt.Errorf("tar the root: %v %s", err, out)
	}
	if err := os.Rename(tmp, tarPath); err != nil {
		return "", err
	}
	t.Logf("debootstrap made a Debian bookworm root with systemd in %v, kept as %s", time.Since(start).Round(time.Second), tarPath)
	return tarPath, nil
}

func tail(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// TestSystemdUnitRunsUnderSystemd is docs/deploy.md's three-member
// set-up under a real systemd: three Debian containers (podman
// --systemd=always), each with cairn in /usr/local/bin, a `cairn` system
// user, scripts/cairn.service enabled as shipped, and
// scripts/cairn.env.example as /etc/cairn/cairn.env with only the hosts'
// addresses changed to the containers'. systemd must see each member
// active (Type=notify: after READY=1) under the unit's hardening; a write
// through one member is read through another; a member killed with
// SIGKILL is restarted by systemd (Restart=on-failure), and stops cleanly.
// Where podman, debootstrap or root are missing it says so in its log
// (TestSystemdAnalyzeVerify and TestSystemdThreeMemberSetUp still run).
func TestSystemdUnitRunsUnderSystemd(t *testing.T) {
	ctx := ctxT(t, 15*time.Minute)
	if _, err := exec.LookPath("podman"); err != nil {
		t.Logf("no podman on this machine: the unit was not run under systemd (it runs systemd in containers with --systemd=always)")
		return
	}
	rootTar, err := debianSystemdRoot(t, ctx)
	if err != nil {
		t.Logf("no Debian root with systemd (%v): the unit was not run under systemd", err)
		return
	}
	suffix := fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
	base := "localhost/cairn-deploy-systemd-base:" + suffix
	var rt *containerRuntime
	probe := func(r *containerRuntime) error {
		if rt != r {
			rt = r
			tarCmd := exec.CommandContext(ctx, "cat", rootTar)
			importImage(t, ctx, r, tarCmd, base)
		}
		_, err := r.run(ctx, "run", "--rm", base, "/bin/true")
		return err
	}
	rt, why := findContainerRuntime(t, ctx, probe)
	if rt == nil || rt.name != "podman" {
		t.Logf("podman cannot run a container here (%s): the unit was not run under systemd", why)
		return
	}

	// The image: the base with cairn, etcdctl, the unit enabled and the
	// cairn user, as docs/deploy.md installs them.
	dir := t.TempDir()
	for _, f := range []struct{ src, dst string }{
		{cairnBinary(t), "cairn"}, {rootPath(unitPath), "cairn.service"},
	} {
		if out, err := exec.Command("cp", f.src, filepath.Join(dir, f.dst)).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v %s", err, out)
		}
	}
	etcdctl := exec.Command("go", "build", "-o", filepath.Join(dir, "etcdctl"), "go.etcd.io/etcd/etcdctl/v3")
	etcdctl.Dir = root
	if out, err := etcdctl.CombinedOutput(); err != nil {
		t.Fatalf("build etcdctl: %v %s", err, out)
	}
	containerfile := "FROM " + base + "\n" +
		"COPY cairn etcdctl /usr/local/bin/\n" +
		"COPY cairn.service /etc/systemd/system/cairn.service\n" +
		"RUN useradd --system --home-dir /var/lib/cairn --shell /usr/sbin/nologin cairn && systemctl enable cairn\n" +
		"CMD [\"/sbin/init\"]\n"
	if err := os.WriteFile(filepath.Join(dir, "Containerfile"), []byte(containerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	image := "localhost/cairn-deploy-systemd:" + suffix
	if _, err := rt.run(ctx, "build", "--layers=false", "-t", image, "-f", filepath.Join(dir, "Containerfile"), dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = rt.run(context.Background(), "rmi", "-f", image) })

	// Three hosts: 10.0.0.N of the example become the containers' addresses.
	network, ips := createNetwork(t, ctx, rt, "cairn-deploy-sd-"+suffix, 3)
	example := readFile(t, envExample)
	ctr := func(i int) string { return fmt.Sprintf("cairn-deploy-sd-%s-%d", suffix, i+1) }
	for i := range 3 {
		env := example
		// This host's URLs and name, as docs/deploy.md says to edit them.
		env = strings.Replace(env, "ETCD_NAME=cairn-1", fmt.Sprintf("ETCD_NAME=cairn-%d", i+1), 1)
		var lines []string
		for _, l := range strings.Split(env, "\n") {
			if strings.HasPrefix(l, "ETCD_LISTEN_") || strings.HasPrefix(l, "ETCD_INITIAL_ADVERTISE_PEER_URLS=") || strings.HasPrefix(l, "ETCD_ADVERTISE_CLIENT_URLS=") {
				l = strings.ReplaceAll(l, "10.0.0.1", fmt.Sprintf("10.0.0.%d", i+1))
			}
			lines = append(lines, l)
		}
		env = strings.Join(lines, "\n")
		for j := range 3 {
			env = strings.ReplaceAll(env, fmt.Sprintf("10.0.0.%d:", j+1), ips[j]+":")
		}
		envPath := filepath.Join(dir, fmt.Sprintf("cairn-%d.env", i+1))
		if err := os.WriteFile(envPath, []byte(env), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if t.Failed() {
				out, _ := rt.run(context.Background(), "exec", ctr(i), "journalctl", "-u", "cairn", "--no-pager", "-n", "20")
				t.Logf("%s: journalctl -u cairn (tail):\n%s", ctr(i), out)
			}
			_, _ = rt.run(context.Background(), "rm", "-f", ctr(i))
		})
		if _, err := rt.run(ctx, "run", "-d", "--name", ctr(i), "--systemd=always", "--network", network, "--ip", ips[i],
			"-v", envPath+":/etc/cairn/cairn.env:ro", image); err != nil {
			t.Fatal(err)
		}
	}
	sh := func(i int, script string) (string, error) { return rt.run(ctx, "exec", ctr(i), "sh", "-c", script) }
	for i := range 3 {
		testutil.Eventually(t, 2*time.Minute, ctr(i)+": systemctl is-active cairn", func() (bool, string) {
			out, err := sh(i, "systemctl is-active cairn")
			return err == nil && out == "active", fmt.Sprint(out, err)
		})
	}
	eps := fmt.Sprintf("%s:2379,%s:2379,%s:2379", ips[0], ips[1], ips[2])
	testutil.Eventually(t, time.Minute, "etcdctl put in "+ctr(0), func() (bool, string) {
		out, err := sh(0, "etcdctl --endpoints "+eps+" put systemd unit")
		return err == nil && out == "OK", fmt.Sprint(out, err)
	})
	// The extra listen URL on 127.0.0.1:2379, as the example has it.
	if out, err := sh(2, "etcdctl get systemd --print-value-only"); err != nil || out != "unit" {
		t.Fatalf("etcdctl get in %s on 127.0.0.1:2379: %q %v, want unit", ctr(2), out, err)
	}
	if out, err := sh(0, "journalctl -u cairn --no-pager | grep -c 'notified systemd: ready'"); err != nil || out == "0" {
		t.Errorf("%s: cairn did not log that it notified systemd: %q %v", ctr(0), out, err)
	}
	if out, err := sh(0, "stat -c '%U %a' /var/lib/cairn"); err != nil || out != "cairn 700" {
		t.Errorf("%s: /var/lib/cairn is %q %v, want cairn 700", ctr(0), out, err)
	}
	if out, err := sh(0, "systemd-analyze security cairn --no-pager | tail -1"); err == nil {
		t.Logf("systemd-analyze security cairn: %s", strings.TrimSpace(out))
	}
	// SIGKILL: systemd restarts it (Restart=on-failure), it serves again.
	if _, err := sh(1, "kill -9 $(systemctl show -p MainPID --value cairn)"); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, time.Minute, ctr(1)+" restarted by systemd", func() (bool, string) {
		out, err := sh(1, "systemctl show -p NRestarts --value cairn; systemctl is-active cairn; etcdctl get systemd --print-value-only")
		return err == nil && out == "1\nactive\nunit", fmt.Sprint(out, err)
	})
	// systemctl stop: SIGTERM, a clean exit.
	if out, err := sh(2, "systemctl stop cairn; systemctl show -p Result --value cairn; systemctl show -p ExecMainStatus --value cairn"); err != nil || out != "success\n0" {
		t.Errorf("%s: systemctl stop cairn: %q %v, want success and status 0", ctr(2), out, err)
	}
}
