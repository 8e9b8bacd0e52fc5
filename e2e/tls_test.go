package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/proc"
	"github.com/cairnkv/cairn/internal/testcerts"
	"github.com/cairnkv/cairn/internal/testutil"
)

// tlsCluster describes a cluster started by startTLSCluster.
type tlsCluster struct {
	*Cluster
	ca *testcerts.CA
	// certs are the members' certificates (client and peer side alike:
	// they are good for server and client authentication).
	certs []testcerts.Pair
	// user is a client certificate of the CA (CN "root").
	user testcerts.Pair
}

// tlsOptions select what startTLSCluster secures.
type tlsOptions struct {
	clientTLS, clientMTLS, peerTLS, peerMTLS bool
	// certFiles, when set, gives each member's certificate files
	// (rotation tests install new pairs there); otherwise fresh ones.
	certFiles func(i int) (cert, key string)
	// ca signs the members' certificates (default: a new CA); caFile,
	// when set, is the members' --trusted-ca-file instead of ca's.
	ca     *testcerts.CA
	caFile string
	extra  []string
}

// startTLSCluster starts an n-member cluster with the TLS opts asks for,
// retrying on port collisions, and waits until every member is healthy.
func startTLSCluster(t *testing.T, n int, opts tlsOptions) *tlsCluster {
	t.Helper()
	tc := &tlsCluster{ca: opts.ca}
	if tc.ca == nil {
		tc.ca = testcerts.NewCA(t)
	}
	caFile := opts.caFile
	if caFile == "" {
		caFile = tc.ca.CertFile
	}
	tc.user = tc.ca.Client(t, "root")
	for i := range n {
		p := tc.ca.Peer(t, fmt.Sprintf("m%d", i))
		if opts.certFiles != nil {
			cert, key := opts.certFiles(i)
			p.InstallAt(t, cert, key)
			p.CertFile, p.KeyFile = cert, key
		}
		tc.certs = append(tc.certs, p)
	}
	base := t.TempDir()
	var lastErr error
	for attempt := range 4 {
		c := newCluster(t, opts.extra...)
		urls := freeURLs(t, 2*n)
		var peers []proc.Peer
		for i := range n {
			clientURL, peerURL := urls[2*i], urls[2*i+1]
			if opts.clientTLS {
				clientURL = toHTTPS(clientURL)
			}
			if opts.peerTLS {
				peerURL = toHTTPS(peerURL)
			}
			dir := filepath.Join(base, fmt.Sprintf("try%d", attempt), fmt.Sprintf("m%d", i))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			m := c.newMember(t, fmt.Sprintf("m%d", i), dir, clientURL, peerURL)
			var flags []string
			if opts.clientTLS {
				flags = append(flags, "--cert-file", tc.certs[i].CertFile, "--key-file", tc.certs[i].KeyFile)
				m.Member.TLS = tc.clientConfig(t, &tc.user)
			}
			if opts.clientMTLS {
				flags = append(flags, "--client-cert-auth", "--trusted-ca-file", caFile)
			}
			if opts.peerTLS {
				flags = append(flags, "--peer-cert-file", tc.certs[i].CertFile, "--peer-key-file", tc.certs[i].KeyFile,
					"--peer-trusted-ca-file", tc.ca.CertFile)
			}
			if opts.peerMTLS {
				flags = append(flags, "--peer-client-cert-auth")
			}
			m.Extra = append(flags, m.Extra...)
			c.Members = append(c.Members, m)
			peers = append(peers, m.Peer())
		}
		err := c.startAll(t, peers)
		if err == nil {
			tc.Cluster = c
			return tc
		}
		lastErr = err
		c.killAll()
	}
	t.Fatalf("cluster did not start after retries: %v", lastErr)
	return nil
}

func toHTTPS(u string) string { return "https://" + strings.TrimPrefix(u, "http://") }

