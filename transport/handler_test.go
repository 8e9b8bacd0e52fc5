package transport

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// waitLimit bounds how long a test waits for something that must happen.
// It is a liveness bound, not a speed assertion.
// waitLimit bounds every wait for an event. It is generous: under -race,
// with other packages' tests on the same two cores, moving the 20 MiB
// snapshot alone has taken over 20 s.
const waitLimit = 90 * time.Second

type snapReport struct {
	id     uint64
	status raft.SnapshotStatus
}

// recorder is a Handler that records everything it is given.
type recorder struct {
	mu          sync.Mutex
	changed     chan struct{} // closed and replaced on every change
	msgs        []*raftpb.Message
	unreachable []uint64
	snaps       []snapReport
	removedBy   []uint64 // peers that reported this member removed
	processErr  error    // returned by Process
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{})} }

func (r *recorder) notifyLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
}

func (r *recorder) ProcessSnapshot(ctx context.Context, m *raftpb.Message, db io.Reader) error {
	return ProcessInline(ctx, r, m, db)
}

func (r *recorder) Process(_ context.Context, m *raftpb.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, m)
	r.notifyLocked()
	return r.processErr
}

func (r *recorder) ReportUnreachable(id uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.unreachable = append(r.unreachable, id)
	r.notifyLocked()
}

func (r *recorder) ReportRemoved(id uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.removedBy = append(r.removedBy, id)
	r.notifyLocked()
}

func (r *recorder) ReportSnapshot(id uint64, status raft.SnapshotStatus) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.snaps = append(r.snaps, snapReport{id, status})
	r.notifyLocked()
}

// waitUntil waits until cond (called with r.mu held) holds, or fails the
// test after waitLimit describing what it waited for.
func (r *recorder) waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		ok := cond()
		ch := r.changed
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			r.mu.Lock()
			defer r.mu.Unlock()
			t.Fatalf("waited %v for %s; have %d messages, unreachable %v, snapshot reports %v",
				waitLimit, what, len(r.msgs), r.unreachable, r.snaps)
		}
	}
}

func (r *recorder) waitMsgs(t testing.TB, n int) []*raftpb.Message {
	t.Helper()
	r.waitUntil(t, fmt.Sprintf("%d messages", n), func() bool { return len(r.msgs) >= n })
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*raftpb.Message(nil), r.msgs...)
}

func (r *recorder) waitUnreachable(t testing.TB, id uint64) {
	t.Helper()
	r.waitUntil(t, fmt.Sprintf("ReportUnreachable(%d)", id), func() bool {
		for _, u := range r.unreachable {
			if u == id {
				return true
			}
		}
		return false
	})
}

func (r *recorder) waitSnap(t testing.TB, n int) []snapReport {
	t.Helper()
	r.waitUntil(t, fmt.Sprintf("%d snapshot reports", n), func() bool { return len(r.snaps) >= n })
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]snapReport(nil), r.snaps...)
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

// appMsg returns a MsgApp from -> to at index with one entry of payload
// bytes.
func appMsg(from, to, index uint64, payload int) *raftpb.Message {
	data := make([]byte, payload)
	for i := range data {
		data[i] = byte(index + uint64(i))
	}
	return &raftpb.Message{
		Type:  raftpb.MsgApp.Enum(),
		From:  proto.Uint64(from),
		To:    proto.Uint64(to),
		Term:  proto.Uint64(3),
		Index: proto.Uint64(index),
		Entries: []*raftpb.Entry{{
			Term:  proto.Uint64(3),
			Index: proto.Uint64(index + 1),
			Type:  raftpb.EntryNormal.Enum(),
			Data:  data,
		}},
	}
}

func snapMsg(from, to uint64, data []byte) *raftpb.Message {
	return &raftpb.Message{
		Type: raftpb.MsgSnap.Enum(),
		From: proto.Uint64(from),
		To:   proto.Uint64(to),
		Term: proto.Uint64(3),
		Snapshot: &raftpb.Snapshot{
			Data: data,
			Metadata: &raftpb.SnapshotMetadata{
				Index:     proto.Uint64(1000),
				Term:      proto.Uint64(3),
				ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}},
			},
		},
	}
}

// checkInOrder asserts that msgs are exactly MsgApps from `from` with
// indexes first, first+1, ..., first+len-1, each matching appMsg.
func checkInOrder(t testing.TB, msgs []*raftpb.Message, from, to, first uint64, payload int) {
	t.Helper()
	for i, m := range msgs {
		want := appMsg(from, to, first+uint64(i), payload)
		if !proto.Equal(m, want) {
			t.Fatalf("message %d: got %v, want %v", i, m, want)
		}
	}
}
