// Package transport carries raft messages between Cairn members.
//
// node.Core hands outbound messages to a Transport and never waits on the
// network: Send queues and returns. What arrives from peers is handed to a
// Handler (server.Server), which feeds it to the core on its own goroutine.
//
// Two implementations live here: MemNetwork, an in-process network for
// tests with partitions and one-way cuts, and HTTP, the production transport
// between processes over the peer listener.
//
// Messages are protobuf-go values that must not be copied (they embed a
// protoimpl.MessageState, and `go vet` rejects copies), so both interfaces
// take *raftpb.Message, exactly as raft's Ready.Messages and RawNode.Step do.
package transport

import (
	"bytes"
	"context"
	"errors"
	"io"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Handler receives what arrives from peers. It is implemented by server.Server.
//
// A Transport may call the methods of Handler from several goroutines at
// once (HTTP calls Process from one goroutine per sending peer), so
// implementations must be safe for concurrent use. A Transport never calls a
// Handler method from inside Send, so a Handler may hand work to the
// goroutine that calls Send without deadlocking. Handler methods should not
// block indefinitely: Close waits for calls in progress to return.
type Handler interface {
	// Process delivers an inbound message. m is owned by the Handler. A
	// MsgSnap carries the whole snapshot payload in m.Snapshot.Data. For a
	// MsgSnap, a nil error tells the sender the snapshot arrived
	// (SnapshotFinish); an error reports SnapshotFailure to it.
	Process(ctx context.Context, m *raftpb.Message) error
	// ProcessSnapshot delivers an inbound MsgSnap whose database (the
	// snapshot's data) is streamed from db rather than held in
	// m.Snapshot.Data, so that a database of any size arrives in bounded
	// memory. The Handler reads db to its end (or fails), then answers as
	// Process does. HTTP calls it; MemNetwork delivers snapshots through
	// Process.
	ProcessSnapshot(ctx context.Context, m *raftpb.Message, db io.Reader) error
	// ReportUnreachable tells that a message to peer id could not be
	// delivered. Reports may be coalesced: one report can stand for many
	// dropped messages.
	ReportUnreachable(id uint64)
	// ReportSnapshot tells the outcome of sending a MsgSnap to peer id:
	// raft.SnapshotFinish once the peer accepted it, raft.SnapshotFailure
	// otherwise.
	ReportSnapshot(id uint64, status raft.SnapshotStatus)
	// ReportRemoved tells that peer id refused a message because this
	// member was removed from the cluster (ErrSenderRemoved at the peer).
	ReportRemoved(id uint64)
}

// SnapshotBody is the database a snapshot carries (mvcc.DBSnapshot): Size
// bytes that WriteTo writes, as many times as asked, until Close. An alias
// of an unnamed interface, like node.SnapshotBody, so that both name the
// same type.
type SnapshotBody = interface {
	Size() int64
	WriteTo(w io.Writer) (int64, error)
	Close() error
}

// ProcessInline is a ProcessSnapshot for Handlers that take snapshots
// whole: it reads db into m's snapshot data and calls h.Process.
func ProcessInline(ctx context.Context, h Handler, m *raftpb.Message, db io.Reader) error {
	data, err := io.ReadAll(db)
	if err != nil {
		return err
	}
	if m.Snapshot == nil {
		m.Snapshot = &raftpb.Snapshot{}
	}
	m.Snapshot.Data = data
	return h.Process(ctx, m)
}

// InlineSnapshot reads db into a copy of m's snapshot data and closes db:
// for transports that deliver snapshots whole (MemNetwork, tests).
func InlineSnapshot(m *raftpb.Message, db SnapshotBody) (*raftpb.Message, error) {
	defer func() { _ = db.Close() }()
	var buf bytes.Buffer
	if _, err := db.WriteTo(&buf); err != nil {
		return nil, err
	}
	cp := proto.Clone(m).(*raftpb.Message)
	if cp.Snapshot == nil {
		cp.Snapshot = &raftpb.Snapshot{}
	}
	cp.Snapshot.Data = buf.Bytes()
	return cp, nil
}

// ErrSenderRemoved is what a Handler's Process returns for a message from a
// member the cluster removed. The Transport tells the sender (HTTP answers
// 410 Gone, as etcd's peers do), whose Transport reports it to its own
// Handler with ReportRemoved.
var ErrSenderRemoved = errors.New("transport: the sending member was removed from the cluster")

// Transport sends raft messages to peers.
//
// Send never blocks on the network: a message that cannot be queued is
// dropped and reported unreachable (raft retransmits). Messages to one peer
// are delivered in the order they were sent, or not at all; MsgSnap travels
// on a path of its own and is not ordered with the rest. A message to an
// id that is not a peer (see AddPeer) is dropped and reported unreachable.
// All methods are safe for concurrent use.
type Transport interface {
	// Send queues msgs for delivery to their m.To peers. The Transport takes
	// ownership of the messages: the caller must not modify them (nor the
	// entries and snapshot they point to) afterwards.
	Send(msgs []*raftpb.Message)
	// SendSnapshot sends the MsgSnap m with db as its snapshot's data,
	// written out on the Transport's own goroutines (as often as it takes),
	// then closed. The outcome is reported with ReportSnapshot.
	SendSnapshot(m *raftpb.Message, db SnapshotBody)
	// AddPeer makes id a peer reachable at urls. Adding an existing peer
	// updates its URLs.
	AddPeer(id uint64, urls []string)
	// RemovePeer forgets peer id and stops everything sending to it.
	RemovePeer(id uint64)
	// UpdatePeer changes the URLs of peer id. Unknown ids are ignored.
	UpdatePeer(id uint64, urls []string)
	// Close stops the Transport. It returns once every goroutine the
	// Transport started has exited; after it, Send drops silently and no
	// Handler method is called. Close is idempotent.
	Close() error
}