// clientConfig trusts the cluster's CA and presents cert, if any.
func (tc *tlsCluster) clientConfig(t testing.TB, cert *testcerts.Pair) *tls.Config {
	return caConfig(t, tc.ca, cert)
}

func caConfig(t testing.TB, ca *testcerts.CA, cert *testcerts.Pair) *tls.Config {
	t.Helper()
	data, err := os.ReadFile(ca.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(data)
	c := &tls.Config{RootCAs: pool}
	if cert != nil {
		c.Certificates = []tls.Certificate{cert.TLS(t)}
	}
	return c
}

// tlsClient is a clientv3 client of endpoints with TLS config tc.
func tlsClient(t testing.TB, tc *tls.Config, endpoints ...string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop(), TLS: tc})
	if err != nil {
		t.Fatalf("clientv3.New(%v): %v", endpoints, err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// httpsGet GETs url with tc; it returns the status and body, or the
// error.
func httpsGet(t testing.TB, tc *tls.Config, url string) (int, string, error) {
	t.Helper()
	if tc != nil {
		tc = tc.Clone() // net/http adds h2 to the NextProtos of the config it is given
	}
	tr := &http.Transport{TLSClientConfig: tc, DisableKeepAlives: true, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// TestTLSCompatClientMTLS: a member with https client URLs and
// --client-cert-auth serves clientv3, etcdctl (--cacert --cert --key), the
// JSON gateway, /health, /metrics and /version over TLS on its client
// port and on an https --listen-metrics-urls, and refuses clients without
// a certificate, with one of another CA, with an expired one, and
// plaintext. Passes against etcd 3.7.3 (which also logs "rejected
// connection").
func TestTLSCompatClientMTLS(t *testing.T) {
	t.Parallel()
	metrics := toHTTPS(freeURLs(t, 1)[0])
	tc := startTLSCluster(t, 1, tlsOptions{clientTLS: true, clientMTLS: true, extra: []string{"--listen-metrics-urls", metrics}})
	m := tc.Members[0]
	good := tc.clientConfig(t, &tc.user)

	cli := tlsClient(t, good, m.ClientURL)
	if _, err := cli.Put(ctx(t), "k", "v1"); err != nil {
		t.Fatalf("put over mTLS: %v", err)
	}
	ctl := func(args ...string) ctlResult {
		return tc.etcdctlAt(t, []string{m.ClientURL}, "", append([]string{"--cacert", tc.ca.CertFile, "--cert", tc.user.CertFile, "--key", tc.user.KeyFile}, args...)...)
	}
	if r := ctl("put", "k", "v2"); r.Code != 0 || strings.TrimSpace(r.Stdout) != "OK" {
		t.Fatalf("etcdctl put over mTLS: %+v", r)
	}
	if r := ctl("get", "k", "--print-value-only"); r.Code != 0 || strings.TrimSpace(r.Stdout) != "v2" {
		t.Fatalf("etcdctl get over mTLS: %+v", r)
	}
	if r := ctl("endpoint", "health"); r.Code != 0 || !strings.Contains(r.Stdout+r.Stderr, "is healthy") {
		t.Fatalf("etcdctl endpoint health over mTLS: %+v", r)
	}
	for _, url := range []string{m.ClientURL + "/health", m.ClientURL + "/metrics", m.ClientURL + "/version", metrics + "/health", metrics + "/metrics"} {
		code, body, err := httpsGet(t, good, url)
		if err != nil || code != http.StatusOK {
			t.Errorf("GET %s: %d %v %.200s", url, code, err, body)
		}
	}
	// The JSON gateway, over TLS.
	tr := &http.Transport{TLSClientConfig: good.Clone()}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: requestTimeout}).Post(m.ClientURL+"/v3/kv/range", "application/json", strings.NewReader(`{"key":"aw=="}`))
	if err != nil {
		t.Fatalf("gateway over TLS: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"value":"djI="`) {
		t.Fatalf("gateway range over TLS: %s %s", resp.Status, body)
	}

	// Refusals.
	other := testcerts.NewCA(t).Client(t, "root")
	expired := tc.ca.Client(t, "root", testcerts.Expired())
	for name, cfg := range map[string]*tls.Config{
		"no cert": tc.clientConfig(t, nil), "another CA's cert": tc.clientConfig(t, &other), "expired cert": tc.clientConfig(t, &expired),
	} {
		bad := tlsClient(t, cfg, m.ClientURL)
		c, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := bad.Get(c, "k")
		cancel()
		if err == nil {
			t.Errorf("%s: clientv3 get succeeded", name)
		}
		if code, _, err := httpsGet(t, cfg, m.ClientURL+"/health"); err == nil {
			t.Errorf("%s: GET /health answered %d", name, code)
		}
	}
	if r := tc.etcdctlAt(t, []string{m.ClientURL}, "", "--cacert", tc.ca.CertFile, "--dial-timeout", "2s", "--command-timeout", "2s", "get", "k"); r.Code == 0 {
		t.Errorf("etcdctl without a client certificate: %+v", r)
	}
	if r := tc.etcdctlAt(t, []string{m.ClientURL}, "", "--cacert", tc.ca.CertFile, "--cert", expired.CertFile, "--key", expired.KeyFile,
		"--dial-timeout", "2s", "--command-timeout", "2s", "get", "k"); r.Code == 0 {
		t.Errorf("etcdctl with an expired certificate: %+v", r)
	}
	if code, _, err := httpsGet(t, nil, strings.Replace(m.ClientURL, "https://", "http://", 1)+"/health"); err == nil && code == http.StatusOK {
		t.Error("plaintext /health on the TLS port answered 200")
	}
	// Each refusal is logged, once per remote host and reason.
	testutil.Eventually(t, requestTimeout, "the refusals in the log", func() (bool, string) {
		n := strings.Count(m.Log(), "rejected connection")
		return n >= 2, fmt.Sprint(n)
	})
	if n := strings.Count(m.Log(), `"level":"warn"`+`,`); n > 50 {
		t.Errorf("%d warnings logged: refusals are not rate limited", n)
	}
}

// TestTLSCompatCertRotation: certificate and key files replaced on disk
// are used for the next connection, without a restart; connections
// already open go on. Passes against etcd 3.7.3.
func TestTLSCompatCertRotation(t *testing.T) {
	t.Parallel()
	testRotation(t, false)
}

// TestTLSCARotation: a trusted CA file replaced on disk is used for the
// next connection too (etcd 3.7.3 reads it only at start).
func TestTLSCARotation(t *testing.T) {
	t.Parallel()
	testRotation(t, true)
}

func testRotation(t *testing.T, rotateCA bool) {
	dir := t.TempDir()
	ca1, ca2 := testcerts.NewCA(t), testcerts.NewCA(t)
	caFile := filepath.Join(dir, "ca.pem")
	writeFile(t, caFile, readFile(t, ca1.CertFile))
	certFile, keyFile := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	tc := startTLSCluster(t, 1, tlsOptions{clientTLS: true, clientMTLS: true, ca: ca1, caFile: caFile,
		certFiles: func(int) (string, string) { return certFile, keyFile }})
	m := tc.Members[0]
	addr := strings.TrimPrefix(m.ClientURL, "https://")
	user1 := tc.user
	cfg1 := caConfig(t, ca1, &user1)
	old := tlsClient(t, cfg1, m.ClientURL)
	if _, err := old.Put(ctx(t), "k", "before"); err != nil {
		t.Fatal(err)
	}
	if got, err := serverSerial(t, cfg1, addr); err != nil || got != tc.certs[0].Cert.SerialNumber.String() {
		t.Fatalf("server certificate serial %s (%v), want %s", got, err, tc.certs[0].Cert.SerialNumber)
	}

	// A renewed server certificate: the next handshake presents it.
	renewed := ca1.Peer(t, "m0")
	renewed.InstallAt(t, certFile, keyFile)
	if got, err := serverSerial(t, cfg1, addr); err != nil || got != renewed.Cert.SerialNumber.String() {
		t.Fatalf("after renewal: server certificate serial %s (%v), want %s", got, err, renewed.Cert.SerialNumber)
	}
	if _, err := tlsClient(t, cfg1, m.ClientURL).Put(ctx(t), "k", "renewed"); err != nil {
		t.Fatalf("new client after renewal: %v", err)
	}
	if _, err := old.Put(ctx(t), "k", "old connection"); err != nil {
		t.Fatalf("client connected before the renewal: %v", err)
	}

	if !rotateCA {
		return
	}
	// A new client CA: refused until the trusted CA file holds it, then
	// accepted; the old CA is refused once the file no longer holds it.
	user2 := ca2.Client(t, "root")
	cfg2 := caConfig(t, ca1, &user2) // the server's certificate is still ca1's
	if _, err := serverSerial(t, cfg2, addr); err == nil {
		// TLS 1.3 reports a refused client certificate on first read.
		if err := getOnce(t, cfg2, m.ClientURL); err == nil {
			t.Fatal("a client certificate of a CA not yet trusted was accepted")
		}
	}
	writeFile(t, caFile, append(readFile(t, ca1.CertFile), readFile(t, ca2.CertFile)...))
	if err := getOnce(t, cfg2, m.ClientURL); err != nil {
		t.Fatalf("a client certificate of the newly trusted CA: %v", err)
	}
	writeFile(t, caFile, readFile(t, ca2.CertFile))
	if err := getOnce(t, cfg1, m.ClientURL); err == nil {
		t.Fatal("a client certificate of a CA no longer trusted was accepted")
	}
	if err := getOnce(t, cfg2, m.ClientURL); err != nil {
		t.Fatalf("a client certificate of the trusted CA: %v", err)
	}
}

// getOnce reads a key through a new client connection.
func getOnce(t testing.TB, cfg *tls.Config, endpoint string) error {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 3 * time.Second, Logger: zap.NewNop(), TLS: cfg})
	if err != nil {
		return err
	}
	defer cli.Close()
	c, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err = cli.Get(c, "k")
	return err
}

func readFile(t testing.TB, f string) []byte {
	t.Helper()
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writeFile replaces f atomically, as an operator's tooling would.
func writeFile(t testing.TB, f string, data []byte) {
	t.Helper()
	if err := os.WriteFile(f+".tmp", data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(f+".tmp", f); err != nil {
		t.Fatal(err)
	}
}

// serverSerial handshakes with addr and returns the serial number of the
// certificate the server presented.
func serverSerial(t testing.TB, cfg *tls.Config, addr string) (string, error) {
	t.Helper()
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: cfg}
	c, err := d.DialContext(context.Background(), "tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	return c.(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber.String(), nil
}

// useTLSClients makes the cluster's MemberClient (and so leaderOf and
// waitLeader) speak TLS with the user's certificate.
func (tc *tlsCluster) useTLSClients(t *testing.T) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if tc.clients == nil {
		tc.clients = map[*Member]*clientv3.Client{}
	}
	for _, m := range tc.Members {
		if tc.clients[m] == nil {
			cli, err := clientv3.New(clientv3.Config{Endpoints: []string{m.ClientURL}, DialTimeout: 5 * time.Second, Logger: zap.NewNop(),
				TLS: tc.clientConfig(t, &tc.user)})
			if err != nil {
				t.Fatal(err)
			}
			tc.clients[m] = cli
		}
	}
}

// TestTLSPeerMTLSClusterSurvivesLeaderKill: three members with mTLS on
// their client and peer ports elect a leader, replicate, forward lease
// keep-alives from a follower to the leader over the peer port, answer
// the hash check over the peer port, refuse a peer without a good
// certificate (logged once with its reason), survive the leader's kill,
// take back the killed member, let a fourth join as a learner through
// discovery over TLS, and promote it through a follower.
func TestTLSPeerMTLSClusterSurvivesLeaderKill(t *testing.T) {
	t.Parallel()
	tc := startTLSCluster(t, 3, tlsOptions{clientTLS: true, clientMTLS: true, peerTLS: true, peerMTLS: true})
	tc.useTLSClients(t)
	lead := tc.waitLeader(t, tc.Members, -1)
	follower := tc.Members[(lead+1)%3]
	cli := tc.MemberClient(t, tc.Members[lead])
	if _, err := cli.Put(ctx(t), "k", "v1"); err != nil {
		t.Fatal(err)
	}
	// A follower forwards keep-alives to the leader over the peer port,
	// with its peer certificate.
	fcli := tc.MemberClient(t, follower)
	lease, err := fcli.Grant(ctx(t), 30)
	if err != nil {
		t.Fatal(err)
	}
	if ka, err := fcli.KeepAliveOnce(ctx(t), lease.ID); err != nil || ka.TTL <= 0 {
		t.Fatalf("keep-alive through a follower: %v %v", ka, err)
	}
	if ttl, err := fcli.TimeToLive(ctx(t), lease.ID); err != nil || ttl.TTL <= 0 {
		t.Fatalf("time-to-live through a follower: %v %v", ttl, err)
	}

	// The peer port: the hash check answers a member's certificate, and
	// refuses one of another CA, none, and plaintext.
	peerAddr := strings.TrimPrefix(follower.PeerURL, "https://")
	member := tc.certs[lead]
	put, err := cli.Put(ctx(t), "k", "v1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Compact(ctx(t), put.Header.Revision); err != nil {
		t.Fatal(err)
	}
	code, body, err := httpsGet(t, tc.clientConfig(t, &member), fmt.Sprintf("%s/cairn/hashkv?rev=%d", follower.PeerURL, put.Header.Revision))
	if err != nil || code != http.StatusOK {
		t.Fatalf("hashkv over peer TLS: %d %v %s", code, err, body)
	}
	stranger := testcerts.NewCA(t).Peer(t, "m9")
	for name, cfg := range map[string]*tls.Config{"another CA's cert": tc.clientConfig(t, &stranger), "no cert": tc.clientConfig(t, nil)} {
		for range 3 {
			if code, _, err := httpsGet(t, cfg, follower.PeerURL+"/cairn/members"); err == nil {
				t.Fatalf("peer port with %s: answered %d", name, code)
			}
		}
	}
	if c, err := net.DialTimeout("tcp", peerAddr, time.Second); err == nil {
		_, _ = io.WriteString(c, "GET /cairn/members HTTP/1.1\r\nHost: x\r\n\r\n")
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, _ := io.ReadAll(c)
		c.Close()
		if strings.Contains(string(b), "200 OK") {
			t.Fatal("plaintext request on the peer TLS port answered 200")
		}
	}
	testutil.Eventually(t, requestTimeout, "the peer refusals in the log", func() (bool, string) {
		n := strings.Count(follower.Log(), "rejected connection")
		return n >= 2, fmt.Sprint(n)
	})
	// Three attempts of each kind: each reason warned once for this host.
	if n := strings.Count(follower.Log(), `"level":"warn","ts"`) - strings.Count(follower.Log(), `"msg":"serving /health false"`); n > 10 {
		t.Errorf("%d warnings in the follower's log: refusals are not logged once", n)
	}

	// A renewed peer certificate is served at the next handshake; the
	// streams made after the leader's kill below use it.
	fi := (lead + 1) % 3
	renewed := tc.ca.Peer(t, follower.Name)
	renewed.InstallAt(t, tc.certs[fi].CertFile, tc.certs[fi].KeyFile)
	if got, err := serverSerial(t, tc.clientConfig(t, &member), peerAddr); err != nil || got != renewed.Cert.SerialNumber.String() {
		t.Fatalf("peer port after renewal: serial %s (%v), want %s", got, err, renewed.Cert.SerialNumber)
	}

	// Kill the leader: the other two elect one and serve.
	tc.Members[lead].Kill(t)
	rest := []*Member{}
	for i, m := range tc.Members {
		if i != lead {
			rest = append(rest, m)
		}
	}
	newLead := tc.waitLeader(t, rest, lead)
	if _, err := tc.MemberClient(t, tc.Members[newLead]).Put(ctx(t), "k", "v2"); err != nil {
		t.Fatalf("put after the leader's kill: %v", err)
	}
	// The killed member comes back over peer TLS and catches up.
	old := tc.Members[lead]
	old.Restart(t)
	old.WaitReady(t)
	testutil.Eventually(t, readyTimeout, "the restarted member to catch up", func() (bool, string) {
		r, err := tc.MemberClient(t, old).Get(ctx(t), "k", clientv3.WithSerializable())
		if err != nil || len(r.Kvs) != 1 {
			return false, fmt.Sprint(err)
		}
		return string(r.Kvs[0].Value) == "v2", string(r.Kvs[0].Value)
	})

	// A fourth member joins: member add, then discovery of the cluster
	// over the peer port, with TLS.
	urls := freeURLs(t, 2)
	dir := t.TempDir()
	j := tc.newMember(t, "m3", dir, toHTTPS(urls[0]), toHTTPS(urls[1]))
	jc := tc.ca.Peer(t, "m3")
	j.Extra = append([]string{"--cert-file", jc.CertFile, "--key-file", jc.KeyFile, "--client-cert-auth", "--trusted-ca-file", tc.ca.CertFile,
		"--peer-cert-file", jc.CertFile, "--peer-key-file", jc.KeyFile, "--peer-trusted-ca-file", tc.ca.CertFile, "--peer-client-cert-auth"}, j.Extra...)
	j.Member.TLS = tc.clientConfig(t, &tc.user)
	// --strict-reconfig-check refuses the add until the restarted member
	// has been connected for a while.
	var joinID uint64
	testutil.Eventually(t, readyTimeout, "member add --learner", func() (bool, string) {
		r, err := tc.MemberClient(t, tc.Members[newLead]).MemberAddAsLearner(ctx(t), []string{j.PeerURL})
		if err == nil {
			joinID = r.Member.ID
		}
		return err == nil, fmt.Sprint(err)
	})
	var peers []proc.Peer
	for _, m := range append(slicesClone(tc.Members), j) {
		peers = append(peers, m.Peer())
	}
	j.join(t, proc.InitialCluster(peers...))
	jcli := tlsClient(t, tc.clientConfig(t, &tc.user), j.ClientURL)
	testutil.Eventually(t, readyTimeout, "the joined member to serve the data", func() (bool, string) {
		r, err := jcli.Get(ctx(t), "k", clientv3.WithSerializable())
		if err != nil || len(r.Kvs) != 1 {
			return false, fmt.Sprint(err)
		}
		return string(r.Kvs[0].Value) == "v2", string(r.Kvs[0].Value)
	})
	// Promote it through a follower, which forwards to the leader's
	// client URL over TLS.
	testutil.Eventually(t, readyTimeout, "promote through a follower", func() (bool, string) {
		for _, m := range tc.Members[:3] {
			st, err := tc.MemberClient(t, m).Status(ctx(t), m.ClientURL)
			if err != nil || st.Leader == st.Header.MemberId || st.Leader == 0 {
				continue
			}
			_, err = tc.MemberClient(t, m).MemberPromote(ctx(t), joinID)
			return err == nil, fmt.Sprintf("through %s: %v", m.Name, err)
		}
		return false, "no follower"
	})
	if race := j.DataRace(); race != "" {
		t.Errorf("joined member: %s", race)
	}
}

func slicesClone(ms []*Member) []*Member { return append([]*Member(nil), ms...) }
