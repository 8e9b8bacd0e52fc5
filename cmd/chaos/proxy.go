package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// LinkMode is the state of one directed peer link.
type LinkMode int

const (
	// LinkUp forwards bytes (after the link's delay, if any).
	LinkUp LinkMode = iota
	// LinkBlackhole accepts the sender's connections and reads and drops
	// everything it writes, never answering: the sender sees silence, as
	// behind a firewall that drops packets. On heal those connections are
	// closed, so the sender opens fresh streams.
	LinkBlackhole
	// LinkRefuse closes the sender's connections as soon as they are seen.
	LinkRefuse
)

func (m LinkMode) String() string {
	switch m {
	case LinkUp:
		return "up"
	case LinkBlackhole:
		return "blackhole"
	case LinkRefuse:
		return "refuse"
	}
	return "LinkMode(" + strconv.Itoa(int(m)) + ")"
}

// fromHeader is the header of cairn's peer requests naming the sending
// member (transport.HeaderFrom; repeated here so the runner does not depend
// on the transport package's internals).
const fromHeader = "x-cairn-from"

// maxHeaderBytes bounds the request head the proxy reads to find the sender.
const maxHeaderBytes = 64 << 10

// Network is the peer network of a cluster: one TCP proxy in front of every
// member's peer listener. Members advertise the proxy's URL, so every raft
// message travels through it. A member dials one long-lived HTTP stream per
// peer, so the connections into the proxy of member `to` coming from member
// `from` carry exactly the messages of the directed link from→to; the proxy
// recognises the sender by the X-Cairn-From header of the stream's first
// request and applies that link's state to the whole connection.
//
// All methods are safe for concurrent use.
type Network struct {
	n    int
	idOf func(uint64) int // member ID → index, -1 if unknown
	// tls, when set, makes the proxies terminate the senders' TLS and
	// dial the members with TLS again (see runTLS).
	tls *runTLS

	mu     sync.Mutex
	links  [][]linkState
	conns  map[*pconn]struct{}
	closed bool
}

type linkState struct {
	mode  LinkMode
	delay time.Duration
}

// NewNetwork returns a network of n members whose links are all up. index
// maps a member ID found in X-Cairn-From to its index in [0, n), or -1.
func NewNetwork(n int, index func(uint64) int) *Network {
	links := make([][]linkState, n)
	for i := range links {
		links[i] = make([]linkState, n)
	}
	return &Network{n: n, idOf: index, links: links, conns: map[*pconn]struct{}{}}
}

// Set puts the directed link from→to into mode with the given delay (used
// in LinkUp only), acting on its open connections at once.
func (nw *Network) Set(from, to int, mode LinkMode, delay time.Duration) {
	nw.mu.Lock()
	old := nw.links[from][to]
	nw.links[from][to] = linkState{mode: mode, delay: delay}
	var affected []*pconn
	for c := range nw.conns {
		if c.from == from && c.to == to {
			affected = append(affected, c)
		}
	}
	nw.mu.Unlock()
	if old.mode == mode {
		return
	}
	for _, c := range affected {
		c.apply(mode)
	}
}

// HealAll puts every link back up with no delay.
func (nw *Network) HealAll() {
	for i := 0; i < nw.n; i++ {
		for j := 0; j < nw.n; j++ {
			nw.Set(i, j, LinkUp, 0)
		}
	}
}

// Link returns the mode and delay of from→to.
func (nw *Network) Link(from, to int) (LinkMode, time.Duration) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	l := nw.links[from][to]
	return l.mode, l.delay
}

func (nw *Network) delayOf(from, to int) time.Duration {
	if from < 0 {
		return 0
	}
	_, d := nw.Link(from, to)
	return d
}

// Close closes every proxied connection. Proxies are closed by their owners.
func (nw *Network) Close() {
	nw.mu.Lock()
	nw.closed = true
	var all []*pconn
	for c := range nw.conns {
		all = append(all, c)
	}
	nw.mu.Unlock()
	for _, c := range all {
		c.closeBoth()
	}
}

