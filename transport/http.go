package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

// Paths served by HTTP.Handler. Mount the handler at PathPrefix+"/".
const (
	PathPrefix   = "/raft"
	StreamPath   = PathPrefix + "/stream"
	SnapshotPath = PathPrefix + "/snapshot"
)

// Headers every peer request carries. IDs are hexadecimal, as etcd prints
// them.
const (
	HeaderClusterID = "X-Cairn-Cluster-ID"
	HeaderFrom      = "X-Cairn-From"
	HeaderTo        = "X-Cairn-To"
	// HeaderReject names why a request was refused with 412:
	// "cluster-id" or "member-id".
	HeaderReject = "X-Cairn-Reject"
)

// Defaults for HTTPConfig.
const (
	DefaultDialTimeout = time.Second
	DefaultQueueSize   = 4096
)

// Errors a sender sees when a peer refuses its requests.
var (
	// ErrClusterIDMismatch: the peer belongs to another cluster (typically
	// a data dir of another cluster).
	ErrClusterIDMismatch = errors.New("transport: cluster ID mismatch")
	// ErrMemberIDMismatch: the URL reached a member with another ID.
	ErrMemberIDMismatch = errors.New("transport: member ID mismatch")
	// ErrRemoved: the peer answered 410 Gone, because the cluster removed
	// this member.
	ErrRemoved = errors.New("transport: this member was removed from the cluster")
)

const (
	// minBackoff and maxBackoff bound the wait between attempts to
	// (re)open a stream to a peer.
	minBackoff = 50 * time.Millisecond
	maxBackoff = time.Second
	// snapshotResponseTimeout bounds the wait for a peer's answer once a
	// snapshot has been fully written (not the transfer itself).
	snapshotResponseTimeout = time.Minute
	// maxSnapshotBytes bounds a received snapshot message.
	maxSnapshotBytes = 16 << 30
	// snapshotProgressBytes is how often snapshot progress is logged.
	snapshotProgressBytes = 4 << 20
)

// HTTPConfig configures an HTTP transport.
type HTTPConfig struct {
	// ID is the local member ID; ClusterID the cluster it belongs to.
	// Requests from another cluster, or meant for another member, are
	// refused with 412.
	ID, ClusterID uint64
	// Handler receives inbound messages and delivery reports. Required.
	Handler Handler
	// Logger defaults to zap.NewNop().
	Logger *zap.Logger
	// TLS is the client configuration for dialing https peer URLs; nil
	// means plain http.
	TLS *tls.Config
	// DialTLS, when set, dials https peer URLs instead of TLS: it can make
	// a fresh TLS configuration per connection, so renewed certificate,
	// key and CA files are used without a restart.
	DialTLS func(ctx context.Context, network, addr string) (net.Conn, error)
	// VerifyMember, when set, is asked in the background (at most every
	// few seconds per ID) about a sender the transport refused as
	// unknown: a member added while this one was down or behind is listed
	// by the cluster's other members, and then the transport adds it as a
	// peer with the URLs returned, so its next stream is accepted
	// (guard.go).
	VerifyMember func(ctx context.Context, id uint64) (urls []string, ok bool)
	// DialTimeout bounds connecting to a peer; default DefaultDialTimeout.
	DialTimeout time.Duration
	// QueueSize is the per-peer outbound queue in messages; default
	// DefaultQueueSize. A message that finds the queue full is dropped and
	// reported unreachable.
	QueueSize int
	// ProbeInterval is how often each peer's round-trip time is measured;
	// default DefaultProbeInterval.
	ProbeInterval time.Duration
	// OnAppend, when set, is told of the n appends (MsgApp) of each write
	// to a peer's stream: ok with how long the write took, or not ok when
	// the write failed or the appends were dropped (queue full). These
	// are the points etcd 3.5 counted its /v2/stats/leader follower
	// latencies and counts at (its stream encoder and pipeline).
	OnAppend func(to uint64, n int, d time.Duration, ok bool)
}

