package deploy

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/proc"
	"github.com/cairnkv/cairn/internal/testutil"
)

// containerRuntime runs podman or docker commands.
type containerRuntime struct {
	name string   // "podman" or "docker"
	path string   // its binary
	env  []string // extra environment (podman's CONTAINERS_CONF)
}

func (r *containerRuntime) cmd(ctx context.Context, args ...string) *exec.Cmd {
	c := exec.CommandContext(ctx, r.path, args...)
	c.Env = append(os.Environ(), r.env...)
	return c
}

// run runs one command and returns its combined output.
func (r *containerRuntime) run(ctx context.Context, args ...string) (string, error) {
	out, err := r.cmd(ctx, args...).CombinedOutput()
	s := strings.TrimSpace(string(dropRuntimeNoise(out)))
	if err != nil {
		return s, fmt.Errorf("%s %s: %w\n%s", r.name, strings.Join(args, " "), err, s)
	}
	return s, nil
}

// dropRuntimeNoise removes podman's complaints that it cannot reach
// systemd to time health checks (the tests run them themselves).
func dropRuntimeNoise(out []byte) []byte {
	var keep [][]byte
	for l := range bytes.SplitSeq(out, []byte("\n")) {
		if bytes.Contains(l, []byte("unable to get systemd connection")) {
			continue
		}
		keep = append(keep, l)
	}
	return bytes.Join(keep, []byte("\n"))
}

