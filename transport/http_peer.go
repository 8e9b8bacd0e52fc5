package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
)

// errStreamEnded is what a stream's writer sees once the peer has ended
// the stream or it was aborted.
var errStreamEnded = errors.New("transport: stream ended")

// errURLsChanged ends a stream whose peer got new URLs.
var errURLsChanged = errors.New("transport: peer URLs changed")

// peer is the sending side towards one remote member.
type peer struct {
	t      *HTTP
	id     uint64
	lg     *zap.Logger
	queue  chan *raftpb.Message
	ctx    context.Context // canceled by stop
	cancel context.CancelFunc
	// updated (capacity 1) tells run that the URLs changed.
	updated chan struct{}
	done    chan struct{} // closed when run exits
	probed  chan struct{} // closed when probe exits
	m       peerMetrics
	// snaps counts snapshot sends in flight to this peer.
	snaps sync.WaitGroup
	// dropping is set once a full queue has been logged, and cleared when
	// a batch goes through, so a flood of drops logs once.
	dropping atomic.Bool

	mu   sync.Mutex
	urls []string
	pref int     // index in urls of the URL to try first
	cur  *stream // the open stream, if any
	// since is when cur opened; zero while there is none.
	since time.Time
}

func newPeer(t *HTTP, id uint64, urls []string) *peer {
	ctx, cancel := context.WithCancel(t.ctx)
	return &peer{
		t:       t,
		id:      id,
		lg:      t.lg.With(zap.String("remote-peer-id", idString(id))),
		queue:   make(chan *raftpb.Message, t.cfg.QueueSize),
		ctx:     ctx,
		cancel:  cancel,
		updated: make(chan struct{}, 1),
		done:    make(chan struct{}),
		probed:  make(chan struct{}),
		m:       t.m.forPeer(id),
		urls:    slices.Clone(urls),
	}
}

// enqueue queues m for the stream, or drops it and reports the peer
// unreachable if the queue is full. It never blocks.
func (p *peer) enqueue(m *raftpb.Message) {
	select {
	case p.queue <- m:
	default:
		p.m.sentFailures.Inc()
		p.t.appended(p.id, isApp(m), 0, false)
		if p.dropping.CompareAndSwap(false, true) {
			p.lg.Warn("dropping messages to peer: outbound queue full", zap.Int("queue-size", cap(p.queue)))
		}
		p.t.rep.unreachable(p.id)
	}
}

// setURLs replaces the peer's URLs; if they changed, the open stream is
// closed and run reconnects at once.
func (p *peer) setURLs(urls []string) {
	p.mu.Lock()
	if slices.Equal(p.urls, urls) {
		p.mu.Unlock()
		return
	}
	p.urls = slices.Clone(urls)
	p.pref = 0
	cur := p.cur
	p.mu.Unlock()
	p.lg.Info("updated peer URLs", zap.Strings("urls", urls))
	select {
	case p.updated <- struct{}{}:
	default:
	}
	if cur != nil {
		cur.abort()
	}
}

// orderedURLs returns the URLs to try, the preferred one first.
func (p *peer) orderedURLs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, 0, len(p.urls))
	out = append(out, p.urls[p.pref:]...)
	return append(out, p.urls[:p.pref]...)
}

// prefer makes u the URL tried first, if it is still one of the peer's.
func (p *peer) prefer(u string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if i := slices.Index(p.urls, u); i >= 0 {
		p.pref = i
	}
}

// stop ends run, probe and the peer's snapshot sends, and waits for them.
func (p *peer) stop() {
	p.cancel()
	p.abortStream()
	<-p.done
	<-p.probed
	p.snaps.Wait()
}

// abortStream closes the open stream, unblocking a write in progress. The
// caller has canceled p.ctx or changed the URLs, so run will not reuse it.
func (p *peer) abortStream() {
	p.mu.Lock()
	cur := p.cur
	p.mu.Unlock()
	if cur != nil {
		cur.abort()
	}
}

