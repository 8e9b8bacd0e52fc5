package console

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/proc"
	"github.com/cairnkv/cairn/internal/testcerts"
	"github.com/cairnkv/cairn/internal/testutil"
	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// browserFlags are the command line Chromium runs with, besides its
// user-data-dir (fresh for each test) and the DevTools port chromedp adds.
var browserFlags = []string{"headless", "no-sandbox", "disable-gpu", "disable-quic", "no-first-run",
	"disable-background-networking", "disable-component-update", "disable-sync", "disable-dev-shm-usage",
	"no-default-browser-check", "disable-extensions"}

// chromium is the browser the tests drive; a test without one fails.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv(envChromium); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatalf("no Chromium: install Debian's chromium (make test-console does, as root) or set %s", envChromium)
	return ""
}

// browser starts a headless Chromium for the test and returns its tab.
func browser(t *testing.T, extraFlags ...string) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{chromedp.ExecPath(chromium(t)), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1400, 900)}
	for _, f := range append(browserFlags, extraFlags...) {
		opts = append(opts, chromedp.Flag(f, true))
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// Start it now, so a browser that cannot run fails here, clearly.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	return ctx
}

// screenshots is where the pages' screenshots go.
func screenshots(t *testing.T) string {
	t.Helper()
	dir := os.Getenv(envScreenshots)
	if dir == "" {
		d, err := os.MkdirTemp("", "cairn-console-screenshots-")
		if err != nil {
			t.Fatal(err)
		}
		dir = d
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

type page struct {
	t    *testing.T
	ctx  context.Context
	base string // the console's URL
	dir  string
}

// do runs steps, failing the test with what it was doing.
func (p *page) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		p.shot("failed-" + strings.ReplaceAll(what, " ", "-"))
		p.t.Fatalf("%s: %v", what, err)
	}
}

// wait polls a JavaScript predicate until it is true.
func (p *page) wait(what, predicate string, timeout time.Duration) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, timeout+5*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](predicate, chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(100*time.Millisecond))); err != nil {
		p.shot("failed-" + strings.ReplaceAll(what, " ", "-"))
		p.t.Fatalf("waiting for %s (%s): %v", what, predicate, err)
	}
}

// eval evaluates a JavaScript expression to a string, awaiting it if it
// is a promise.
func (p *page) eval(expr string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return s
}

func (p *page) open(hash string) {
	p.t.Helper()
	p.do("open "+hash, chromedp.Navigate(p.base+"#"+hash))
	p.wait("the page to start", `document.body.dataset.ready === "true" && document.body.dataset.page === "`+hash+`"`, 10*time.Second)
}

func (p *page) evalBool(expr string) bool {
	p.t.Helper()
	return p.eval(`String(`+expr+`)`) == "true"
}

// shot saves a screenshot of the page as name.png.
func (p *page) shot(name string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Errorf("screenshot %s: %v", name, err)
		return
	}
	path := filepath.Join(p.dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Errorf("screenshot %s: %v", name, err)
	}
}

// confirm answers the console's confirmation dialog, checking it names
// the etcdctl command it stands for.
func (p *page) confirm(etcdctl string) {
	p.t.Helper()
	p.wait("the confirmation", `document.querySelector("#confirm").open`, 10*time.Second)
	if text := p.eval(`document.querySelector("#confirm-text").textContent`); !strings.Contains(text, etcdctl) {
		p.t.Errorf("confirmation %q does not name %q", text, etcdctl)
	}
	p.do("confirm", chromedp.Click("#confirm-ok"))
}

func js(s string) string { return fmt.Sprintf("%q", s) }

// member is a running member and its metrics URL.
type member struct {
	*proc.Member
	MetricsURL string
}

