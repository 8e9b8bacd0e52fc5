package deploy

import (
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/cairnkv/cairn/config"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	Cmd  string // upper case: FROM, RUN, ...
	Args string
}

// stage is one FROM and the instructions after it.
type stage struct {
	From  string // the image, ARGs not expanded
	Name  string // AS name
	Instr []instruction
}

func parseDockerfile(text string) []stage {
	var stages []stage
	var cur strings.Builder
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		cmd, args, _ := strings.Cut(line, " ")
		in := instruction{Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args)}
		if in.Cmd == "FROM" {
			f := strings.Fields(in.Args)
			s := stage{From: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				s.Name = f[2]
			}
			stages = append(stages, s)
			return
		}
		if len(stages) > 0 {
			stages[len(stages)-1].Instr = append(stages[len(stages)-1].Instr, in)
		}
	}
	for line := range strings.SplitSeq(text, "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "#") {
			continue
		}
		if b, ok := strings.CutSuffix(t, "\\"); ok {
			cur.WriteString(b + " ")
			continue
		}
		cur.WriteString(t)
		flush()
	}
	flush()
	return stages
}

func (s stage) all(cmd string) []string {
	var out []string
	for _, in := range s.Instr {
		if in.Cmd == cmd {
			out = append(out, in.Args)
		}
	}
	return out
}

// imageEnv is the final stage's ENV as KEY=VALUE (the form ENV K=V ...).
func imageEnv(s stage) []string {
	var env []string
	for _, a := range s.all("ENV") {
		env = append(env, strings.Fields(a)...)
	}
	return env
}

// dockerfileProblems are what the Dockerfile lacks of issue #20's
// essentials.
func dockerfileProblems(text string) []string {
	stages := parseDockerfile(text)
	if len(stages) < 2 {
		return []string{fmt.Sprintf("%d stages: want a multi-stage build (build, then run)", len(stages))}
	}
	var p []string
	build, final := stages[0], stages[len(stages)-1]
	if build.Name == "" {
		p = append(p, "the build stage has no name (FROM ... AS build)")
	}
	runs := strings.Join(build.all("RUN"), "\n")
	for _, pkg := range []string{"./cmd/cairn", "./cmd/cairnctl", "go.etcd.io/etcd/etcdctl/v3"} {
		if !strings.Contains(runs, pkg) {
			p = append(p, "the build stage does not build "+pkg)
		}
	}
	if !strings.Contains(runs, "version.Git=") {
		p = append(p, "the build does not stamp version.Git")
	}
	if !slices.ContainsFunc(final.all("COPY"), func(a string) bool { return strings.Contains(a, "--from="+build.Name) }) {
		p = append(p, "the final stage copies nothing from the build stage")
	}
	users := final.all("USER")
	if len(users) == 0 {
		p = append(p, "no USER in the final stage: it would run as root")
	} else if u, _, _ := strings.Cut(users[len(users)-1], ":"); u == "root" || u == "0" {
		p = append(p, "USER "+users[len(users)-1]+": want a non-root user")
	}
	hc := final.all("HEALTHCHECK")
	if len(hc) != 1 || !strings.Contains(hc[0], "/health") || !strings.Contains(hc[0], "CMD") {
		p = append(p, fmt.Sprintf("HEALTHCHECK %q: want one CMD on /health", hc))
	}
	exposed := strings.Fields(strings.Join(final.all("EXPOSE"), " "))
	for _, port := range []string{"2379", "2380"} {
		if !slices.Contains(exposed, port) && !slices.Contains(exposed, port+"/tcp") {
			p = append(p, "EXPOSE lacks "+port)
		}
	}
	if v := strings.Join(final.all("VOLUME"), " "); !strings.Contains(v, "/var/lib/cairn") {
		p = append(p, "VOLUME lacks /var/lib/cairn")
	}
	if e := final.all("ENTRYPOINT"); len(e) != 1 || !strings.Contains(e[0], "/usr/local/bin/cairn\"") {
		p = append(p, fmt.Sprintf("ENTRYPOINT %q: want cairn", e))
	}
	env := imageEnv(final)
	for _, kv := range []string{"ETCD_DATA_DIR=/var/lib/cairn", "ETCD_LISTEN_CLIENT_URLS=http://0.0.0.0:2379", "ETCD_LISTEN_PEER_URLS=http://0.0.0.0:2380"} {
		if !slices.Contains(env, kv) {
			p = append(p, "ENV lacks "+kv+" (listen on 0.0.0.0 inside the container)")
		}
	}
	return p
}

func TestDockerfileEssentials(t *testing.T) {
	df := readFile(t, "Dockerfile")
	for _, p := range dockerfileProblems(df) {
		t.Errorf("Dockerfile: %s", p)
	}
	// The check can fail: the image as root, without a health check.
	broken := strings.NewReplacer("\nUSER 65532:65532\n", "\nUSER root\n", "\nHEALTHCHECK ", "\n# HEALTHCHECK ").Replace(df)
	if n := len(dockerfileProblems(broken)); n != 2 {
		t.Errorf("a Dockerfile running as root without HEALTHCHECK: %d problems found, want 2: %q", n, dockerfileProblems(broken))
	}
	if n := len(dockerfileProblems("FROM scratch\nCOPY cairn /\n")); n != 1 {
		t.Errorf("a one-stage Dockerfile: %d problems, want 1", n)
	}
	// The image with its ENV alone is a working single member: cairn
	// accepts the variables without a warning.
	cfg, err := config.Parse(nil, imageEnv(parseDockerfile(df)[len(parseDockerfile(df))-1]))
	if err != nil || len(cfg.Warnings) > 0 {
		t.Errorf("cairn with the image's ENV: %v %q", err, cfgWarnings(cfg))
	}
	// The build context: the sources, not the checkout's build output.
	ignore := strings.Fields(readFile(t, ".dockerignore"))
	for _, p := range []string{".git", "bin", "dist", "data"} {
		if !slices.Contains(ignore, p) {
			t.Errorf(".dockerignore lacks %s", p)
		}
	}
	if hl, err := exec.LookPath("hadolint"); err == nil {
		if out, err := exec.Command(hl, rootPath("Dockerfile")).CombinedOutput(); err != nil {
			t.Errorf("hadolint Dockerfile: %v\n%s", err, out)
		}
	} else {
		t.Logf("no hadolint on this machine (Debian 12 does not package it): the Dockerfile is checked by this test's parser only")
	}
}