// standInImages makes the two bases the Dockerfile names, from this
// machine, where the registries that hold golang and distroless images
// cannot be reached: the Go stand-in is this GOROOT with a shell and mkdir
// (what the build stage's RUN lines use), the runtime stand-in an empty
// root with distroless' passwd (nonroot is 65532). It returns their names.
func standInImages(t *testing.T, ctx context.Context, rt *containerRuntime, suffix string) (goImage, runImage string) {
	t.Helper()
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	for _, d := range []string{"etc", "tmp", "bin"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(rootfs, "tmp"), 0o1777); err != nil {
		t.Fatal(err)
	}
	write := func(rel, s string) {
		if err := os.WriteFile(filepath.Join(rootfs, rel), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("etc/passwd", "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")
	write("etc/group", "root:x:0:\nnonroot:x:65532:\n")
	runImage = "localhost/cairn-deploy-test-runtime:" + suffix
	tarRun := exec.CommandContext(ctx, "tar", "-C", rootfs, "-cf", "-", ".")
	importImage(t, ctx, rt, tarRun, runImage)

	// The Go stand-in: the shell and mkdir with their libraries.
	for _, bin := range []string{"/bin/sh", "/bin/mkdir"} {
		copyWithLibs(t, bin, rootfs)
	}
	goroot := runtime.GOROOT()
	if out, err := exec.Command("go", "env", "GOROOT").Output(); err == nil {
		goroot = strings.TrimSpace(string(out))
	}
	goImage = "localhost/cairn-deploy-test-go:" + suffix
	tarGo := exec.CommandContext(ctx, "tar", "-C", filepath.Dir(goroot),
		"--transform", "s,^"+filepath.Base(goroot)+",usr/local/go,",
		"-cf", "-", filepath.Base(goroot), "-C", rootfs, ".")
	proxy := "off" // podman's build mounts this machine's module cache
	if rt.name == "docker" {
		proxy = goEnv(t, "GOPROXY")
	}
	importImage(t, ctx, rt, tarGo, goImage,
		"ENV PATH=/usr/local/go/bin:/usr/bin:/bin", "ENV GOPATH=/go", "ENV HOME=/root", "ENV GOPROXY="+proxy)
	return goImage, runImage
}

func goEnv(t *testing.T, key string) string {
	out, err := exec.Command("go", "env", key).Output()
	if err != nil {
		t.Fatalf("go env %s: %v", key, err)
	}
	return strings.TrimSpace(string(out))
}

// importImage makes image from the tar stream tarCmd writes.
func importImage(t *testing.T, ctx context.Context, rt *containerRuntime, tarCmd *exec.Cmd, image string, changes ...string) {
	t.Helper()
	args := []string{"import"}
	for _, c := range changes {
		args = append(args, "--change", c)
	}
	imp := rt.cmd(ctx, append(args, "-", image)...)
	pipe, err := tarCmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var tarErr bytes.Buffer
	tarCmd.Stderr = &tarErr
	imp.Stdin = pipe
	if err := tarCmd.Start(); err != nil {
		t.Fatal(err)
	}
	out, err := imp.CombinedOutput()
	if werr := tarCmd.Wait(); werr != nil {
		t.Fatalf("tar for %s: %v %s", image, werr, tarErr.String())
	}
	if err != nil {
		t.Fatalf("%s import %s: %v\n%s", rt.name, image, err, out)
	}
	t.Cleanup(func() {
		// Without rt.env: the containers.conf a probe wrote after this
		// import may be gone by now, and removing an image runs nothing.
		bare := &containerRuntime{name: rt.name, path: rt.path}
		if _, err := bare.run(context.Background(), "rmi", "-f", image); err != nil {
			t.Errorf("remove %s: %v", image, err)
		}
	})
}

// copyWithLibs copies bin and the shared libraries ldd lists into root
// at the same paths (symbolic links followed).
func copyWithLibs(t *testing.T, bin, root string) {
	t.Helper()
	paths := []string{bin}
	out, err := exec.Command("ldd", bin).Output()
	if err == nil {
		for _, f := range strings.Fields(string(out)) {
			if strings.HasPrefix(f, "/") {
				paths = append(paths, f)
			}
		}
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// findContainerRuntime returns a runtime that can run a container here,
// or why none can. Podman gets a containers.conf for machines like this
// one (no CAP_SYS_RESOURCE, cgroups v1 with an empty unified hierarchy)
// when it cannot run with its defaults: runc, and limits no higher than
// this process's.
func findContainerRuntime(t *testing.T, ctx context.Context, probe func(*containerRuntime) error) (*containerRuntime, string) {
	var why []string
	if p, err := exec.LookPath("podman"); err == nil {
		rt := &containerRuntime{name: "podman", path: p}
		if err := probe(rt); err == nil {
			return rt, ""
		} else {
			why = append(why, fmt.Sprintf("podman with its defaults: %v", err))
		}
		conf := filepath.Join(t.TempDir(), "containers.conf")
		lim := "nofile=1024:1024\", \"nproc=1024:1024"
		engine := ""
		if _, err := exec.LookPath("runc"); err == nil {
			engine = "[engine]\nruntime = \"runc\"\n"
		}
		if err := os.WriteFile(conf, []byte("[containers]\ndefault_ulimits = [\""+lim+"\"]\n"+engine), 0o644); err != nil {
			t.Fatal(err)
		}
		rt.env = []string{"CONTAINERS_CONF=" + conf}
		if err := probe(rt); err == nil {
			t.Logf("podman runs containers here with runc and ulimits of 1024 (%s)", conf)
			return rt, ""
		} else {
			why = append(why, fmt.Sprintf("podman with runc and lower limits: %v", err))
		}
	} else {
		why = append(why, "no podman")
	}
	if p, err := exec.LookPath("docker"); err == nil {
		rt := &containerRuntime{name: "docker", path: p}
		if _, err := rt.run(ctx, "info"); err != nil {
			why = append(why, fmt.Sprintf("docker is only a client here (no engine): %v", engineError(err.Error())))
		} else if err := probe(rt); err != nil {
			why = append(why, fmt.Sprintf("docker: %v", err))
		} else {
			return rt, ""
		}
	} else {
		why = append(why, "no docker")
	}
	return nil, strings.Join(why, "; ")
}

// engineError is the line of docker info's output that says why no engine
// answered, else its first line.
func engineError(s string) string {
	for l := range strings.SplitSeq(s, "\n") {
		if strings.Contains(l, "Cannot connect") || strings.Contains(l, "ERROR") {
			return strings.TrimSpace(l)
		}
	}
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// TestContainerCluster builds the image from the Dockerfile and runs two
// three-member clusters of it: compose.yaml's and the handbook's docker run
// lines (docs/deploy.md). Where no container runtime can run, it says so in
// its log and checks nothing more (TestDockerfileEssentials and
// TestComposeEssentials still check the files).
func TestContainerCluster(t *testing.T) {
	ctx := ctxT(t, 20*time.Minute)
	suffix := fmt.Sprintf("%d-%d", os.Getpid(), rand.IntN(1e6))
	var goImage, runImage string
	var rt *containerRuntime
	// The probe runs a shell in the Go stand-in image, made once.
	probe := func(r *containerRuntime) error {
		if goImage == "" || rt != r {
			rt = r
			goImage, runImage = standInImages(t, ctx, r, suffix)
		}
		out, err := r.run(ctx, "run", "--rm", goImage, "/bin/sh", "-c", "echo ready")
		if err == nil && out != "ready" {
			err = fmt.Errorf("ran, printed %q", out)
		}
		return err
	}
	if _, err := exec.LookPath("podman"); err != nil {
		if _, err := exec.LookPath("docker"); err != nil {
			t.Logf("no container runtime: neither podman nor docker is on this machine (Debian: apt-get install podman runc); the image was not built, the Dockerfile and compose.yaml are checked by TestDockerfileEssentials and TestComposeEssentials")
			return
		}
	}
	rt, why := findContainerRuntime(t, ctx, probe)
	if rt == nil {
		t.Logf("no container runtime can run a container here (%s); the image was not built, the Dockerfile and compose.yaml are checked by TestDockerfileEssentials and TestComposeEssentials", why)
		return
	}
	if goImage == "" {
		goImage, runImage = standInImages(t, ctx, rt, suffix)
	}
	t.Logf("%s: the image's bases are local stand-ins (%s, %s) for golang and distroless, which this machine cannot pull", rt.name, goImage, runImage)

	// Build, as `docker build --build-arg VERSION=... -t cairn .`.
	image := "localhost/cairn-deploy-test:" + suffix
	const stamp = "deploy-test"
	build := []string{"build", "-f", rootPath("Dockerfile"), "-t", image,
		"--build-arg", "GO_IMAGE=" + goImage, "--build-arg", "RUNTIME_IMAGE=" + runImage, "--build-arg", "VERSION=" + stamp}
	if rt.name == "podman" {
		// docker format keeps HEALTHCHECK; the module and build caches of
		// this machine spare the download and most of the compiling; no
		// layers are kept (the build stage would stay as an unnamed image).
		build = append(build, "--format", "docker", "--layers=false",
			"-v", goEnv(t, "GOMODCACHE")+":/go/pkg/mod", "-v", goEnv(t, "GOCACHE")+":/root/.cache/go-build")
	}
	start := time.Now()
	if _, err := rt.run(ctx, append(build, root)...); err != nil {
		t.Fatalf("building the image: %v", err)
	}
	t.Cleanup(func() { _, _ = rt.run(context.Background(), "rmi", "-f", image) })
	t.Logf("built %s in %v", image, time.Since(start).Round(time.Second))
	cfg, err := rt.run(ctx, "image", "inspect", "--format", "{{.Config.User}}|{{json .Config.ExposedPorts}}|{{json .Config.Volumes}}|{{json .Config.Healthcheck}}", image)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"65532:65532|", `"2379/tcp"`, `"2380/tcp"`, `"/var/lib/cairn"`, `"check","health"`} {
		if !strings.Contains(cfg, want) {
			t.Errorf("image config %s lacks %s", cfg, want)
		}
	}
	if out, err := rt.run(ctx, "run", "--rm", image, "--version"); err != nil || !strings.Contains(out, "Git Version: "+stamp) {
		t.Errorf("cairn --version in the image: %v %q, want Git Version: %s", err, out, stamp)
	}

	t.Run("compose", func(t *testing.T) { testComposeCluster(t, ctx, rt, image, suffix) })
	t.Run("docker run", func(t *testing.T) { testHandbookDockerRun(t, ctx, rt, image, suffix) })
}

// healthy runs container's HEALTHCHECK (podman, which times health checks
// through systemd, absent here) or reads its last result (docker).
func healthy(ctx context.Context, rt *containerRuntime, container string) (bool, string) {
	if rt.name == "podman" {
		out, err := rt.run(ctx, "healthcheck", "run", container)
		return err == nil, fmt.Sprint(out, err)
	}
	out, err := rt.run(ctx, "inspect", "--format", "{{.State.Health.Status}}", container)
	return err == nil && out == "healthy", fmt.Sprint(out, err)
}

// removeAtEnd removes the containers and volumes at the end of the test,
// printing the containers' logs first if it failed.
func removeAtEnd(t *testing.T, rt *containerRuntime, container, volume string) {
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := rt.run(context.Background(), "logs", "--tail", "20", container)
			t.Logf("%s logs %s (tail):\n%s", rt.name, container, logs)
		}
		_, _ = rt.run(context.Background(), "rm", "-f", container)
		_, _ = rt.run(context.Background(), "volume", "rm", "-f", volume)
	})
}

// composeCluster is compose.yaml's cluster, running.
type composeCluster struct {
	container map[string]string // service -> its container
	join      []string          // the run flags that put another container on its network
}

// testComposeCluster starts compose.yaml's three members (with the
// machine's compose tool, else with run lines that do what compose
// would: one network, a named volume each, the services' environments),
// on free host ports (CAIRN_PORT_1-3), waits for each container's
// HEALTHCHECK to pass, checks the client URLs published on this host and
// advertised, writes and reads through etcdctl in another container, kills
// a member and sees the other two serve, then restarts it on its volume and
// sees it catch up.
func testComposeCluster(t *testing.T, ctx context.Context, rt *containerRuntime, image, suffix string) {
	c := readCompose(t)
	names := make([]string, 0, len(c.Services))
	for n := range c.Services {
		names = append(names, n)
	}
	slices.Sort(names)
	ports, err := proc.FreePorts(len(names))
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"CAIRN_IMAGE": image}
	for i := range names {
		vars[fmt.Sprintf("CAIRN_PORT_%d", i+1)] = fmt.Sprint(ports[i])
	}
	var cl composeCluster
	if tool, why := composeTool(rt); tool != nil {
		cl = composeUp(t, ctx, rt, tool, names, vars, "cairn-deploy-"+suffix)
	} else {
		t.Logf("no compose tool here (%s): compose.yaml's services are started with %s run, as compose starts them", why, rt.name)
		cl = composeByHand(t, ctx, rt, c, names, vars, image, suffix)
	}
	ctr := func(n string) string { return cl.container[n] }
	for _, n := range names {
		testutil.Eventually(t, 2*time.Minute, n+"'s HEALTHCHECK", func() (bool, string) { return healthy(ctx, rt, ctr(n)) })
	}
	if out, err := rt.run(ctx, "logs", ctr(names[1])); err != nil || !strings.Contains(out, "cairn serving") {
		t.Errorf("%s logs %s: %v, no \"cairn serving\" line", rt.name, ctr(names[1]), err)
	}
	// From this host: each published port, and the client URLs the
	// members advertise (CAIRN_HOST's default, 127.0.0.1, and the port).
	var want []string
	for i := range names {
		want = append(want, fmt.Sprintf("http://127.0.0.1:%d", ports[i]))
	}
	for i, n := range names {
		var ml struct {
			Members []struct {
				ClientURLs []string `json:"clientURLs"`
			} `json:"members"`
		}
		testutil.Eventually(t, time.Minute, n+"'s member list from this host", func() (bool, string) {
			err := httpJSON(ctx, want[i]+"/v3/cluster/member/list", "{}", &ml)
			var got []string
			for _, m := range ml.Members {
				got = append(got, m.ClientURLs...)
			}
			slices.Sort(got)
			return err == nil && slices.Equal(got, sorted(want)), fmt.Sprint(got, err)
		})
	}

	// etcdctl in another container on the members' network.
	etcdctl := func(endpoints []string, args ...string) (string, error) {
		a := append([]string{"run", "--rm"}, cl.join...)
		var eps []string
		for _, n := range endpoints {
			eps = append(eps, n+":2379")
		}
		a = append(a, "--entrypoint", "/usr/local/bin/etcdctl", image, "--endpoints", strings.Join(eps, ","))
		return rt.run(ctx, append(a, args...)...)
	}
	testutil.Eventually(t, time.Minute, "etcdctl put from another container", func() (bool, string) {
		out, err := etcdctl(names, "put", "handbook", "docker")
		return err == nil && out == "OK", fmt.Sprint(out, err)
	})
	if out, err := etcdctl(names[2:], "get", "handbook", "--print-value-only"); err != nil || out != "docker" {
		t.Fatalf("etcdctl get through %s: %q %v, want docker", names[2], out, err)
	}

	// A member killed: the other two serve writes and reads.
	if _, err := rt.run(ctx, "kill", ctr(names[0])); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, time.Minute, "etcdctl put with "+names[0]+" killed", func() (bool, string) {
		out, err := etcdctl(names[1:], "put", "handbook", "one down")
		return err == nil && out == "OK", fmt.Sprint(out, err)
	})
	if out, err := etcdctl(names[1:], "get", "handbook", "--print-value-only"); err != nil || out != "one down" {
		t.Fatalf("etcdctl get with %s killed: %q %v", names[0], out, err)
	}
	if out, err := rt.run(ctx, "inspect", "--format", "{{.State.Running}}", ctr(names[0])); err != nil || out != "false" {
		t.Fatalf("%s killed: running %q %v, want it down while the others served", names[0], out, err)
	}
	// Restarted on its volume, it catches up: docker exec ... etcdctl.
	if _, err := rt.run(ctx, "start", ctr(names[0])); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, time.Minute, names[0]+" restarted catches up", func() (bool, string) {
		out, err := rt.run(ctx, "exec", ctr(names[0]), "etcdctl", "get", "handbook", "--print-value-only", "--consistency=s")
		return err == nil && out == "one down", fmt.Sprint(out, err)
	})
	testutil.Eventually(t, time.Minute, names[0]+"'s HEALTHCHECK after its restart", func() (bool, string) { return healthy(ctx, rt, ctr(names[0])) })
	out, err := etcdctl(names, "member", "list")
	if err != nil || strings.Count(out, "started") != 3 {
		t.Errorf("etcdctl member list: %v\n%s\nwant 3 started members", err, out)
	}
}

