package monitoring

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/proc"
)

// envCairn names a prebuilt cairn binary to test instead of building one.
const envCairn = "CAIRN_MONITORING_CAIRN"

// synthetic are the metrics Prometheus makes up for each target rather
// than scraping them.
var synthetic = map[string]bool{"up": true, "scrape_duration_seconds": true, "scrape_samples_scraped": true}

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if os.Getenv(envCairn) == "" {
		dir, err := os.MkdirTemp("", "cairn-monitoring-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		out := filepath.Join(dir, "cairn")
		cmd := exec.Command("go", "build", "-o", out, proc.CairnPackage)
		cmd.Dir = filepath.Join("..", "..") // the parent module
		cmd.Env = append(os.Environ(), "GOWORK=off")
		if b, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building cairn: %v\n%s", err, b)
			return 1
		}
		os.Setenv(envCairn, out)
	}
	return m.Run()
}

// startCluster starts a three-member cluster with extra flags for every
// member, waits until every member is healthy, and kills them when the
// test ends (printing their logs if it failed).
func startCluster(t *testing.T, extra ...string) []*proc.Member {
	t.Helper()
	bin, err := filepath.Abs(os.Getenv(envCairn))
	if err != nil {
		t.Fatal(err)
	}
	var lastErr error
	for attempt := 0; attempt < 4; attempt++ {
		urls, err := proc.FreeURLs(6)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		token := fmt.Sprintf("cairn-monitoring-%d-%d", os.Getpid(), time.Now().UnixNano())
		var ms []*proc.Member
		var peers []proc.Peer
		for i := 0; i < 3; i++ {
			name := fmt.Sprintf("m%d", i)
			if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
				t.Fatal(err)
			}
			m := &proc.Member{
				Flags: proc.Flags{
					Name: name, DataDir: filepath.Join(dir, name, "data"),
					ClientURL: urls[2*i], PeerURL: urls[2*i+1], Token: token, Extra: extra,
				},
				Bin:     bin,
				LogPath: filepath.Join(dir, name, "cairn.log"),
			}
			ms = append(ms, m)
			peers = append(peers, m.Peer())
		}
		for _, m := range ms {
			m.InitialCluster = proc.InitialCluster(peers...)
			if err := m.Start(); err != nil {
				t.Fatal(err)
			}
		}
		t.Cleanup(func() {
			for _, m := range ms {
				if m.Running() {
					_ = m.Kill()
				}
				if t.Failed() {
					t.Logf("log of %s:\n%s", m.Name, m.LogTail(40))
				}
			}
		})
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		lastErr = nil
		for _, m := range ms {
			if err := m.WaitHealthy(ctx); err != nil {
				lastErr = err
				break
			}
		}
		cancel()
		if lastErr == nil {
			return ms
		}
		for _, m := range ms {
			if m.Running() {
				_ = m.Kill()
			}
		}
		if !errors.Is(lastErr, proc.ErrAddrInUse) {
			t.Fatalf("cluster did not become healthy: %v", lastErr)
		}
		t.Logf("port collision, retrying with other ports: %v", lastErr)
	}
	t.Fatalf("cluster did not start: %v", lastErr)
	return nil
}

// scrape returns the names of the samples m's /metrics exports, and the
// number of samples of each.
func scrape(t *testing.T, m *proc.Member) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.ClientURL+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("scrape %s: %v", m.Name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: %d %v", m.Name, resp.StatusCode, err)
	}
	names := map[string]int{}
	for _, l := range strings.Split(string(body), "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if i := strings.IndexAny(l, "{ "); i > 0 {
			names[l[:i]]++
		}
	}
	return names
}

// put writes a key through m's JSON gateway, so that the cluster has
// served a client write when it is scraped.
func put(t *testing.T, m *proc.Member) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.ClientURL+"/v3/kv/put", strings.NewReader(`{"key":"bW9uaXRvcmluZw==","value":"b2s="}`))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("put via %s: %v", m.Name, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("put via %s: HTTP %d", m.Name, resp.StatusCode)
	}
}

// Every metric the dashboard and the alert rules read is exported by every
// member of a running three-member cluster (with --metrics=extensive, which
// the gRPC latency panel and alert need), as a sample name of its /metrics:
// histograms are read through their _bucket, _sum and _count series.
func TestEveryQueriedMetricIsExported(t *testing.T) {
	queried := queriedMetrics(t)
	if t.Failed() {
		t.FailNow()
	}
	ms := startCluster(t, "--metrics", "extensive")
	put(t, ms[0])
	for _, m := range ms {
		exported := scrape(t, m)
		var missing []string
		for name, where := range queried {
			if synthetic[name] {
				continue
			}
			if exported[name] == 0 {
				missing = append(missing, fmt.Sprintf("%s (read by %s)", name, strings.Join(where, "; ")))
			}
		}
		sort.Strings(missing)
		for _, s := range missing {
			t.Errorf("member %s does not export %s", m.Name, s)
		}
	}
}