// run keeps a stream open to the peer and pumps the queue into it until
// stop.
func (p *peer) run() {
	defer close(p.done)
	var backoff time.Duration
	var lastErr string // last failure logged, to log each new one once
	for p.ctx.Err() == nil {
		s, err := p.connect()
		if err == nil {
			p.lg.Info("opened stream to peer", zap.String("url", s.url))
			p.m.active.Set(1)
			lastErr = ""
			backoff = 0
			err = p.pump(s)
			s.abort()
			p.mu.Lock()
			p.cur, p.since = nil, time.Time{}
			p.mu.Unlock()
			p.m.active.Set(0)
			if p.ctx.Err() == nil && !errors.Is(err, errURLsChanged) {
				p.m.disconnected.Inc()
			}
		}
		if p.ctx.Err() != nil {
			return
		}
		if errors.Is(err, errURLsChanged) {
			backoff = 0
			continue
		}
		if errors.Is(err, ErrRemoved) {
			if msg := err.Error(); msg != lastErr {
				p.lg.Error("the peer says this member was removed from the cluster", zap.Error(err))
			}
			p.t.rep.removed(p.id)
		}
		if msg := err.Error(); msg != lastErr {
			lastErr = msg
			if errors.Is(err, ErrClusterIDMismatch) || errors.Is(err, ErrMemberIDMismatch) {
				// A configuration error (e.g. a data dir of another
				// cluster), not a network one.
				p.lg.Error("stream to peer failed", zap.Error(err))
			} else {
				p.lg.Warn("stream to peer failed", zap.Error(err))
			}
		} else {
			p.lg.Debug("stream to peer failed", zap.Error(err))
		}
		backoff = min(max(2*backoff, minBackoff), maxBackoff)
		if !p.pause(backoff) {
			return
		}
	}
}

// pause waits d, dropping (and reporting) what is queued meanwhile. It
// returns early when the URLs change, and false once stopped.
func (p *peer) pause(d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return false
		case <-p.updated:
			return true
		case <-timer.C:
			return true
		case m := <-p.queue:
			n, apps := p.drain()
			p.m.sentFailures.Add(float64(1 + n))
			p.t.appended(p.id, isApp(m)+apps, 0, false)
			p.t.rep.unreachable(p.id)
		}
	}
}

// drain empties the queue without blocking and returns how many messages
// it dropped, and how many of them were appends.
func (p *peer) drain() (n, apps int) {
	for {
		select {
		case m := <-p.queue:
			n++
			apps += isApp(m)
		default:
			return n, apps
		}
	}
}