func sorted(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }

// composeTool is the command that runs compose files with rt, if this
// machine has one that can: `docker compose`, or podman-compose with the
// CNI dnsname plugin (service names resolve through it). Else nil and why.
func composeTool(rt *containerRuntime) ([]string, string) {
	if rt.name == "docker" {
		if err := exec.Command(rt.path, "compose", "version").Run(); err != nil {
			return nil, "docker has no compose plugin"
		}
		return []string{rt.path, "compose"}, ""
	}
	pc, err := exec.LookPath("podman-compose")
	if err != nil {
		return nil, "no podman-compose (Debian: apt-get install podman-compose golang-github-containernetworking-plugin-dnsname)"
	}
	for _, d := range []string{"/usr/lib/cni", "/usr/libexec/cni", "/opt/cni/bin"} {
		if _, err := os.Stat(filepath.Join(d, "dnsname")); err == nil {
			return []string{pc}, ""
		}
	}
	return nil, "podman-compose without the CNI dnsname plugin (Debian: golang-github-containernetworking-plugin-dnsname), so service names would not resolve"
}

// composeUp runs `compose -p project -f compose.yaml up -d --no-build`
// with vars in its environment (the image is built already) and takes it
// down, volumes included, at the end of the test.
func composeUp(t *testing.T, ctx context.Context, rt *containerRuntime, tool, names []string, vars map[string]string, project string) composeCluster {
	t.Helper()
	compose := func(ctx context.Context, args ...string) (string, error) {
		a := append(slices.Clone(tool[1:]), "-p", project, "-f", rootPath("compose.yaml"))
		cmd := exec.CommandContext(ctx, tool[0], append(a, args...)...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), rt.env...)
		for k, v := range vars {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			return string(out), fmt.Errorf("%s %s: %w\n%s", strings.Join(tool, " "), strings.Join(args, " "), err, dropRuntimeNoise(out))
		}
		return string(out), nil
	}
	containers := map[string]string{}
	t.Cleanup(func() {
		ctx := context.Background()
		if t.Failed() {
			for _, n := range names {
				if id := containers[n]; id != "" {
					logs, _ := rt.run(ctx, "logs", "--tail", "20", id)
					t.Logf("%s logs %s (tail):\n%s", rt.name, n, logs)
				}
			}
		}
		if _, err := compose(ctx, "down", "-v"); err != nil {
			t.Logf("compose down: %v", err)
		}
		_, _ = rt.run(ctx, "network", "rm", "-f", project+"_default")
	})
	up := []string{"up", "-d", "--no-build"}
	if rt.name == "docker" {
		up = append(up, "--pull", "never")
	}
	if _, err := compose(ctx, up...); err != nil {
		t.Fatal(err)
	}
	t.Logf("compose.yaml started with %s", strings.Join(tool, " "))
	cl := composeCluster{container: containers, join: []string{"--network", project + "_default"}}
	for _, n := range names {
		id, err := rt.run(ctx, "ps", "-a", "-q", "--filter", "label=com.docker.compose.project="+project, "--filter", "label=com.docker.compose.service="+n)
		if err != nil || id == "" || strings.Contains(id, "\n") {
			t.Fatalf("%s's container: %q %v", n, id, err)
		}
		cl.container[n] = id
	}
	return cl
}