// startCluster starts three members with extra flags, each with a metrics
// URL, over TLS if ca is not nil, with certificates of ca, which the
// members trust as their system's (SSL_CERT_FILE), waits until each is
// healthy, and kills them when the test ends (printing their logs if it
// failed). (Not --auto-tls: its P-521 keys are refused by Chromium,
// ERR_SSL_VERSION_OR_CIPHER_MISMATCH, as by etcd's.)
func startCluster(t *testing.T, ca *testcerts.CA, extra ...string) []member {
	t.Helper()
	bin, err := filepath.Abs(os.Getenv(envCairn))
	if err != nil {
		t.Fatal(err)
	}
	var lastErr error
	for attempt := 0; attempt < 4; attempt++ {
		urls, err := proc.FreeURLs(9)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		token := fmt.Sprintf("cairn-console-%d-%d", os.Getpid(), time.Now().UnixNano())
		var ms []*proc.Member
		var out []member
		var peers []proc.Peer
		for i := 0; i < 3; i++ {
			name := fmt.Sprintf("m%d", i)
			if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
				t.Fatal(err)
			}
			clientURL, metricsURL := urls[2*i], urls[6+i]
			flags := append([]string{"--listen-metrics-urls", metricsURL}, extra...)
			var tc *tls.Config
			var env []string
			if ca != nil {
				clientURL, metricsURL = "https"+strings.TrimPrefix(clientURL, "http"), "https"+strings.TrimPrefix(metricsURL, "http")
				pair := ca.Peer(t, name)
				flags = append([]string{"--listen-metrics-urls", metricsURL, "--cert-file", pair.CertFile, "--key-file", pair.KeyFile}, extra...)
				pool := x509.NewCertPool()
				pool.AddCert(ca.Cert)
				tc = &tls.Config{RootCAs: pool}
				env = []string{"SSL_CERT_FILE=" + ca.CertFile}
			}
			m := &proc.Member{
				Flags: proc.Flags{Name: name, DataDir: filepath.Join(dir, name, "data"),
					ClientURL: clientURL, PeerURL: urls[2*i+1], Token: token, Extra: flags},
				Bin: bin, LogPath: filepath.Join(dir, name, "cairn.log"), TLS: tc, Env: env,
			}
			ms = append(ms, m)
			out = append(out, member{m, metricsURL})
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
			return out
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

func client(t *testing.T, ms []member) *clientv3.Client {
	t.Helper()
	var eps []string
	for _, m := range ms {
		eps = append(eps, m.ClientURL)
	}
	cfg := clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()}
	if ms[0].TLS != nil {
		cfg.TLS = ms[0].TLS
	}
	c, err := clientv3.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// leaderOf is the name of the leader as the members report it.
func leaderOf(t *testing.T, c *clientv3.Client, ms []member) member {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var ids = map[uint64]member{}
	var lead uint64
	for _, m := range ms {
		if !m.Running() {
			continue
		}
		st, err := c.Status(ctx, m.ClientURL)
		if err != nil {
			t.Fatalf("status of %s: %v", m.Name, err)
		}
		ids[st.Header.MemberId] = m
		lead = st.Leader
	}
	if l, ok := ids[lead]; ok {
		return l
	}
	t.Fatalf("leader %x is none of the running members", lead)
	return member{}
}

func etcdctl(t *testing.T, endpoint string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, os.Getenv(envEtcdctl), append([]string{"--endpoints", endpoint}, args...)...).CombinedOutput()
	return string(out), err
}

// TestConsoleInTheBrowser goes through every page of the console, served
// by a follower of a three-member cluster, in order: the cluster, the
// charts, a put, a watch, operations, and last the leader killed.
func TestConsoleInTheBrowser(t *testing.T) {
	ms := startCluster(t, nil, "--enable-console")
	c := client(t, ms)
	leader := leaderOf(t, c, ms)
	var serving member // a follower serves the page, so it outlives the leader
	for _, m := range ms {
		if m.Name != leader.Name {
			serving = m
			break
		}
	}
	p := &page{t: t, ctx: browser(t), base: serving.ClientURL + "/console/", dir: screenshots(t)}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	t.Run("cluster", func(t *testing.T) {
		p.t = t
		p.open("cluster")
		p.wait("three reachable members", `document.querySelectorAll('#members tbody tr').length === 3 &&
			[...document.querySelectorAll('#members tbody tr')].every(r => r.children[3].textContent === "yes")`, 20*time.Second)
		p.wait("the leader", `document.querySelector("#leader-name").dataset.leader === `+js(leader.Name), 20*time.Second)
		if got := p.eval(`[...document.querySelectorAll('#members tbody tr')].filter(r => r.dataset.role === "leader").map(r => r.dataset.name).join(",")`); got != leader.Name {
			t.Errorf("leader rows %q, want %q", got, leader.Name)
		}
		if got := p.eval(`[...document.querySelectorAll('#members tbody tr')].map(r => r.dataset.name + ":" + r.dataset.role).join(",")`); strings.Count(got, ":follower") != 2 {
			t.Errorf("members %q, want two followers", got)
		}
		if got := p.eval(`String(document.querySelectorAll("#topology circle").length)`); got != "3" {
			t.Errorf("the picture has %s members, want 3", got)
		}
		p.shot("cluster")
	})

	t.Run("charts", func(t *testing.T) {
		p.t = t
		p.open("charts")
		p.wait("six charts drawn", `document.querySelectorAll("#charts .uplot").length === 6`, 20*time.Second)
		// The server keeps samples from its start: the page soon has several.
		p.wait("three samples", `Number(document.querySelector("#charts").dataset.points) >= 3`, 20*time.Second)
		p.shot("charts")
	})

	t.Run("metrics URL", func(t *testing.T) {
		p.t = t
		// The console beside /metrics: the cluster and the charts, and no
		// keys (the gateway is not served there).
		mp := &page{t: t, ctx: p.ctx, base: serving.MetricsURL + "/console/", dir: p.dir}
		mp.open("cluster")
		mp.wait("three reachable members", `document.querySelectorAll('#members tbody tr').length === 3 &&
			[...document.querySelectorAll('#members tbody tr')].every(r => r.children[3].textContent === "yes")`, 20*time.Second)
		mp.wait("the leader", `document.querySelector("#leader-name").dataset.leader === `+js(leader.Name), 20*time.Second)
		mp.open("keys")
		if !mp.evalBool(`document.querySelector(".needs-gateway").hidden && !document.querySelector(".no-gateway").hidden`) {
			t.Errorf("the metrics URL's console offers keys")
		}
		mp.shot("keys-on-metrics-url")
	})

	t.Run("put", func(t *testing.T) {
		p.t = t
		p.open("keys")
		p.do("fill the put form", chromedp.SetValue("#put-key", "/console/greeting"), chromedp.SetValue("#put-value", `{"hello":"from the browser"}`), chromedp.Click("#put-submit"))
		p.confirm("Put /console/greeting")
		p.wait("the put's message", `document.querySelector("#message").textContent.startsWith("put /console/greeting, revision")`, 10*time.Second)
		resp, err := c.Get(ctx, "/console/greeting")
		if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != `{"hello":"from the browser"}` {
			t.Fatalf("clientv3 get after the console's put: %v %v", resp, err)
		}
		// Browse to it and see its value pretty-printed as JSON.
		p.do("list the prefix", chromedp.SetValue("#keys-prefix", "/console/"), chromedp.Click(`#keys-form button[type=submit]`))
		p.wait("the key listed", `!!document.querySelector('#keys-table tr[data-key="/console/greeting"]')`, 10*time.Second)
		p.do("open the key", chromedp.Click(`#keys-table tr[data-key="/console/greeting"]`))
		p.wait("the value", `(document.querySelector("#key-value") || {}).textContent === '{"hello":"from the browser"}'`, 10*time.Second)
		p.do("JSON view", chromedp.Click(`//div[@id="key-detail"]//button[text()="JSON"]`))
		p.wait("the value pretty-printed", `document.querySelector("#key-value").textContent === '{\n  "hello": "from the browser"\n}'`, 10*time.Second)
		// A binary value in hex, its lease and TTL, and its history.
		lease, err := c.Grant(ctx, 600)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range []string{"v1", "v2", "\x00\xffbin"} {
			if _, err := c.Put(ctx, "/console/binary", v, clientv3.WithLease(lease.ID)); err != nil {
				t.Fatal(err)
			}
		}
		p.do("list again", chromedp.Click(`#keys-form button[type=submit]`))
		p.wait("the binary key listed", `!!document.querySelector('#keys-table tr[data-key="/console/binary"]')`, 10*time.Second)
		p.do("open the binary key", chromedp.Click(`#keys-table tr[data-key="/console/binary"]`))
		p.wait("the value in hex", `(document.querySelector("#key-value") || {}).textContent === "00 ff 62 69 6e"`, 10*time.Second)
		p.wait("the lease and its TTL", `/^`+fmt.Sprintf("%x", lease.ID)+` \(TTL \d+ s of 600 s\)$/.test(document.querySelector("#key-lease").textContent)`, 10*time.Second)
		p.wait("the history", `(() => { const li = [...document.querySelectorAll("#key-history li")].map(li => li.textContent);
			return li.length === 4 && /^rev \d+ \(v3\): 0x00ff62696e$/.test(li[0]) && /^rev \d+ \(v2\): v2$/.test(li[1]) &&
				/^rev \d+ \(v1\): v1$/.test(li[2]) && li[3] === "created at revision " + li[2].match(/^rev (\d+)/)[1]; })()`, 10*time.Second)
		p.shot("keys")
		// Paging: 50 keys a page.
		for i := 0; i < 60; i++ {
			if _, err := c.Put(ctx, fmt.Sprintf("/paged/%03d", i), "x"); err != nil {
				t.Fatal(err)
			}
		}
		rows := `[...document.querySelectorAll("#keys-table tbody tr")].map(r => r.dataset.key)`
		p.do("list /paged/", chromedp.SetValue("#keys-prefix", "/paged/"), chromedp.Click(`#keys-form button[type=submit]`))
		p.wait("the first page", `(r => r.length === 50 && r[0] === "/paged/000" && r[49] === "/paged/049")(`+rows+`) && document.querySelector("#keys-count").textContent === "60 keys with this prefix"`, 10*time.Second)
		p.do("next page", chromedp.Click("#keys-next"))
		p.wait("the second page", `(r => r.length === 10 && r[0] === "/paged/050" && r[9] === "/paged/059")(`+rows+`) && document.querySelector("#keys-next").disabled`, 10*time.Second)
		p.do("previous page", chromedp.Click("#keys-prev"))
		p.wait("the first page again", `(r => r.length === 50 && r[0] === "/paged/000")(`+rows+`) && document.querySelector("#keys-prev").disabled`, 10*time.Second)
	})

	t.Run("watch", func(t *testing.T) {
		p.t = t
		p.open("watch")
		p.do("watch a prefix", chromedp.SetValue("#watch-prefix", "/watched/"), chromedp.Click("#watch-start"))
		p.wait("the watch created", `document.querySelector("#watch-state").textContent.startsWith("watching")`, 10*time.Second)
		if out, err := etcdctl(t, ms[0].ClientURL, "put", "/watched/a", "first"); err != nil {
			t.Fatalf("etcdctl put: %v %s", err, out)
		}
		if out, err := etcdctl(t, ms[2].ClientURL, "put", "/watched/a", "second"); err != nil {
			t.Fatalf("etcdctl put: %v %s", err, out)
		}
		if out, err := etcdctl(t, ms[1].ClientURL, "put", "/elsewhere", "x"); err != nil {
			t.Fatalf("etcdctl put: %v %s", err, out)
		}
		p.wait("the two puts", `document.querySelectorAll('#watch-events tbody tr[data-key="/watched/a"]').length === 2`, 10*time.Second)
		// Newest first: the second put, with the first as its previous value.
		if got := p.eval(`[...document.querySelector('#watch-events tbody tr').children].slice(0, 4).map(td => td.textContent).join("|")`); got != "PUT|/watched/a|second|first" {
			t.Errorf("latest event %q, want PUT|/watched/a|second|first", got)
		}
		if out, err := etcdctl(t, ms[0].ClientURL, "del", "/watched/a"); err != nil {
			t.Fatalf("etcdctl del: %v %s", err, out)
		}
		p.wait("the delete", `document.querySelector('#watch-events tbody tr').classList.contains("ev-DELETE")`, 10*time.Second)
		if got := p.eval(`String(document.querySelectorAll('#watch-events tbody tr[data-key="/elsewhere"]').length)`); got != "0" {
			t.Errorf("a put outside the prefix was shown")
		}
		p.shot("watch")
		p.do("stop watching", chromedp.Click("#watch-stop"))
	})

	t.Run("operations", func(t *testing.T) {
		p.t = t
		p.open("ops")
		// A compaction to a future revision: the console shows etcdctl's error.
		out, err := etcdctl(t, serving.ClientURL, "compaction", "1000000")
		if err == nil {
			t.Fatalf("etcdctl compaction 1000000 succeeded: %s", out)
		}
		p.do("compact to a future revision", chromedp.SetValue("#compact-rev", "1000000"), chromedp.Click(`#op-compact button[type=submit]`))
		p.confirm("etcdctl compaction 1000000")
		p.wait("the error", `document.querySelector("#op-result").textContent.startsWith("compaction: ")`, 10*time.Second)
		shown := strings.TrimPrefix(p.eval(`document.querySelector("#op-result").textContent`), "compaction: ")
		if !strings.Contains(out, shown) || shown == "" {
			t.Errorf("console shows %q, etcdctl says %q", shown, out)
		}
		// A real compaction, seen by clientv3.
		put, err := c.Put(ctx, "/console/compacted", "1")
		if err != nil {
			t.Fatal(err)
		}
		rev := put.Header.Revision
		p.do("compact", chromedp.SetValue("#compact-rev", fmt.Sprint(rev)), chromedp.Click(`#op-compact button[type=submit]`))
		p.confirm(fmt.Sprintf("etcdctl compaction %d", rev))
		p.wait("the compaction", `document.querySelector("#op-result").textContent.startsWith("compaction: done")`, 10*time.Second)
		if _, err := c.Get(ctx, "/console/compacted", clientv3.WithRev(rev-1)); err == nil || !strings.Contains(err.Error(), "required revision has been compacted") {
			t.Errorf("get at revision %d after the console's compaction: %v, want compacted", rev-1, err)
		}
		// A key's history now stops at the compaction, saying so.
		p.open("keys")
		p.do("list /console/", chromedp.SetValue("#keys-prefix", "/console/"), chromedp.Click(`#keys-form button[type=submit]`))
		p.wait("the key listed", `!!document.querySelector('#keys-table tr[data-key="/console/binary"]')`, 10*time.Second)
		p.do("open it", chromedp.Click(`#keys-table tr[data-key="/console/binary"]`))
		p.wait("the history cut at the compaction", `(li => li.length === 2 && li[1] === "older revisions: etcdserver: mvcc: required revision has been compacted")([...document.querySelectorAll("#key-history li")].map(li => li.textContent))`, 10*time.Second)
		p.open("ops")
		// Defragment the leader, through the follower serving the page.
		p.do("pick the leader", chromedp.SetValue("#defrag-member", memberID(t, c, leader)), chromedp.Click(`#op-defrag button[type=submit]`))
		p.confirm("etcdctl defrag")
		p.wait("the defragmentation", `document.querySelector("#op-result").textContent.startsWith("defragment: done")`, 20*time.Second)
		p.shot("operations")
	})

	t.Run("snapshot", func(t *testing.T) {
		p.t = t
		p.open("ops")
		dir := t.TempDir()
		p.do("allow downloads", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.Call(ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
				Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir})
			return err
		}))
		p.do("download a snapshot", chromedp.SetValue("#snapshot-member", memberID(t, c, serving)), chromedp.Click(`#op-snapshot button[type=submit]`))
		p.wait("the snapshot", `document.querySelector("#op-result").textContent.startsWith("snapshot of ")`, 30*time.Second)
		result := p.eval(`document.querySelector("#op-result").textContent`)
		var n int
		if _, err := fmt.Sscanf(result[strings.Index(result, ": ")+2:], "%d bytes saved", &n); err != nil || !strings.HasSuffix(result, "SHA-256 verified") {
			t.Fatalf("snapshot result %q", result)
		}
		file := filepath.Join(dir, "snapshot-"+memberID(t, c, serving)+".db")
		var got []byte
		testutil.Eventually(t, 20*time.Second, "the downloaded file", func() (bool, string) {
			b, err := os.ReadFile(file)
			got = b
			return err == nil && len(b) == n, fmt.Sprintf("%d bytes, %v", len(b), err)
		})
		sum := sha256.Sum256(got[:len(got)-32])
		if !bytes.Equal(sum[:], got[len(got)-32:]) {
			t.Errorf("the downloaded snapshot's SHA-256 trailer does not match")
		}
		// What etcdctl snapshot save writes of the same member: a database
		// of the same size with its SHA-256 (not the same bytes: the member
		// commits its backend in between, which changes bbolt's meta pages).
		saved := filepath.Join(t.TempDir(), "etcdctl.db")
		if out, err := etcdctl(t, serving.ClientURL, "snapshot", "save", saved); err != nil {
			t.Fatalf("etcdctl snapshot save: %v %s", err, out)
		}
		want, err := os.ReadFile(saved)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Errorf("console snapshot %d bytes, etcdctl's %d", len(got), len(want))
		}
		p.shot("snapshot")
	})

	t.Run("members", func(t *testing.T) {
		p.t = t
		p.open("ops")
		peer := "http://127.0.0.1:1" // a learner that never starts
		p.do("add a learner", chromedp.SetValue("#member-add-urls", peer), chromedp.Click("#member-add-learner"), chromedp.Click(`#op-member-add button[type=submit]`))
		p.confirm("etcdctl member add --peer-urls=" + peer + " --learner")
		p.wait("the learner added", `document.querySelector("#op-result").textContent.startsWith("member add: done")`, 20*time.Second)
		learner := ""
		ml, err := c.MemberList(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ml.Members {
			if len(m.PeerURLs) == 1 && m.PeerURLs[0] == peer && m.IsLearner {
				learner = fmt.Sprintf("%x", m.ID)
			}
		}
		if learner == "" {
			t.Fatalf("no learner at %s in %v", peer, ml.Members)
		}
		// The cluster page shows it as a learner, not started (no name yet)
		// and unreachable, drawn dashed.
		p.open("cluster")
		p.wait("the learner's row", `(r => !!r && r.dataset.role === "learner" && r.children[0].textContent === "(unstarted)" && r.children[3].textContent === "no")(document.querySelector('#members tr[data-id="`+learner+`"]'))`, 20*time.Second)
		p.wait("four members drawn", `document.querySelectorAll("#topology circle").length === 4 && !!document.querySelector('#topology circle[stroke-dasharray="5 3"]')`, 10*time.Second)
		p.shot("cluster-with-learner")
		p.open("ops")
		// Promoting a learner that is not in sync: etcdctl's error.
		out, err := etcdctl(t, serving.ClientURL, "member", "promote", learner)
		if err == nil {
			t.Fatalf("etcdctl member promote %s succeeded: %s", learner, out)
		}
		p.wait("the learner listed", `!!document.querySelector('#ops-members tr[data-id="`+learner+`"] button.promote')`, 10*time.Second)
		p.do("promote", chromedp.Click(`#ops-members tr[data-id="`+learner+`"] button.promote`))
		p.confirm("etcdctl member promote " + learner)
		p.wait("the refusal", `document.querySelector("#op-result").textContent.startsWith("member promote: ") && !document.querySelector("#op-result").textContent.includes("done")`, 20*time.Second)
		shown := strings.TrimPrefix(p.eval(`document.querySelector("#op-result").textContent`), "member promote: ")
		if shown == "" || !strings.Contains(out, shown) {
			t.Errorf("console shows %q, etcdctl says %q", shown, out)
		}
		p.do("remove", chromedp.Click(`#ops-members tr[data-id="`+learner+`"] button.remove`))
		p.confirm("etcdctl member remove " + learner)
		p.wait("the learner removed", `document.querySelector("#op-result").textContent.startsWith("member remove: done")`, 20*time.Second)
		if ml, err = c.MemberList(ctx); err != nil || len(ml.Members) != 3 {
			t.Fatalf("members after the console's remove: %v %v", ml, err)
		}
		p.shot("members")
	})

	t.Run("leader killed", func(t *testing.T) {
		p.t = t
		p.open("cluster")
		p.wait("the leader", `document.querySelector("#leader-name").dataset.leader === `+js(leader.Name), 20*time.Second)
		if err := leader.Kill(); err != nil {
			t.Fatal(err)
		}
		p.wait("a new leader", `!["", `+js(leader.Name)+`].includes(document.querySelector("#leader-name").dataset.leader)`, 30*time.Second)
		p.wait("the old leader unreachable", `[...document.querySelectorAll('#members tbody tr')].some(r => r.dataset.name === `+js(leader.Name)+` && r.children[3].textContent === "no")`, 20*time.Second)
		shown := p.eval(`document.querySelector("#leader-name").dataset.leader`)
		if now := leaderOf(t, c, ms); now.Name != shown {
			t.Errorf("console shows leader %s, the members say %s", shown, now.Name)
		}
		p.shot("cluster-after-leader-killed")
	})

	t.Run("read-only", func(t *testing.T) {
		p.t = t
		// The killed member comes back with a read-only console.
		leader.Extra = append(leader.Extra, "--console-read-only")
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := leader.Restart(rctx); err != nil {
			t.Fatal(err)
		}
		if err := leader.WaitHealthy(rctx); err != nil {
			t.Fatal(err)
		}
		ro := &page{t: t, ctx: p.ctx, base: leader.ClientURL + "/console/", dir: p.dir}
		ro.open("keys")
		ro.wait("the read-only mode", `document.body.classList.contains("readonly")`, 10*time.Second)
		if got := ro.eval(`getComputedStyle(document.querySelector("#put-form")).display + "," + getComputedStyle(document.querySelector("#op-compact")).display`); got != "none,none" {
			t.Errorf("read-only console shows the write forms: %s", got)
		}
		// The console's own write endpoint refuses too.
		got := ro.eval(`(async () => { const r = await fetch("/console/api/defragment?member=` + memberID(t, c, leader) + `", {method: "POST"}); return r.status + " " + (await r.json()).message; })()`)
		if got != "403 the console is read-only (--console-read-only)" {
			t.Errorf("read-only defragment: %q", got)
		}
		ro.open("ops")
		ro.shot("operations-read-only")
	})

	t.Run("auth", func(t *testing.T) {
		p.t = t
		servingID := memberID(t, c, serving) // asked before auth is on
		for _, step := range []func() error{
			func() error { _, err := c.RoleAdd(ctx, "root"); return err },
			func() error { _, err := c.UserAdd(ctx, "root", "rootpw"); return err },
			func() error { _, err := c.UserGrantRole(ctx, "root", "root"); return err },
			func() error { _, err := c.RoleAdd(ctx, "reader"); return err },
			func() error {
				_, err := c.RoleGrantPermission(ctx, "reader", "/console/", clientv3.GetPrefixRangeEnd("/console/"), clientv3.PermissionType(clientv3.PermRead))
				return err
			},
			func() error { _, err := c.UserAdd(ctx, "reader", "readerpw"); return err },
			func() error { _, err := c.UserGrantRole(ctx, "reader", "reader"); return err },
			func() error { _, err := c.AuthEnable(ctx); return err },
		} {
			if err := step(); err != nil {
				t.Fatal(err)
			}
		}
		p.open("cluster")
		// Without a user, the members' own refusal, and the login form.
		p.wait("the members refusing", `document.querySelector("#message").textContent === "status: etcdserver: user name is empty"`, 20*time.Second)
		p.wait("the login form", `!document.querySelector("#login").hidden`, 10*time.Second)
		p.do("log in as reader", chromedp.SetValue("#login-name", "reader"), chromedp.SetValue("#login-password", "readerpw"), chromedp.Click(`#login button[type=submit]`))
		p.wait("logged in", `document.querySelector("#user-name").textContent === "user reader"`, 10*time.Second)
		p.wait("the members' status", `[...document.querySelectorAll('#members tbody tr')].filter(r => r.children[4].textContent !== "").length === 3`, 20*time.Second)
		p.shot("cluster-logged-in")
		// The user reads what its role grants, and no more.
		p.open("keys")
		p.do("list /console/", chromedp.SetValue("#keys-prefix", "/console/"), chromedp.Click(`#keys-form button[type=submit]`))
		p.wait("the key listed", `!!document.querySelector('#keys-table tr[data-key="/console/greeting"]')`, 10*time.Second)
		p.do("list /", chromedp.SetValue("#keys-prefix", "/"), chromedp.Click(`#keys-form button[type=submit]`))
		p.wait("the refusal", `document.querySelector("#message").textContent === "range: etcdserver: permission denied" && document.querySelectorAll("#keys-table tbody tr").length === 0`, 10*time.Second)
		// A put it may not make: the same error as etcdctl's.
		out, err := etcdctl(t, serving.ClientURL, "--user", "reader:readerpw", "put", "/console/greeting", "no")
		if err == nil || !strings.Contains(out, "etcdserver: permission denied") {
			t.Fatalf("etcdctl put as reader: %v %s", err, out)
		}
		p.do("put as reader", chromedp.SetValue("#put-key", "/console/greeting"), chromedp.SetValue("#put-value", "no"), chromedp.Click("#put-submit"))
		p.confirm("Put /console/greeting")
		p.wait("the refusal", `document.querySelector("#message").textContent === "put: etcdserver: permission denied"`, 10*time.Second)
		if !p.evalBool(`document.querySelector("#login").hidden`) {
			t.Errorf("a refusal of a logged-in user asks to log in again")
		}
		p.shot("keys-as-reader")
		// Defragmentation and snapshots need root, through the console's
		// own endpoints as through etcdctl.
		out, err = etcdctl(t, serving.ClientURL, "--user", "reader:readerpw", "defrag")
		if err == nil || !strings.Contains(out, "etcdserver: permission denied") {
			t.Fatalf("etcdctl defrag as reader: %v %s", err, out)
		}
		p.open("ops")
		p.do("defragment as reader", chromedp.SetValue("#defrag-member", servingID), chromedp.Click(`#op-defrag button[type=submit]`))
		p.confirm("etcdctl defrag")
		p.wait("the refusal", `document.querySelector("#op-result").textContent === "defragment: etcdserver: permission denied"`, 10*time.Second)
		p.do("snapshot as reader", chromedp.SetValue("#snapshot-member", servingID), chromedp.Click(`#op-snapshot button[type=submit]`))
		p.wait("the refusal", `document.querySelector("#op-result").textContent === "snapshot: etcdserver: permission denied"`, 10*time.Second)
		// And root may.
		p.do("log out", chromedp.Click("#logout"))
		p.do("log in as root", chromedp.Click("#login-open"), chromedp.SetValue("#login-name", "root"), chromedp.SetValue("#login-password", "rootpw"), chromedp.Click(`#login button[type=submit]`))
		p.wait("logged in", `document.querySelector("#user-name").textContent === "user root"`, 10*time.Second)
		p.do("defragment as root", chromedp.SetValue("#defrag-member", servingID), chromedp.Click(`#op-defrag button[type=submit]`))
		p.confirm("etcdctl defrag")
		p.wait("the defragmentation", `document.querySelector("#op-result").textContent.startsWith("defragment: done")`, 20*time.Second)
	})
}

