package transport

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// MemNetwork is an in-process network for tests. Members join with a
// Handler and get a Transport; delivery is asynchronous, through one
// goroutine per member that delivers inbound messages and reports in FIFO
// order, so messages on each link arrive in the order they were sent.
// Partitions (Isolate, Cut) drop messages; a dropped message is reported
// unreachable to its sender, and a dropped MsgSnap also reports
// SnapshotFailure. Faults apply to messages sent after the call; messages
// already queued are still delivered, like packets in flight.
//
// Messages are deep-copied on Send, so sender and receiver never share
// memory, as over a real wire. The zero value is not usable: call
// NewMemNetwork. MemNetwork is safe for concurrent use.
type MemNetwork struct {
	mu       sync.Mutex
	members  map[uint64]*memMember
	isolated map[uint64]bool
	cuts     map[memLink]bool
	// changed is when each member last joined or was isolated or healed,
	// and each link cut or restored: what ActiveSince reports.
	changed     map[uint64]time.Time
	linkChanged map[memLink]time.Time
}

type memLink struct{ from, to uint64 }

// NewMemNetwork returns an empty network.
func NewMemNetwork() *MemNetwork {
	return &MemNetwork{
		members:     make(map[uint64]*memMember),
		isolated:    make(map[uint64]bool),
		cuts:        make(map[memLink]bool),
		changed:     make(map[uint64]time.Time),
		linkChanged: make(map[memLink]time.Time),
	}
}

// Join adds member id, whose inbound messages and reports go to h, and
// returns its Transport. The Transport sends only to ids added with AddPeer
// (URLs are ignored) that have joined the network. Joining an id that is
// already a member replaces it: the old member leaves first.
func (n *MemNetwork) Join(id uint64, h Handler) Transport {
	n.Leave(id)
	ctx, cancel := context.WithCancel(context.Background())
	m := &memMember{
		net:    n,
		id:     id,
		h:      h,
		peers:  make(map[uint64]bool),
		ctx:    ctx,
		cancel: cancel,
		wake:   make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	n.mu.Lock()
	n.members[id] = m
	n.changed[id] = time.Now()
	n.mu.Unlock()
	go m.run()
	return m
}

// Leave removes member id from the network and waits for its delivery
// goroutine to exit. Messages queued for it are lost; a MsgSnap among them is
// reported as SnapshotFailure to its sender. Leave must not be called from
// inside the member's own Handler.
func (n *MemNetwork) Leave(id uint64) {
	n.mu.Lock()
	m := n.members[id]
	delete(n.members, id)
	n.mu.Unlock()
	if m != nil {
		m.stop()
	}
}

// Isolate drops every message sent from or to id until Heal(id).
func (n *MemNetwork) Isolate(id uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.isolated[id] = true
	n.changed[id] = time.Now()
}

// Heal undoes Isolate(id). Cuts made with Cut stay.
func (n *MemNetwork) Heal(id uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.isolated, id)
	n.changed[id] = time.Now()
}

// Cut drops messages from `from` to `to` (one way) until Restore(from, to).
func (n *MemNetwork) Cut(from, to uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cuts[memLink{from, to}] = true
	n.linkChanged[memLink{from, to}] = time.Now()
}

// Restore undoes Cut(from, to).
func (n *MemNetwork) Restore(from, to uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.cuts, memLink{from, to})
	n.linkChanged[memLink{from, to}] = time.Now()
}

// activeSince is when messages from -> to last started getting through;
// zero while they do not (to is not a member, or the link is cut).
func (n *MemNetwork) activeSince(from, to uint64) time.Time {
	n.mu.Lock()
	defer n.mu.Unlock()
	l := memLink{from, to}
	if n.members[to] == nil || n.isolated[from] || n.isolated[to] || n.cuts[l] {
		return time.Time{}
	}
	t := n.changed[from]
	for _, c := range []time.Time{n.changed[to], n.linkChanged[l]} {
		if c.After(t) {
			t = c
		}
	}
	return t
}

// route returns the member that should receive a message from -> to, or
// nil when the message is dropped.
func (n *MemNetwork) route(from, to uint64) *memMember {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.isolated[from] || n.isolated[to] || n.cuts[memLink{from, to}] {
		return nil
	}
	return n.members[to]
}

type memEventKind int

const (
	memProcess memEventKind = iota
	memUnreachable
	memSnapshot
	memRemoved // the receiver refused the sender as removed
)

// memEvent is one call to make on a member's Handler.
type memEvent struct {
	kind   memEventKind
	msg    *raftpb.Message     // memProcess
	sender *memMember          // memProcess: who sent msg
	peer   uint64              // memUnreachable, memSnapshot, memRemoved
	status raft.SnapshotStatus // memSnapshot
}

