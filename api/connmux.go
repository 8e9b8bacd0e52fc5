package api

import (
	"bytes"
	"errors"
	"net"
	"sync"
	"syscall"
	"time"
)

// http2Preface is what every HTTP/2 client (so every gRPC client) sends
// first on a connection without TLS.
const http2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// sniffTimeout bounds how long a new connection may take to send the
// bytes that tell gRPC from HTTP/1.
const sniffTimeout = 10 * time.Second

// connMux splits one listener in two: connections that open with the
// HTTP/2 preface go to grpcL, all others to httpL.
type connMux struct {
	root  net.Listener
	grpcL *chanListener
	httpL *chanListener

	mu       sync.Mutex
	closed   bool
	sniffing map[net.Conn]struct{}
	wg       sync.WaitGroup
}

func newConnMux(l net.Listener) *connMux {
	return &connMux{
		root:     l,
		grpcL:    newChanListener(l.Addr()),
		httpL:    newChanListener(l.Addr()),
		sniffing: make(map[net.Conn]struct{}),
	}
}

// serve accepts until the root listener fails or close is called; it
// returns nil in the latter case.
func (m *connMux) serve() error {
	var delay time.Duration
	for {
		c, err := m.root.Accept()
		if err != nil {
			if m.isClosed() {
				return nil
			}
			if temporaryAcceptError(err) {
				// Transient (out of file descriptors, a connection aborted
				// before accept): back off as net/http does, never give up.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		if !m.track(c) {
			c.Close()
			return nil
		}
		go m.dispatch(c)
	}
}

func (m *connMux) isClosed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closed
}

func (m *connMux) track(c net.Conn) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false
	}
	m.sniffing[c] = struct{}{}
	m.wg.Add(1) // under mu, so close never waits before this Add
	return true
}

func (m *connMux) untrack(c net.Conn) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.sniffing, c)
}

// dispatch reads just enough of c to classify it and hands it on.
func (m *connMux) dispatch(c net.Conn) {
	defer m.wg.Done()
	defer m.untrack(c)
	head, isGRPC, err := sniff(c)
	if err != nil {
		c.Close()
		return
	}
	pc := &prefixConn{Conn: c, prefix: head}
	if isGRPC {
		m.grpcL.push(pc)
	} else {
		m.httpL.push(pc)
	}
}

// sniff reads from c until the bytes either diverge from the HTTP/2
// preface (HTTP/1) or complete it (gRPC), returning what it read.
func sniff(c net.Conn) ([]byte, bool, error) {
	if err := c.SetReadDeadline(time.Now().Add(sniffTimeout)); err != nil {
		return nil, false, err
	}
	buf := make([]byte, 0, len(http2Preface))
	for {
		n, err := c.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if !bytes.HasPrefix([]byte(http2Preface), buf) {
			return buf, false, c.SetReadDeadline(time.Time{})
		}
		if len(buf) == len(http2Preface) {
			return buf, true, c.SetReadDeadline(time.Time{})
		}
		if err != nil {
			return nil, false, err
		}
	}
}

// close stops accepting, drops connections still being classified and
// closes both child listeners. It does not touch handed-on connections.
func (m *connMux) close() error {
	m.mu.Lock()
	m.closed = true
	for c := range m.sniffing {
		c.Close()
	}
	m.mu.Unlock()
	err := m.root.Close()
	m.grpcL.Close()
	m.httpL.Close()
	m.wg.Wait()
	return err
}

// prefixConn replays the sniffed bytes before reading on.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// chanListener is a net.Listener fed by connMux.
type chanListener struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

// push hands c to Accept, or closes c if the listener is closed.
func (l *chanListener) push(c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }

// temporaryAcceptError tells whether an Accept error will likely pass:
// timeouts, and running out of file descriptors or buffers, which must not
// stop the server.
func temporaryAcceptError(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED, syscall.ECONNRESET} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