// connect opens a stream on the first of the peer's URLs that accepts it.
func (p *peer) connect() (*stream, error) {
	urls := p.orderedURLs()
	if len(urls) == 0 {
		return nil, errors.New("transport: peer has no URLs")
	}
	var errs []error
	for _, u := range urls {
		s, err := p.dial(u)
		if err == nil {
			p.prefer(u)
			return s, nil
		}
		if p.ctx.Err() != nil {
			return nil, p.ctx.Err()
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// stream is one open streaming POST to a peer.
type stream struct {
	url    string
	pw     *io.PipeWriter // frames written here become the request body
	pr     *io.PipeReader
	cancel context.CancelFunc
	done   chan struct{} // closed when the peer ended the response
}

// abort tears the stream down; a write in progress returns an error.
func (s *stream) abort() {
	s.cancel()
	s.pr.CloseWithError(errStreamEnded)
}

// streamMagic opens every stream body: it names the framing protocol, and
// makes the receiver read the body (sending 100 Continue) before it
// answers.
const streamMagic = "CRN\x01"

// streamBody is a stream's request body: the magic, then whatever is
// written to the pipe. Closing it (the HTTP client does when the request
// fails) makes writers to the pipe fail instead of blocking.
type streamBody struct {
	io.Reader
	pr *io.PipeReader
}

func (b streamBody) Close() error { return b.pr.CloseWithError(errStreamEnded) }

// dial opens a stream to u and records it as p.cur.
//
// The request carries "Expect: 100-continue", so a peer that refuses it
// (412, 503, ...) answers before any body is sent and the refusal reaches
// us cleanly instead of as a reset connection.
func (p *peer) dial(u string) (*stream, error) {
	ctx, cancel := context.WithCancel(p.ctx)
	pr, pw := io.Pipe()
	fail := func(err error) (*stream, error) {
		cancel()
		pr.CloseWithError(errStreamEnded)
		return nil, err
	}
	body := streamBody{Reader: io.MultiReader(strings.NewReader(streamMagic), pr), pr: pr}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(u, "/")+StreamPath, body)
	if err != nil {
		return fail(fmt.Errorf("transport: stream request to %s: %w", u, err))
	}
	p.t.setHeaders(req, p.id)
	req.Header.Set("Expect", "100-continue")
	// The peer answers as soon as it accepts the stream; a peer that
	// accepts connections but never answers must not hold us forever.
	// Closing the pipe also frees the HTTP client should it wait for the
	// body to end after the connection broke.
	timedOut := atomic.Bool{}
	timer := time.AfterFunc(p.t.handshakeTimeout(), func() {
		timedOut.Store(true)
		cancel()
		pr.CloseWithError(errStreamEnded)
	})
	resp, err := p.t.client.Do(req)
	timer.Stop()
	if err != nil {
		if timedOut.Load() {
			err = fmt.Errorf("no answer within %v: %w", p.t.handshakeTimeout(), err)
		}
		return fail(fmt.Errorf("transport: open stream to %s: %w", u, err))
	}
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		resp.Body.Close()
		return fail(fmt.Errorf("transport: open stream to %s: %w", u, rejection(resp, strings.TrimSpace(string(msg)))))
	}
	if timedOut.Load() {
		resp.Body.Close()
		return fail(fmt.Errorf("transport: open stream to %s: no answer within %v", u, p.t.handshakeTimeout()))
	}
	s := &stream{url: u, pw: pw, pr: pr, cancel: cancel, done: make(chan struct{})}
	p.t.wg.Go(func() {
		// The peer sends nothing back; the response ends when it drops
		// the stream.
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		pr.CloseWithError(errStreamEnded)
		close(s.done)
	})
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ctx.Err() != nil {
		s.abort()
		return nil, p.ctx.Err()
	}
	p.cur, p.since = s, time.Now()
	return s, nil
}

// pump writes queued messages to s, batching whatever is queued into one
// write, until the stream breaks, the URLs change or the peer is stopped.
func (p *peer) pump(s *stream) error {
	var buf []byte
	for {
		select {
		case <-p.ctx.Done():
			return p.ctx.Err()
		case <-p.updated:
			return errURLsChanged
		case <-s.done:
			return fmt.Errorf("transport: peer at %s ended the stream", s.url)
		case m := <-p.queue:
			buf = buf[:0]
			n, apps := 0, isApp(m)
			buf, n = p.appendFrame(buf, m, n)
		batch:
			for {
				select {
				case m := <-p.queue:
					buf, n = p.appendFrame(buf, m, n)
					apps += isApp(m)
				default:
					break batch
				}
			}
			if len(buf) == 0 {
				continue
			}
			start := time.Now()
			if _, err := s.pw.Write(buf); err != nil {
				p.m.sentFailures.Add(float64(n))
				p.t.appended(p.id, apps, 0, false)
				p.t.rep.unreachable(p.id)
				return fmt.Errorf("transport: write to stream at %s: %w", s.url, err)
			}
			p.t.appended(p.id, apps, time.Since(start), true)
			p.m.sentBytes.Add(float64(len(buf)))
			p.dropping.Store(false)
			if cap(buf) > 16<<20 {
				buf = nil
			}
		}
	}
}

// appendFrame appends m's frame to buf and counts it in n; a message that
// cannot be framed is logged, counted as a send failure and dropped.
func (p *peer) appendFrame(buf []byte, m *raftpb.Message, n int) ([]byte, int) {
	buf, err := appendFrame(buf, m)
	if err != nil {
		p.lg.Error("dropped message that cannot be sent", zap.Error(err))
		p.m.sentFailures.Inc()
		p.t.rep.unreachable(p.id)
		return buf, n
	}
	return buf, n + 1
}

// isApp counts m if it is an append (HTTPConfig.OnAppend).
func isApp(m *raftpb.Message) int {
	if m.GetType() == raftpb.MsgApp {
		return 1
	}
	return 0
}

// appended reports n appends to peer id to HTTPConfig.OnAppend.
func (t *HTTP) appended(id uint64, n int, d time.Duration, ok bool) {
	if n > 0 && t.cfg.OnAppend != nil {
		t.cfg.OnAppend(id, n, d, ok)
	}
}