// memMember is one member of a MemNetwork and its Transport.
type memMember struct {
	net    *MemNetwork
	id     uint64
	h      Handler
	ctx    context.Context
	cancel context.CancelFunc
	wake   chan struct{} // capacity 1: events were queued
	done   chan struct{} // closed when run exits

	mu     sync.Mutex
	peers  map[uint64]bool
	queue  []memEvent
	closed bool
}

var _ Transport = (*memMember)(nil)

// Send implements Transport.
func (m *memMember) Send(msgs []*raftpb.Message) {
	for _, msg := range msgs {
		to := msg.GetTo()
		m.mu.Lock()
		closed, isPeer := m.closed, m.peers[to]
		m.mu.Unlock()
		if closed {
			return
		}
		var dst *memMember
		if isPeer {
			dst = m.net.route(m.id, to)
		}
		if dst == nil || !dst.enqueue(memEvent{kind: memProcess, msg: proto.Clone(msg).(*raftpb.Message), sender: m}) {
			m.reportDropped(msg)
		}
	}
}

// SendSnapshot implements Transport: the database is read into the
// message's data at once and the message travels as with Send.
func (m *memMember) SendSnapshot(msg *raftpb.Message, db SnapshotBody) {
	full, err := InlineSnapshot(msg, db)
	if err != nil {
		m.reportDropped(msg)
		return
	}
	m.Send([]*raftpb.Message{full})
}

// reportDropped queues the reports for a message that was not delivered.
func (m *memMember) reportDropped(msg *raftpb.Message) {
	to := msg.GetTo()
	m.enqueue(memEvent{kind: memUnreachable, peer: to})
	if msg.GetType() == raftpb.MsgSnap {
		m.enqueue(memEvent{kind: memSnapshot, peer: to, status: raft.SnapshotFailure})
	}
}

// AddPeer implements Transport. The URLs are ignored.
func (m *memMember) AddPeer(id uint64, _ []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.peers[id] = true
}

// ActiveSince is when messages to peer id last started getting through;
// zero when they do not (see transport.HTTP.ActiveSince).
func (m *memMember) ActiveSince(id uint64) time.Time {
	m.mu.Lock()
	peer := m.peers[id]
	m.mu.Unlock()
	if !peer {
		return time.Time{}
	}
	return m.net.activeSince(m.id, id)
}

// RemovePeer implements Transport.
func (m *memMember) RemovePeer(id uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.peers, id)
}

// UpdatePeer implements Transport. It changes nothing: the network routes
// by id.
func (m *memMember) UpdatePeer(uint64, []string) {}

// Close implements Transport: the member leaves the network.
func (m *memMember) Close() error {
	m.net.mu.Lock()
	if m.net.members[m.id] == m {
		delete(m.net.members, m.id)
	}
	m.net.mu.Unlock()
	m.stop()
	return nil
}

// enqueue appends ev to the member's queue. It returns false when the
// member has stopped.
func (m *memMember) enqueue(ev memEvent) bool {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return false
	}
	m.queue = append(m.queue, ev)
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
	return true
}

// stop ends the delivery goroutine and waits for it. Undelivered snapshots
// are reported as failures to their senders.
func (m *memMember) stop() {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		<-m.done
		return
	}
	m.closed = true
	m.mu.Unlock()
	m.cancel()
	<-m.done
	m.mu.Lock()
	lost := m.queue
	m.queue = nil
	m.mu.Unlock()
	for _, ev := range lost {
		if ev.kind == memProcess && ev.msg.GetType() == raftpb.MsgSnap {
			ev.sender.enqueue(memEvent{kind: memSnapshot, peer: m.id, status: raft.SnapshotFailure})
		}
	}
}

// run delivers queued events to the Handler, in order, until stop.
func (m *memMember) run() {
	defer close(m.done)
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-m.wake:
		}
		for {
			m.mu.Lock()
			if m.closed || len(m.queue) == 0 {
				m.mu.Unlock()
				break
			}
			ev := m.queue[0]
			m.queue[0] = memEvent{}
			m.queue = m.queue[1:]
			m.mu.Unlock()
			m.deliver(ev)
		}
	}
}

func (m *memMember) deliver(ev memEvent) {
	switch ev.kind {
	case memProcess:
		err := m.h.Process(m.ctx, ev.msg)
		if errors.Is(err, ErrSenderRemoved) {
			ev.sender.enqueue(memEvent{kind: memRemoved, peer: m.id})
		}
		if ev.msg.GetType() == raftpb.MsgSnap {
			status := raft.SnapshotFinish
			if err != nil {
				status = raft.SnapshotFailure
			}
			ev.sender.enqueue(memEvent{kind: memSnapshot, peer: m.id, status: status})
		}
	case memUnreachable:
		m.h.ReportUnreachable(ev.peer)
	case memSnapshot:
		m.h.ReportSnapshot(ev.peer, ev.status)
	case memRemoved:
		m.h.ReportRemoved(ev.peer)
	}
}