func memberID(t *testing.T, c *clientv3.Client, m member) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := c.Status(ctx, m.ClientURL)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", st.Header.MemberId)
}

// Over TLS, the console is served over TLS, and asks the members over TLS.
func TestConsoleOverTLS(t *testing.T) {
	ms := startCluster(t, testcerts.NewCA(t), "--enable-console")
	c := client(t, ms)
	leader := leaderOf(t, c, ms)
	// The browser does not know the test's CA.
	bctx := browser(t, "ignore-certificate-errors")
	dir := screenshots(t)
	for _, base := range []string{ms[0].ClientURL, ms[1].MetricsURL} {
		if !strings.HasPrefix(base, "https://") {
			t.Fatalf("%s is not https", base)
		}
		p := &page{t: t, ctx: bctx, base: base + "/console/", dir: dir}
		p.open("cluster")
		p.wait("three reachable members", `document.querySelectorAll('#members tbody tr').length === 3 &&
			[...document.querySelectorAll('#members tbody tr')].every(r => r.children[3].textContent === "yes" && r.children[4].textContent !== "")`, 20*time.Second)
		p.wait("the leader", `document.querySelector("#leader-name").dataset.leader === `+js(leader.Name), 20*time.Second)
		if got := p.eval(`location.protocol`); got != "https:" {
			t.Errorf("page served over %s", got)
		}
	}
	p := &page{t: t, ctx: bctx, base: ms[2].ClientURL + "/console/", dir: dir}
	p.open("keys")
	p.do("put over TLS", chromedp.SetValue("#put-key", "/tls"), chromedp.SetValue("#put-value", "yes"), chromedp.Click("#put-submit"))
	p.confirm("Put /tls")
	p.wait("the put", `document.querySelector("#message").textContent.startsWith("put /tls, revision")`, 10*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if resp, err := c.Get(ctx, "/tls"); err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "yes" {
		t.Fatalf("get /tls: %v %v", resp, err)
	}
	p.open("cluster")
	p.wait("three members", `document.querySelectorAll('#members tbody tr').length === 3`, 20*time.Second)
	p.shot("cluster-tls")
}

// A NOSPACE alarm shown and disarmed from the console, as etcdctl alarm
// disarm does (it deactivates each raised alarm in turn).
func TestAlarmDisarm(t *testing.T) {
	ms := startCluster(t, nil, "--enable-console", "--quota-backend-bytes", "200000")
	c := client(t, ms)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	value := strings.Repeat("x", 8000)
	for i := 0; ; i++ {
		if _, err := c.Put(ctx, fmt.Sprintf("/fill/%d", i), value); err != nil {
			if !strings.Contains(err.Error(), "database space exceeded") {
				t.Fatal(err)
			}
			break
		}
		if i > 1000 {
			t.Fatal("no NOSPACE after 1000 puts")
		}
	}
	p := &page{t: t, ctx: browser(t), base: ms[0].ClientURL + "/console/", dir: screenshots(t)}
	p.open("cluster")
	p.wait("the alarm", `document.querySelector("#cluster-alarms").textContent.startsWith("NOSPACE on ")`, 20*time.Second)
	p.open("ops")
	p.wait("the alarm's row", `!!document.querySelector("#alarms button")`, 20*time.Second)
	p.shot("alarm")
	p.do("disarm", chromedp.Click("#alarms button"))
	p.confirm("etcdctl alarm disarm")
	p.wait("the disarm", `document.querySelector("#op-result").textContent.startsWith("alarm disarm: done")`, 20*time.Second)
	alarms, err := c.AlarmList(ctx)
	if err != nil || len(alarms.Alarms) != 0 {
		t.Fatalf("alarms after the console's disarm: %v %v", alarms, err)
	}
	p.wait("no alarm shown", `document.querySelector("#alarms").textContent === "no alarm raised"`, 20*time.Second)
}

// httpGet returns the status and body of GET url.
func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// Without --enable-console the binary serves no console, on the client
// URLs nor the metrics URLs; with it and --enable-grpc-gateway=false, the
// client URLs' console has no gateway (cluster and charts only).
func TestConsoleFlags(t *testing.T) {
	off := startCluster(t, nil)
	for _, u := range []string{off[0].ClientURL, off[0].MetricsURL} {
		for _, p := range []string{"/console/", "/console/api/status"} {
			if code, _ := httpGet(t, u+p); code != http.StatusNotFound {
				t.Errorf("without --enable-console: GET %s%s = %d, want 404", u, p, code)
			}
		}
	}
	noGateway := startCluster(t, nil, "--enable-console", "--enable-grpc-gateway=false")
	if code, body := httpGet(t, noGateway[0].ClientURL+"/console/api/config"); code != 200 || !strings.Contains(body, `"gateway":false`) {
		t.Errorf("--enable-grpc-gateway=false: config %d %s", code, body)
	}
	if code, body := httpGet(t, noGateway[0].ClientURL+"/console/"); code != 200 || !strings.Contains(body, "Cairn console") {
		t.Errorf("--enable-grpc-gateway=false: GET /console/ = %d", code)
	}
	if code, body := httpGet(t, noGateway[1].MetricsURL+"/console/api/config"); code != 200 || !strings.Contains(body, `"gateway":false`) {
		t.Errorf("metrics URL: config %d %s", code, body)
	}
}
