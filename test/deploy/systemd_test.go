package deploy

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/config"
	"github.com/cairnkv/cairn/internal/proc"
	"github.com/cairnkv/cairn/internal/testutil"
)

const (
	unitPath    = "scripts/cairn.service"
	envExample  = "scripts/cairn.env.example"
	unitDataDir = "/var/lib/cairn"
)

// parseUnit reads a systemd unit file into "Section.Key" -> values, in
// order (a key may be given more than once).
func parseUnit(text string) map[string][]string {
	m := make(map[string][]string)
	section := ""
	for line := range strings.SplitSeq(text, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = strings.Trim(line, "[]")
		default:
			k, v, _ := strings.Cut(line, "=")
			m[section+"."+strings.TrimSpace(k)] = append(m[section+"."+strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	return m
}

// unitProblems are what the member unit lacks of issue #20's essentials.
func unitProblems(text string) []string {
	u := parseUnit(text)
	var p []string
	want := func(key, val string) {
		if !slices.Contains(u[key], val) {
			p = append(p, fmt.Sprintf("%s=%s missing (has %q)", key, val, u[key]))
		}
	}
	want("Service.Type", "notify")
	want("Service.ExecStart", "/usr/local/bin/cairn")
	want("Service.ProtectSystem", "strict")
	want("Service.NoNewPrivileges", "yes")
	want("Service.Restart", "on-failure")
	want("Install.WantedBy", "multi-user.target")
	if n := u["Service.LimitNOFILE"]; len(n) == 0 || n[0] == "" {
		p = append(p, "no LimitNOFILE")
	}
	if u["Service.User"] == nil || slices.Contains(u["Service.User"], "root") {
		p = append(p, fmt.Sprintf("User=%q: want an unprivileged user", u["Service.User"]))
	}
	if !slices.ContainsFunc(u["Service.EnvironmentFile"], func(v string) bool { return strings.HasSuffix(v, "/etc/cairn/cairn.env") }) {
		p = append(p, fmt.Sprintf("EnvironmentFile=%q: want /etc/cairn/cairn.env", u["Service.EnvironmentFile"]))
	}
	if !slices.ContainsFunc(u["Service.ReadWritePaths"], func(v string) bool { return slices.Contains(strings.Fields(v), unitDataDir) }) {
		p = append(p, fmt.Sprintf("ReadWritePaths=%q: want the data dir %s writable under ProtectSystem=strict", u["Service.ReadWritePaths"], unitDataDir))
	}
	if !slices.Contains(u["Service.Environment"], "ETCD_DATA_DIR="+unitDataDir) {
		p = append(p, "Environment=ETCD_DATA_DIR="+unitDataDir+" missing: the data dir the hardening opens")
	}
	return p
}

func TestSystemdUnitEssentials(t *testing.T) {
	unit := readFile(t, unitPath)
	for _, p := range unitProblems(unit) {
		t.Errorf("%s: %s", unitPath, p)
	}
	// The check can fail: a unit without Type=notify nor hardening.
	broken := strings.NewReplacer("\nType=notify\n", "\nType=simple\n", "\nProtectSystem=strict\n", "\nProtectSystem=full\n").Replace(unit)
	if n := len(unitProblems(broken)); n != 2 {
		t.Errorf("a unit without Type=notify and ProtectSystem=strict: %d problems found, want 2", n)
	}
	// Cairn sends what Type=notify waits for.
	notify := readFile(t, "config/notify.go")
	if !strings.Contains(notify, `"READY=1"`) || !strings.Contains(notify, `"NOTIFY_SOCKET"`) {
		t.Errorf("config/notify.go does not send READY=1 to NOTIFY_SOCKET: Type=notify would never start")
	}
}

// TestSystemdAnalyzeVerify runs `systemd-analyze verify` on the unit in a
// root laid out as a host would have it (the unit in /etc/systemd/system,
// cairn in /usr/local/bin, this machine's systemd units): any message it
// prints about the unit fails the test.
func TestSystemdAnalyzeVerify(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Logf("no systemd-analyze on this machine (Debian: apt-get install systemd): the unit is checked by TestSystemdUnitEssentials only")
		return
	}
	sysUnits := ""
	for _, d := range []string{"/usr/lib/systemd/system", "/lib/systemd/system"} {
		if _, err := os.Stat(filepath.Join(d, "sysinit.target")); err == nil {
			sysUnits = d
			break
		}
	}
	if sysUnits == "" {
		t.Fatalf("%s is here but systemd's own units (sysinit.target) are not in /usr/lib/systemd/system", sa)
	}
	verify := func(unit string) (string, error) {
		r := t.TempDir()
		for _, d := range []string{"etc/systemd/system", "usr/local/bin", "usr/lib/systemd"} {
			if err := os.MkdirAll(filepath.Join(r, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if out, err := exec.Command("cp", "-a", sysUnits, filepath.Join(r, "usr/lib/systemd/system")).CombinedOutput(); err != nil {
			t.Fatalf("copy %s: %v %s", sysUnits, err, out)
		}
		if out, err := exec.Command("cp", cairnBinary(t), filepath.Join(r, "usr/local/bin/cairn")).CombinedOutput(); err != nil {
			t.Fatalf("copy cairn: %v %s", err, out)
		}
		if err := os.WriteFile(filepath.Join(r, "etc/systemd/system/cairn.service"), []byte(unit), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(sa, "verify", "--man=no", "--root="+r, "cairn.service").CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	unit := readFile(t, unitPath)
	if out, err := verify(unit); err != nil || out != "" {
		t.Errorf("systemd-analyze verify %s: %v\n%s", unitPath, err, out)
	}
	// The check can fail: systemd-analyze reports a bad setting (with
	// exit status 0) and a missing binary.
	if out, _ := verify(strings.Replace(unit, "\nProtectSystem=strict\n", "\nProtectSystem=strictest\n", 1)); !strings.Contains(out, "strictest") {
		t.Errorf("systemd-analyze verify of ProtectSystem=strictest said nothing of it: %q", out)
	}
	if out, err := verify(strings.Replace(unit, "\nExecStart=/usr/local/bin/cairn\n", "\nExecStart=/usr/local/bin/cairn-missing\n", 1)); err == nil {
		t.Errorf("systemd-analyze verify of a missing ExecStart binary passed: %q", out)
	}
}

// envFile reads KEY=VALUE lines, skipping comments and blank lines.
func envFile(t *testing.T, text string) []string {
	t.Helper()
	var env []string
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !strings.Contains(line, "=") || strings.ContainsAny(line, `"'$`) {
			t.Fatalf("%q: want plain KEY=VALUE (systemd's EnvironmentFile and docker's --env-file read it alike)", line)
		}
		env = append(env, line)
	}
	return env
}

func TestEnvExampleIsMemberOneOfThree(t *testing.T) {
	env := envFile(t, readFile(t, envExample))
	cfg, err := config.Parse(nil, env)
	if err != nil {
		t.Fatalf("cairn refuses %s: %v", envExample, err)
	}
	if len(cfg.Warnings) > 0 {
		t.Errorf("cairn warns of %s: %q", envExample, cfg.Warnings)
	}
	if cfg.Name != "cairn-1" || cfg.DataDir != unitDataDir || cfg.InitialClusterState != "new" {
		t.Errorf("%s: name %q data dir %q state %q, want cairn-1 %s new", envExample, cfg.Name, cfg.DataDir, cfg.InitialClusterState, unitDataDir)
	}
	if n := len(cfg.InitialCluster); n != 3 {
		t.Errorf("%s: initial cluster %+v has %d members, want 3", envExample, cfg.InitialCluster, n)
	}
}

// memberEnv is the example's environment for member i (1-3) as
// docs/deploy.md says to write it: ETCD_NAME and this host's four URLs
// changed. Hosts 10.0.0.N become ports on 127.0.0.1 here, and the extra
// listen URL on 127.0.0.1:2379 (one per host) is left out, since the three
// share one host.
func memberEnv(example []string, i int, peer, client []int, dataDir string) []string {
	own := map[string]bool{"ETCD_LISTEN_PEER_URLS": true, "ETCD_LISTEN_CLIENT_URLS": true, "ETCD_INITIAL_ADVERTISE_PEER_URLS": true, "ETCD_ADVERTISE_CLIENT_URLS": true}
	var env []string
	for _, kv := range example {
		k, v, _ := strings.Cut(kv, "=")
		switch {
		case k == "ETCD_NAME":
			v = fmt.Sprintf("cairn-%d", i)
		case k == "ETCD_DATA_DIR":
			v = dataDir
		case own[k]:
			v = strings.ReplaceAll(v, "10.0.0.1", fmt.Sprintf("10.0.0.%d", i))
		}
		v = strings.ReplaceAll(v, ",http://127.0.0.1:2379", "")
		for j := 1; j <= 3; j++ {
			v = strings.ReplaceAll(v, fmt.Sprintf("http://10.0.0.%d:2380", j), fmt.Sprintf("http://127.0.0.1:%d", peer[j-1]))
			v = strings.ReplaceAll(v, fmt.Sprintf("http://10.0.0.%d:2379", j), fmt.Sprintf("http://127.0.0.1:%d", client[j-1]))
		}
		env = append(env, k+"="+v)
	}
	return env
}

// TestSystemdThreeMemberSetUp starts the documented three-member set-up as
// systemd would: each member with only its environment file's variables
// and a NOTIFY_SOCKET, and waits for each member's READY=1 (what
// Type=notify waits for) before it writes through one member and reads
// through another.
func TestSystemdThreeMemberSetUp(t *testing.T) {
	bin := cairnBinary(t)
	example := envFile(t, readFile(t, envExample))
	ports, err := proc.FreePorts(6)
	if err != nil {
		t.Fatal(err)
	}
	peer, client := ports[:3], ports[3:]
	dir := t.TempDir()
	sockets := make([]*net.UnixConn, 3)
	for i := range 3 {
		addr := &net.UnixAddr{Name: filepath.Join(dir, fmt.Sprintf("notify-%d.sock", i+1)), Net: "unixgram"}
		c, err := net.ListenUnixgram("unixgram", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		sockets[i] = c
		env := memberEnv(example, i+1, peer, client, filepath.Join(dir, fmt.Sprintf("data-%d", i+1)))
		if i == 0 {
			t.Logf("member 1's environment file here:\n%s", strings.Join(env, "\n"))
		}
		startCairn(t, fmt.Sprintf("cairn-%d", i+1), bin, nil, append(env, "NOTIFY_SOCKET="+addr.Name))
	}
	for i, c := range sockets {
		_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
		buf := make([]byte, 256)
		n, err := c.Read(buf)
		if err != nil || string(buf[:n]) != "READY=1" {
			t.Fatalf("cairn-%d: read NOTIFY_SOCKET: %q %v, want READY=1", i+1, buf[:n], err)
		}
	}
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	url := func(i int, path string) string { return fmt.Sprintf("http://127.0.0.1:%d%s", client[i], path) }
	ctx := ctxT(t, 90*time.Second)
	testutil.Eventually(t, 60*time.Second, "put through cairn-1", func() (bool, string) {
		var resp map[string]any
		err := httpJSON(ctx, url(0, "/v3/kv/put"), fmt.Sprintf(`{"key":%q,"value":%q}`, b64("systemd"), b64("three members")), &resp)
		return err == nil, fmt.Sprint(err)
	})
	var rng struct {
		Kvs []struct{ Value string } `json:"kvs"`
	}
	if err := httpJSON(ctx, url(2, "/v3/kv/range"), fmt.Sprintf(`{"key":%q}`, b64("systemd")), &rng); err != nil {
		t.Fatalf("range through cairn-3: %v", err)
	}
	if len(rng.Kvs) != 1 || rng.Kvs[0].Value != b64("three members") {
		t.Fatalf("cairn-3 reads %+v, want the value written through cairn-1", rng.Kvs)
	}
	var members struct {
		Members []struct{ Name string } `json:"members"`
	}
	if err := httpJSON(ctx, url(1, "/v3/cluster/member/list"), `{}`, &members); err != nil || len(members.Members) != 3 {
		t.Fatalf("member list through cairn-2: %+v %v, want 3 members", members, err)
	}
}