// Proxy listens in front of member `to`'s real peer address.
type Proxy struct {
	nw      *Network
	to      int
	ln      net.Listener
	backend string
	wg      sync.WaitGroup
}

// NewProxy starts a proxy for member to on ln, forwarding to backend
// (host:port of the member's --listen-peer-urls). It serves until Close.
func (nw *Network) NewProxy(to int, ln net.Listener, backend string) *Proxy {
	p := &Proxy{nw: nw, to: to, ln: ln, backend: backend}
	p.wg.Go(p.serve)
	return p
}

// Addr is the address members dial to reach member to.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Close stops accepting and waits for the accept loop; connections are
// closed by Network.Close.
func (p *Proxy) Close() error {
	err := p.ln.Close()
	p.wg.Wait()
	return err
}

func (p *Proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.handle(c)
	}
}

// pconn is one proxied connection, belonging to the link from→to.
type pconn struct {
	from, to int
	client   net.Conn

	mu         sync.Mutex
	backend    net.Conn // nil until dialed, and after a blackhole cut
	blackholed bool     // client bytes are dropped; closed on heal
	closed     bool
}

// apply moves the connection into mode.
func (c *pconn) apply(mode LinkMode) {
	switch mode {
	case LinkRefuse:
		c.closeBoth()
	case LinkBlackhole:
		c.mu.Lock()
		c.blackholed = true
		b := c.backend
		c.backend = nil
		c.mu.Unlock()
		if b != nil {
			_ = b.Close()
		}
	case LinkUp:
		c.mu.Lock()
		bh := c.blackholed
		c.mu.Unlock()
		if bh {
			c.closeBoth()
		}
	}
}

func (c *pconn) closeBoth() {
	c.mu.Lock()
	c.closed = true
	b := c.backend
	c.backend = nil
	c.mu.Unlock()
	_ = c.client.Close()
	if b != nil {
		_ = b.Close()
	}
}

func (p *Proxy) handle(client net.Conn) {
	if p.nw.tls != nil {
		client = tls.Server(client, p.nw.tls.proxyServer())
	}
	br := bufio.NewReaderSize(client, 4096)
	_ = client.SetReadDeadline(time.Now().Add(10 * time.Second))
	head, from, err := readHead(br)
	_ = client.SetReadDeadline(time.Time{})
	if err != nil {
		_ = client.Close()
		return
	}
	idx := p.nw.idOf(from)
	c := &pconn{from: idx, to: p.to, client: client}
	nw := p.nw
	nw.mu.Lock()
	if nw.closed {
		nw.mu.Unlock()
		_ = client.Close()
		return
	}
	mode := LinkUp
	if idx >= 0 {
		mode = nw.links[idx][p.to].mode
	}
	nw.conns[c] = struct{}{}
	nw.mu.Unlock()
	defer func() {
		nw.mu.Lock()
		delete(nw.conns, c)
		nw.mu.Unlock()
		c.closeBoth()
	}()
	switch mode {
	case LinkRefuse:
		return
	case LinkBlackhole:
		c.mu.Lock()
		c.blackholed = true
		c.mu.Unlock()
		_, _ = io.Copy(io.Discard, br)
		return
	}
	b, err := p.dial(idx)
	if err != nil {
		return // the member is down: the sender sees its stream end
	}
	c.mu.Lock()
	if c.closed || c.blackholed {
		bh := c.blackholed
		c.mu.Unlock()
		_ = b.Close()
		if bh {
			_, _ = io.Copy(io.Discard, br)
		}
		return
	}
	c.backend = b
	c.mu.Unlock()

	done := make(chan struct{})
	go func() {
		defer close(done)
		// Member to → sender: stream responses. A blackhole cut closes
		// the backend; the client side then stays open and silent.
		p.pump(c, b, c.client)
	}()
	p.pumpClient(c, br, head, b)
	<-done
}