// validate checks the config and fills in defaults.
func (c *HTTPConfig) validate() error {
	if c.ID == 0 {
		return errors.New("transport: HTTPConfig.ID must not be 0")
	}
	if c.Handler == nil {
		return errors.New("transport: HTTPConfig.Handler is required")
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.QueueSize <= 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.ProbeInterval <= 0 {
		c.ProbeInterval = DefaultProbeInterval
	}
	return nil
}

// HTTP is the production Transport between Cairn processes.
//
// Each peer has a goroutine that drains a bounded queue into one long-lived
// streaming POST to StreamPath on the peer's URL: messages are marshalled
// as length-prefixed frames, and everything queued is written and flushed
// at once. A broken stream is reopened with capped exponential backoff
// (trying the peer's URLs in order, the last one that worked first); the
// messages that could not be written are reported unreachable. A MsgSnap is
// sent by its own POST to SnapshotPath, and its outcome reported with
// ReportSnapshot.
//
// Inbound requests are served by Handler(), which checks the sender's
// cluster and target member IDs and hands each message to
// HTTPConfig.Handler.Process.
type HTTP struct {
	cfg    HTTPConfig
	lg     *zap.Logger
	tr     *http.Transport
	client *http.Client
	mux    *http.ServeMux
	rep    *reporter
	m      *metrics

	// ctx is canceled by Close; every goroutine of the transport watches it.
	ctx    context.Context
	cancel context.CancelFunc
	// wg counts every goroutine the transport started and every inbound
	// request being served.
	wg sync.WaitGroup

	mu     sync.Mutex
	closed bool
	peers  map[uint64]*peer
	// gone are the senders the Handler refused as removed from the
	// cluster; their requests are answered 410 Gone.
	gone map[uint64]bool
	// warned holds what was logged once per peer (guard.go).
	warned warnOnce
	// checks are the VerifyMember calls made (guard.go).
	checks memberChecks
}

var _ Transport = (*HTTP)(nil)

// NewHTTP returns a transport with no peers. It panics if cfg.ID is 0 or
// cfg.Handler is nil: both are programming errors.
func NewHTTP(cfg HTTPConfig) *HTTP {
	if err := cfg.validate(); err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	dialer := &net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		DialContext:           dialer.DialContext,
		TLSClientConfig:       cfg.TLS,
		DialTLSContext:        cfg.DialTLS,
		TLSHandshakeTimeout:   cfg.DialTimeout + 4*time.Second,
		ExpectContinueTimeout: cfg.DialTimeout + 4*time.Second,
		ResponseHeaderTimeout: snapshotResponseTimeout,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		DisableCompression:    true,
	}
	t := &HTTP{
		cfg:    cfg,
		lg:     cfg.Logger.With(zap.String("local-member-id", idString(cfg.ID))),
		tr:     tr,
		client: &http.Client{Transport: tr},
		ctx:    ctx,
		cancel: cancel,
		peers:  make(map[uint64]*peer),
		m:      newMetrics(cfg.ID),
	}
	t.rep = newReporter(cfg.Handler)
	t.mux = http.NewServeMux()
	t.mux.HandleFunc(StreamPath, t.serveStream)
	t.mux.HandleFunc(SnapshotPath, t.serveSnapshot)
	t.mux.HandleFunc(ProbePath, t.serveProbe)
	t.wg.Go(func() { t.rep.run(ctx) })
	return t
}

// ActiveSince is when the stream to peer id opened; zero when there is
// none (etcd's rafthttp ActiveSince, which --strict-reconfig-check reads).
func (t *HTTP) ActiveSince(id uint64) time.Time {
	t.mu.Lock()
	p := t.peers[id]
	t.mu.Unlock()
	if p == nil {
		return time.Time{}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.since
}

// Handler returns the handler of inbound peer requests, to mount on the
// peer listener at PathPrefix+"/". Streams are long-lived: the server must
// not set ReadTimeout or WriteTimeout (ReadHeaderTimeout is fine). Close
// ends the requests it is serving.
func (t *HTTP) Handler() http.Handler { return t.mux }

// Send implements Transport.
func (t *HTTP) Send(msgs []*raftpb.Message) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	for _, m := range msgs {
		to := m.GetTo()
		p := t.peers[to]
		switch {
		case p == nil:
			t.lg.Debug("dropped message to unknown peer", zap.String("remote-peer-id", idString(to)), zap.Stringer("type", m.GetType()))
			t.rep.unreachable(to)
			if m.GetType() == raftpb.MsgSnap {
				t.rep.snapshot(to, raft.SnapshotFailure)
			}
		case m.GetType() == raftpb.MsgSnap:
			data := m.GetSnapshot().GetData()
			cp := proto.Clone(m).(*raftpb.Message)
			cp.Snapshot.Data = nil
			t.goSnapshot(cp, bytesBody(data))
		default:
			p.enqueue(m)
		}
	}
}

// AddPeer implements Transport. Adding the local ID is ignored.
func (t *HTTP) AddPeer(id uint64, urls []string) {
	t.mu.Lock()
	if t.closed || id == t.cfg.ID {
		t.mu.Unlock()
		return
	}
	if p := t.peers[id]; p != nil {
		t.mu.Unlock()
		p.setURLs(urls)
		return
	}
	t.m.addPeer(id)
	p := newPeer(t, id, urls)
	t.peers[id] = p
	t.wg.Go(p.run)
	t.wg.Go(p.probe)
	t.mu.Unlock()
	t.lg.Info("added peer", zap.String("remote-peer-id", idString(id)), zap.Strings("urls", urls))
}