func cfgWarnings(c *config.Config) []string {
	if c == nil {
		return nil
	}
	return c.Warnings
}

// composeFile is the part of compose.yaml the tests read.
type composeFile struct {
	Name     string `json:"name"`
	Services map[string]struct {
		Image       string            `json:"image"`
		Hostname    string            `json:"hostname"`
		Environment map[string]string `json:"environment"`
		Ports       []string          `json:"ports"`
		Volumes     []string          `json:"volumes"`
		Build       struct {
			Context string `json:"context"`
		} `json:"build"`
	} `json:"services"`
	Volumes map[string]any `json:"volumes"`
}

var composeVar = regexp.MustCompile(`\$\{([A-Z0-9_]+):-([^}]*)\}`)

// composeExpand replaces ${VAR:-default} with vars[VAR], or default when
// VAR is not in vars, as compose does with its environment.
func composeExpand(s string, vars map[string]string) string {
	return composeVar.ReplaceAllStringFunc(s, func(m string) string {
		sub := composeVar.FindStringSubmatch(m)
		if v, ok := vars[sub[1]]; ok {
			return v
		}
		return sub[2]
	})
}

// composeDefaults is s as compose reads it with none of its variables set.
func composeDefaults(s string) string { return composeExpand(s, nil) }

func readCompose(t *testing.T) composeFile {
	t.Helper()
	var c composeFile
	if err := yaml.Unmarshal([]byte(readFile(t, "compose.yaml")), &c); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	return c
}

// memberEnvFromCompose is a compose service's environment after the
// image's ENV, ${VAR:-default} expanded with vars, as KEY=VALUE.
func memberEnvFromCompose(image []string, env, vars map[string]string) []string {
	out := slices.Clone(image)
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		out = append(out, k+"="+composeExpand(env[k], vars))
	}
	return out
}

func TestComposeEssentials(t *testing.T) {
	c := readCompose(t)
	if len(c.Services) != 3 {
		t.Fatalf("compose.yaml: %d services, want 3 members", len(c.Services))
	}
	df := parseDockerfile(readFile(t, "Dockerfile"))
	image := imageEnv(df[len(df)-1])
	var cluster string
	peers := map[string]string{}
	hostPorts := map[string]bool{}
	for name, s := range c.Services {
		if s.Build.Context != "." || s.Image == "" {
			t.Errorf("%s: build %q image %q, want the Dockerfile's image", name, s.Build.Context, s.Image)
		}
		if len(s.Volumes) != 1 {
			t.Errorf("%s: volumes %q, want one for the data dir", name, s.Volumes)
		} else if vol, path, _ := strings.Cut(s.Volumes[0], ":"); path != "/var/lib/cairn" || c.Volumes == nil || !hasKey(c.Volumes, vol) {
			t.Errorf("%s: volume %q, want a named volume (declared under volumes:) on /var/lib/cairn", name, s.Volumes[0])
		}
		for _, p := range s.Ports {
			host, ctr, _ := strings.Cut(composeDefaults(p), ":")
			if ctr != "2379" || hostPorts[host] {
				t.Errorf("%s: port %q: want a distinct host port for the client port 2379", name, p)
			}
			hostPorts[host] = true
		}
		env := memberEnvFromCompose(image, s.Environment, nil)
		cfg, err := config.Parse(nil, env)
		if err != nil {
			t.Errorf("%s: cairn refuses its environment: %v", name, err)
			continue
		}
		if len(cfg.Warnings) > 0 {
			t.Errorf("%s: cairn warns: %q", name, cfg.Warnings)
		}
		if cfg.Name != name || s.Hostname != name {
			t.Errorf("%s: ETCD_NAME %q hostname %q, want the service's name (the peer URLs use it)", name, cfg.Name, s.Hostname)
		}
		ic := s.Environment["ETCD_INITIAL_CLUSTER"]
		if cluster == "" {
			cluster = ic
		} else if ic != cluster {
			t.Errorf("%s: ETCD_INITIAL_CLUSTER %q differs from another member's %q", name, ic, cluster)
		}
		peers[name] = s.Environment["ETCD_INITIAL_ADVERTISE_PEER_URLS"]
		if !strings.Contains(s.Environment["ETCD_ADVERTISE_CLIENT_URLS"], "${CAIRN_HOST") {
			t.Errorf("%s: ETCD_ADVERTISE_CLIENT_URLS %q: want the host's address (CAIRN_HOST)", name, s.Environment["ETCD_ADVERTISE_CLIENT_URLS"])
		}
	}
	for name, p := range peers {
		if !strings.Contains(","+cluster+",", ","+name+"="+p+",") {
			t.Errorf("%s advertises peer URL %q, not its entry in the initial cluster %q", name, p, cluster)
		}
	}
}

func hasKey(m map[string]any, k string) bool { _, ok := m[k]; return ok }