// composeByHand starts compose.yaml's services with run lines: a network,
// the services' hostnames resolving through --add-host (no DNS plugin
// needed), a named volume each, their environments and published ports.
func composeByHand(t *testing.T, ctx context.Context, rt *containerRuntime, c composeFile, names []string, vars map[string]string, image, suffix string) composeCluster {
	t.Helper()
	network, ips := createNetwork(t, ctx, rt, "cairn-deploy-"+suffix, len(names))
	var hosts []string
	for i, n := range names {
		hosts = append(hosts, "--add-host", n+":"+ips[i])
	}
	cl := composeCluster{container: map[string]string{}, join: append([]string{"--network", network}, hosts...)}
	for i, n := range names {
		s := c.Services[n]
		name := "cairn-deploy-" + suffix + "-" + n
		args := []string{"run", "-d", "--name", name, "--network", network, "--ip", ips[i], "--hostname", s.Hostname}
		args = append(args, hosts...)
		vol, path, _ := strings.Cut(s.Volumes[0], ":")
		args = append(args, "-v", name+"-"+vol+":"+path)
		for _, p := range s.Ports {
			args = append(args, "-p", composeExpand(p, vars))
		}
		for _, kv := range memberEnvFromCompose(nil, s.Environment, vars) {
			args = append(args, "-e", kv)
		}
		if _, err := rt.run(ctx, append(args, image)...); err != nil {
			t.Fatal(err)
		}
		removeAtEnd(t, rt, name, name+"-"+vol)
		cl.container[n] = name
	}
	return cl
}