// RemovePeer implements Transport. It returns once the peer's goroutines,
// including snapshots in flight to it, have exited.
func (t *HTTP) RemovePeer(id uint64) {
	t.mu.Lock()
	p := t.peers[id]
	delete(t.peers, id)
	t.mu.Unlock()
	if p == nil {
		return
	}
	p.stop()
	t.m.removePeer(id)
	t.lg.Info("removed peer", zap.String("remote-peer-id", idString(id)))
}

// UpdatePeer implements Transport. A stream open to the old URLs is closed
// and reopened on the new ones at once.
func (t *HTTP) UpdatePeer(id uint64, urls []string) {
	t.mu.Lock()
	p := t.peers[id]
	t.mu.Unlock()
	if p != nil {
		p.setURLs(urls)
	}
}

// Close implements Transport. It also ends the inbound requests being
// served by Handler(); later ones are answered 503.
func (t *HTTP) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		t.wg.Wait()
		return nil
	}
	t.closed = true
	peers := t.peers
	t.peers = nil
	t.mu.Unlock()

	t.cancel()
	for _, p := range peers {
		p.abortStream()
	}
	t.wg.Wait()
	t.tr.CloseIdleConnections()
	return nil
}

// handshakeTimeout bounds the wait for a peer to answer a new stream.
func (t *HTTP) handshakeTimeout() time.Duration { return t.cfg.DialTimeout + 4*time.Second }

// enter registers an inbound request; it returns false once closed.
func (t *HTTP) enter() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.wg.Add(1)
	return true
}

// setHeaders adds the identity headers to a request for peer to.
func (t *HTTP) setHeaders(req *http.Request, to uint64) {
	req.Header.Set(HeaderClusterID, idString(t.cfg.ClusterID))
	req.Header.Set(HeaderFrom, idString(t.cfg.ID))
	req.Header.Set(HeaderTo, idString(to))
	req.Header.Set("Content-Type", "application/octet-stream")
}

func idString(id uint64) string { return strconv.FormatUint(id, 16) }

// rejection turns a non-success response into an error, wrapping
// ErrClusterIDMismatch, ErrMemberIDMismatch or ErrRemoved when that is the
// reason.
func rejection(resp *http.Response, body string) error {
	err := fmt.Errorf("transport: peer answered %s: %s", resp.Status, body)
	switch resp.Header.Get(HeaderReject) {
	case "cluster-id":
		return fmt.Errorf("%w: %w", ErrClusterIDMismatch, err)
	case "member-id":
		return fmt.Errorf("%w: %w", ErrMemberIDMismatch, err)
	}
	if resp.StatusCode == http.StatusGone {
		return fmt.Errorf("%w: %w", ErrRemoved, err)
	}
	return err
}

// reporter calls the Handler's Report methods from its own goroutine, so
// that Send never calls into the Handler. Unreachable reports for a peer
// that already has one pending are coalesced.
type reporter struct {
	h    Handler
	wake chan struct{}

	mu      sync.Mutex
	queue   []report
	pending map[uint64]bool // peers with an unreachable report queued
}

type report struct {
	id          uint64
	unreachable bool // else a snapshot report with status
	removed     bool // the peer said this member was removed
	status      raft.SnapshotStatus
}

func newReporter(h Handler) *reporter {
	return &reporter{h: h, wake: make(chan struct{}, 1), pending: make(map[uint64]bool)}
}

func (r *reporter) unreachable(id uint64) {
	r.mu.Lock()
	if r.pending[id] {
		r.mu.Unlock()
		return
	}
	r.pending[id] = true
	r.queue = append(r.queue, report{id: id, unreachable: true})
	r.mu.Unlock()
	r.poke()
}

func (r *reporter) removed(id uint64) {
	r.mu.Lock()
	r.queue = append(r.queue, report{id: id, removed: true})
	r.mu.Unlock()
	r.poke()
}

func (r *reporter) snapshot(id uint64, status raft.SnapshotStatus) {
	r.mu.Lock()
	r.queue = append(r.queue, report{id: id, status: status})
	r.mu.Unlock()
	r.poke()
}

func (r *reporter) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// run delivers reports until ctx is done; reports still queued then are
// dropped.
func (r *reporter) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		}
		for ctx.Err() == nil {
			r.mu.Lock()
			if len(r.queue) == 0 {
				r.mu.Unlock()
				break
			}
			rp := r.queue[0]
			r.queue = r.queue[1:]
			if rp.unreachable {
				delete(r.pending, rp.id)
			}
			r.mu.Unlock()
			switch {
			case rp.removed:
				r.h.ReportRemoved(rp.id)
			case rp.unreachable:
				r.h.ReportUnreachable(rp.id)
			default:
				r.h.ReportSnapshot(rp.id, rp.status)
			}
		}
	}
}