// dial connects to the member, with TLS as sender from when the run has
// TLS.
func (p *Proxy) dial(from int) (net.Conn, error) {
	d := &net.Dialer{Timeout: 2 * time.Second}
	if p.nw.tls == nil {
		return d.Dial("tcp", p.backend)
	}
	return tls.DialWithDialer(d, "tcp", p.backend, p.nw.tls.proxyDial(from))
}

// pumpClient forwards the sender's bytes (starting with the request head
// already read) to the member, dropping them once the connection is
// blackholed.
func (p *Proxy) pumpClient(c *pconn, src io.Reader, head []byte, b net.Conn) {
	w := newDelayWriter(b, func() time.Duration { return p.nw.delayOf(c.from, c.to) })
	defer w.stop()
	if !w.write(head) {
		c.closeUnlessBlackholed()
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			c.mu.Lock()
			bh := c.blackholed
			c.mu.Unlock()
			if !bh && !w.write(buf[:n]) {
				c.closeUnlessBlackholed()
			}
		}
		if err != nil {
			c.closeBoth()
			return
		}
	}
}

// pump copies the member's answers to the sender.
func (p *Proxy) pump(c *pconn, src net.Conn, dst net.Conn) {
	w := newDelayWriter(dst, func() time.Duration { return p.nw.delayOf(c.from, c.to) })
	defer w.stop()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !w.write(buf[:n]) {
			c.closeBoth()
			return
		}
		if err != nil {
			c.closeUnlessBlackholed()
			return
		}
	}
}

// closeUnlessBlackholed ends the connection, unless a blackhole cut keeps
// its client side open (and silent) until heal.
func (c *pconn) closeUnlessBlackholed() {
	c.mu.Lock()
	bh := c.blackholed
	c.mu.Unlock()
	if !bh {
		c.closeBoth()
	}
}

// readHead reads an HTTP/1.x request head (through the blank line) and
// returns its bytes and the sender named by X-Cairn-From (0 if absent).
func readHead(br *bufio.Reader) ([]byte, uint64, error) {
	var head bytes.Buffer
	var from uint64
	for {
		line, err := br.ReadString('\n')
		head.WriteString(line)
		if err != nil {
			return nil, 0, fmt.Errorf("read request head: %w", err)
		}
		if head.Len() > maxHeaderBytes {
			return nil, 0, errors.New("request head too large")
		}
		t := strings.TrimRight(line, "\r\n")
		if t == "" {
			return head.Bytes(), from, nil
		}
		if k, v, ok := strings.Cut(t, ":"); ok && strings.EqualFold(strings.TrimSpace(k), fromHeader) {
			id, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err == nil {
				from = id
			}
		}
	}
}

// delayWriter writes chunks to w, each no earlier than its arrival plus
// the delay in force when it arrived, preserving order.
type delayWriter struct {
	w     io.Writer
	delay func() time.Duration
	ch    chan chunk
	errc  chan struct{} // closed when a write failed
	done  chan struct{}
}

type chunk struct {
	b   []byte
	due time.Time
}

func newDelayWriter(w io.Writer, delay func() time.Duration) *delayWriter {
	d := &delayWriter{w: w, delay: delay, ch: make(chan chunk, 1024), errc: make(chan struct{}), done: make(chan struct{})}
	go d.run()
	return d
}

func (d *delayWriter) run() {
	defer close(d.done)
	for c := range d.ch {
		if wait := time.Until(c.due); wait > 0 {
			time.Sleep(wait)
		}
		if _, err := d.w.Write(c.b); err != nil {
			close(d.errc)
			for range d.ch { // drain so writers never block
			}
			return
		}
	}
}

// write queues b (copied); false means an earlier write failed.
func (d *delayWriter) write(b []byte) bool {
	select {
	case <-d.errc:
		return false
	default:
	}
	select {
	case d.ch <- chunk{b: bytes.Clone(b), due: time.Now().Add(d.delay())}:
		return true
	case <-d.errc:
		return false
	}
}

func (d *delayWriter) stop() {
	close(d.ch)
	<-d.done
}