// testHandbookDockerRun runs docs/deploy.md's docker run lines, which are
// the handbook's: three members on this host, each publishing its client
// and peer ports on the host and advertising the host's address with them,
// so that the members reach each other, and clients reach them, through
// the host. It then reads the cluster's status through the advertised
// URLs (etcdctl endpoint status --cluster, in a member's container) and
// /health and /version from this host.
func testHandbookDockerRun(t *testing.T, ctx context.Context, rt *containerRuntime, image, suffix string) {
	host, err := hostAddress()
	if err != nil {
		t.Fatalf("this host's address: %v", err)
	}
	ports, err := proc.FreePorts(6)
	if err != nil {
		t.Fatal(err)
	}
	client, peer := ports[:3], ports[3:]
	var cluster []string
	for i := range 3 {
		cluster = append(cluster, fmt.Sprintf("cairn-%d=http://%s:%d", i, host, peer[i]))
	}
	ctr := func(i int) string { return fmt.Sprintf("cairn-deploy-%s-hb-%d", suffix, i) }
	for i := range 3 {
		removeAtEnd(t, rt, ctr(i), ctr(i))
		_, err := rt.run(ctx, "run", "-d", "--name", ctr(i),
			"-p", fmt.Sprintf("%d:2379", client[i]), "-p", fmt.Sprintf("%d:2380", peer[i]), "-v", ctr(i)+":/var/lib/cairn", image,
			"--name", fmt.Sprintf("cairn-%d", i),
			"--initial-advertise-peer-urls", fmt.Sprintf("http://%s:%d", host, peer[i]),
			"--advertise-client-urls", fmt.Sprintf("http://%s:%d", host, client[i]),
			"--initial-cluster", strings.Join(cluster, ","), "--initial-cluster-state", "new", "--initial-cluster-token", "cairn-docker")
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		testutil.Eventually(t, 2*time.Minute, ctr(i)+"'s HEALTHCHECK", func() (bool, string) { return healthy(ctx, rt, ctr(i)) })
	}
	testutil.Eventually(t, time.Minute, "etcdctl endpoint status --cluster in "+ctr(1), func() (bool, string) {
		out, err := rt.run(ctx, "exec", ctr(1), "etcdctl", "endpoint", "status", "--cluster", "-w", "fields")
		leaders, members := statusFields(out, "Leader"), statusFields(out, "MemberID")
		ok := err == nil && strings.Count(out, `"Endpoint" : "http://`+host) == 3 && len(members) == 3 &&
			len(leaders) == 3 && leaders[0] == leaders[1] && leaders[1] == leaders[2] && slices.Contains(members, leaders[0])
		return ok, fmt.Sprint(out, err)
	})
	for i := range 3 {
		var v map[string]string
		if err := httpJSON(ctx, fmt.Sprintf("http://%s:%d/version", host, client[i]), "", &v); err != nil || v["git"] == "" {
			t.Errorf("/version from this host through %s's published port: %v %v", ctr(i), v, err)
		}
	}
}

