package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/faultfs"
	"github.com/cairnkv/cairn/internal/proc"
	"github.com/cairnkv/cairn/node"
)

// member is one cairn member of the cluster under test. Its advertised
// peer URL is its proxy's, which the others dial.
type member struct {
	*proc.Member
	idx int
	// id is its member ID; a membership change gives the slot a new one.
	id atomic.Uint64
	// disk is the FUSE file system of its data dir with disk faults, nil
	// without.
	disk *faultfs.FS
}

// cluster is an n-member cairn cluster on loopback behind a peer Network.
type cluster struct {
	members []*member
	net     *Network
	proxies []*Proxy
	// tls is the run's certificates with -tls, nil without.
	tls *runTLS
}

// newCluster lays out n members of the binary bin under dir, with the
// extra flags and environment, and starts their proxies; the members
// themselves are started by startMember. With rt the members serve
// clients and peers over mutual TLS and the proxies speak TLS on both
// sides.
func newCluster(bin, dir string, n int, token string, env, extra []string, rt *runTLS) (*cluster, error) {
	c := &cluster{tls: rt}
	// The proxies listen first, so that their ports are not among the
	// free ones picked for the members.
	var proxyLns []net.Listener
	for i := 0; i < n; i++ {
		pl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("proxy listener: %w", err)
		}
		proxyLns = append(proxyLns, pl)
	}
	urls, err := proc.FreeURLs(2 * n)
	if err != nil {
		return nil, err
	}
	scheme := "http://"
	if rt != nil {
		scheme = "https://"
		for i := range urls {
			urls[i] = scheme + strings.TrimPrefix(urls[i], "http://")
		}
	}
	var peers []proc.Peer
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("m%d", i)
		mextra := extra
		if rt != nil {
			// The run's extra flags come last, so they override.
			mextra = append(rt.memberFlags(i), extra...)
		}
		m := &member{idx: i, Member: &proc.Member{
			Flags: proc.Flags{
				Name: name, DataDir: filepath.Join(dir, name+".data"),
				ClientURL: urls[2*i], PeerURL: urls[2*i+1], AdvertisePeerURL: scheme + proxyLns[i].Addr().String(),
				Token: token, Extra: mextra,
			},
			Bin: bin, LogPath: filepath.Join(dir, name+".log"), Env: env,
		}}
		m.id.Store(node.MemberID([]string{m.AdvertisePeerURL}, token))
		c.members = append(c.members, m)
		peers = append(peers, m.Peer())
	}
	for _, m := range c.members {
		m.InitialCluster = proc.InitialCluster(peers...)
	}
	c.net = NewNetwork(n, c.indexOf)
	c.net.tls = rt
	for i, m := range c.members {
		c.proxies = append(c.proxies, c.net.NewProxy(i, proxyLns[i], strings.TrimPrefix(m.PeerURL, scheme)))
	}
	return c, nil
}

// indexOf maps a member ID to its index, or -1.
func (c *cluster) indexOf(id uint64) int {
	for _, m := range c.members {
		if m.id.Load() == id {
			return m.idx
		}
	}
	return -1
}

// startTimeout bounds the start of a member, until it listens.
const startTimeout = 20 * time.Second

// startMember starts m (again) on its data dir and ports, and waits until
// it listens (see proc.Member.Restart).
func startMember(m *member) error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	return m.Restart(ctx)
}

// crashed reports members whose process ended by itself.
func (c *cluster) crashed() []string {
	var out []string
	for _, m := range c.members {
		if !m.Running() {
			out = append(out, m.Name)
		}
	}
	return out
}

// stop kills every member and closes the network.
func (c *cluster) stop() {
	for _, m := range c.members {
		_ = m.Kill()
	}
	for _, m := range c.members {
		if m.disk != nil {
			_ = m.disk.Close()
		}
	}
	for _, p := range c.proxies {
		_ = p.Close()
	}
	c.net.Close()
}

// client returns a clientv3 client of m alone, reconnecting fast after a
// restart.
func (m *member) client(rt *runTLS) (*clientv3.Client, error) { return m.clientAs(rt, "", "") }

// clientAs is client logged in as user (none when empty), over TLS with
// the run's client certificate when rt is set.
func (m *member) clientAs(rt *runTLS, user, password string) (*clientv3.Client, error) {
	var tc *tls.Config
	if rt != nil {
		tc = rt.clientConfig()
	}
	cli, err := clientv3.New(clientv3.Config{
		TLS:         tc,
		Username:    user,
		Password:    password,
		Endpoints:   []string{m.ClientURL},
		DialTimeout: 2 * time.Second,
		Logger:      zap.NewNop(),
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 500 * time.Millisecond},
			MinConnectTimeout: time.Second,
		})},
	})
	if err != nil {
		return nil, fmt.Errorf("client of %s: %w", m.Name, err)
	}
	return cli, nil
}

// leader asks every running member for its view of the leader and returns
// the index most of them name, or -1.
func (c *cluster) leader(ctx context.Context, clis []*clientv3.Client) int {
	votes := map[int]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, m := range c.members {
		if !m.Running() {
			continue
		}
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			defer cancel()
			st, err := clis[i].Status(cctx, m.ClientURL)
			if err != nil || st.Leader == 0 {
				return
			}
			mu.Lock()
			votes[c.indexOf(st.Leader)]++
			mu.Unlock()
		})
	}
	wg.Wait()
	best, bestVotes := -1, 0
	for idx, v := range votes {
		if idx >= 0 && (v > bestVotes || (v == bestVotes && idx < best)) {
			best, bestVotes = idx, v
		}
	}
	return best
}
