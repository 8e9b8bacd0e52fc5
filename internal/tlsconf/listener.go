package tlsconf

import (
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"time"

	"go.uber.org/zap"
)

// HandshakeTimeout bounds one TLS handshake of an accepted connection.
const HandshakeTimeout = 10 * time.Second

// Listener wraps l: each accepted connection is handshaken with
// ServerConfig on its own goroutine (a slow client holds up no other), and
// Accept returns only connections whose handshake succeeded, as
// *tls.Conn. A refused handshake is logged as a warning the first time for
// each remote host and reason ("rejected connection", as etcd says), at
// debug level afterwards.
func (s *Side) Listener(l net.Listener) net.Listener {
	tl := &listener{Listener: l, s: s, cfg: s.ServerConfig(), connc: make(chan net.Conn), donec: make(chan struct{}),
		pending: map[net.Conn]struct{}{}}
	go tl.acceptLoop()
	return tl
}

type listener struct {
	net.Listener
	s     *Side
	cfg   *tls.Config
	connc chan net.Conn
	donec chan struct{}
	err   error

	mu      sync.Mutex
	closed  bool
	pending map[net.Conn]struct{}
	wg      sync.WaitGroup
}

func (l *listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.connc:
		return c, nil
	case <-l.donec:
		return nil, l.err
	}
}

// Close closes the listener and the connections still handshaking; it is
// safe to call more than once (net/http's Shutdown and its caller both
// may), and only the first call reports the listener's error.
func (l *listener) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	for c := range l.pending {
		c.Close()
	}
	l.mu.Unlock()
	return l.Listener.Close()
}

func (l *listener) acceptLoop() {
	defer func() {
		l.Close()
		l.wg.Wait()
		close(l.donec)
	}()
	var delay time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay) // back off as net/http does
				continue
			}
			l.err = err
			return
		}
		delay = 0
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			c.Close()
			continue
		}
		l.pending[c] = struct{}{}
		l.wg.Add(1)
		l.mu.Unlock()
		go l.handshake(c)
	}
}

func (l *listener) handshake(c net.Conn) {
	defer l.wg.Done()
	tc := tls.Server(c, l.cfg)
	_ = tc.SetDeadline(time.Now().Add(HandshakeTimeout))
	err := tc.Handshake()
	l.mu.Lock()
	delete(l.pending, c)
	closed := l.closed
	l.mu.Unlock()
	if err != nil || closed {
		if err != nil {
			l.s.rejected(tc, err)
		}
		tc.Close()
		return
	}
	_ = tc.SetDeadline(time.Time{})
	select {
	case l.connc <- tc:
	case <-l.donec:
		tc.Close()
	}
}

// rejected logs a refused handshake, once per remote host and reason.
func (s *Side) rejected(tc *tls.Conn, err error) {
	host, _, _ := net.SplitHostPort(tc.RemoteAddr().String())
	reason := err.Error()
	fields := []zap.Field{zap.String("side", s.what), zap.String("remote-addr", tc.RemoteAddr().String()), zap.Error(err)}
	st := tc.ConnectionState()
	if len(st.PeerCertificates) > 0 {
		c := st.PeerCertificates[0]
		fields = append(fields, zap.String("cert-cn", c.Subject.CommonName), zap.Strings("cert-dns-names", c.DNSNames))
	}
	if s.once.first(host + "\x00" + reason) {
		s.lg.Warn("rejected connection: TLS handshake failed (logged once per remote host and reason)", fields...)
		return
	}
	s.lg.Debug("rejected connection: TLS handshake failed", fields...)
}