// statusFields are the values of key in etcdctl's -w fields output.
func statusFields(out, key string) []string {
	var vals []string
	for line := range strings.SplitSeq(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), `"`+key+`" : `); ok {
			vals = append(vals, v)
		}
	}
	return vals
}

// hostAddress is an IPv4 address of this host that containers reach it
// by: the first up, non-loopback interface's, bridges of container
// runtimes left out.
func hostAddress() (string, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return "", err
	}
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		if slices.ContainsFunc([]string{"cni-", "podman", "docker", "br-", "veth", "virbr"}, func(p string) bool { return strings.HasPrefix(ifc.Name, p) }) {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
				return ipn.IP.String(), nil
			}
		}
	}
	return "", fmt.Errorf("no up, non-loopback IPv4 interface")
}

// createNetwork makes a network with a subnet of its own and returns its
// name and n addresses in it (compose's service names resolve to them
// through --add-host, which needs no DNS plugin).
func createNetwork(t *testing.T, ctx context.Context, rt *containerRuntime, name string, n int) (string, []string) {
	t.Helper()
	var lastErr error
	for range 5 {
		third := 100 + rand.IntN(150)
		subnet := fmt.Sprintf("10.89.%d.0/24", third)
		if _, err := rt.run(ctx, "network", "create", "--subnet", subnet, name); err != nil {
			lastErr = err
			continue
		}
		t.Cleanup(func() { _, _ = rt.run(context.Background(), "network", "rm", "-f", name) })
		ips := make([]string, n)
		for i := range ips {
			ips[i] = fmt.Sprintf("10.89.%d.%d", third, 11+i)
		}
		return name, ips
	}
	t.Fatalf("create a network: %v", lastErr)
	return "", nil
}
