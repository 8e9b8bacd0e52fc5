package transport

import (
	"bytes"
	"errors"
	"testing"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// memCluster joins ids to a new MemNetwork, each peer of all the others.
func memCluster(t *testing.T, ids ...uint64) (*MemNetwork, map[uint64]Transport, map[uint64]*recorder) {
	t.Helper()
	n := NewMemNetwork()
	trs := make(map[uint64]Transport)
	recs := make(map[uint64]*recorder)
	for _, id := range ids {
		recs[id] = newRecorder()
		trs[id] = n.Join(id, recs[id])
	}
	for _, id := range ids {
		for _, peer := range ids {
			if peer != id {
				trs[id].AddPeer(peer, nil)
			}
		}
	}
	t.Cleanup(func() {
		for _, tr := range trs {
			tr.Close()
		}
	})
	return n, trs, recs
}

func TestMemDeliversInOrderPerLink(t *testing.T) {
	_, trs, recs := memCluster(t, 1, 2, 3)
	const n = 500
	for i := uint64(0); i < n; i++ {
		trs[1].Send([]*raftpb.Message{appMsg(1, 2, i, 8)})
		trs[3].Send([]*raftpb.Message{appMsg(3, 2, 1000+i, 8)})
	}
	got := recs[2].waitMsgs(t, 2*n)
	var from1, from3 []*raftpb.Message
	for _, m := range got {
		switch m.GetFrom() {
		case 1:
			from1 = append(from1, m)
		case 3:
			from3 = append(from3, m)
		default:
			t.Fatalf("message from unexpected member %d", m.GetFrom())
		}
	}
	if len(from1) != n || len(from3) != n {
		t.Fatalf("got %d from 1 and %d from 3, want %d each", len(from1), len(from3), n)
	}
	checkInOrder(t, from1, 1, 2, 0, 8)
	checkInOrder(t, from3, 3, 2, 1000, 8)
	if c := recs[1].count() + recs[3].count(); c != 0 {
		t.Fatalf("senders received %d messages, want 0", c)
	}
}

func TestMemSendCopiesMessages(t *testing.T) {
	_, trs, recs := memCluster(t, 1, 2)
	m := appMsg(1, 2, 7, 4)
	trs[1].Send([]*raftpb.Message{m})
	got := recs[2].waitMsgs(t, 1)
	if got[0] == m || &got[0].Entries[0].Data[0] == &m.Entries[0].Data[0] {
		t.Fatalf("receiver shares memory with the sender's message")
	}
	checkInOrder(t, got, 1, 2, 7, 4)
}

func TestMemIsolateDropsBothWaysUntilHeal(t *testing.T) {
	n, trs, recs := memCluster(t, 1, 2, 3)
	n.Isolate(2)
	trs[1].Send([]*raftpb.Message{appMsg(1, 2, 1, 8)})
	trs[2].Send([]*raftpb.Message{appMsg(2, 3, 2, 8)})
	recs[1].waitUnreachable(t, 2)
	recs[2].waitUnreachable(t, 3)
	// 1 and 3 still talk to each other.
	trs[1].Send([]*raftpb.Message{appMsg(1, 3, 3, 8)})
	checkInOrder(t, recs[3].waitMsgs(t, 1), 1, 3, 3, 8)

	n.Heal(2)
	trs[1].Send([]*raftpb.Message{appMsg(1, 2, 4, 8)})
	trs[2].Send([]*raftpb.Message{appMsg(2, 3, 5, 8)})
	checkInOrder(t, recs[2].waitMsgs(t, 1), 1, 2, 4, 8)
	got3 := recs[3].waitMsgs(t, 2)
	checkInOrder(t, got3[1:], 2, 3, 5, 8)
	if c := recs[2].count(); c != 1 {
		t.Fatalf("isolated member received %d messages, want only the one sent after Heal", c)
	}
}

func TestMemCutIsOneWay(t *testing.T) {
	n, trs, recs := memCluster(t, 1, 2)
	n.Cut(1, 2)
	trs[1].Send([]*raftpb.Message{appMsg(1, 2, 1, 8)})
	trs[2].Send([]*raftpb.Message{appMsg(2, 1, 2, 8)})
	checkInOrder(t, recs[1].waitMsgs(t, 1), 2, 1, 2, 8)
	recs[1].waitUnreachable(t, 2)

	n.Restore(1, 2)
	trs[1].Send([]*raftpb.Message{appMsg(1, 2, 3, 8)})
	checkInOrder(t, recs[2].waitMsgs(t, 1), 1, 2, 3, 8)
	recs[2].mu.Lock()
	defer recs[2].mu.Unlock()
	if len(recs[2].unreachable) != 0 {
		t.Fatalf("member 2 got unreachable reports %v, want none", recs[2].unreachable)
	}
}

func TestMemSnapshotReportsFinishOnDelivery(t *testing.T) {
	_, trs, recs := memCluster(t, 1, 2)
	data := bytes.Repeat([]byte("snapshot"), 1000)
	trs[1].Send([]*raftpb.Message{snapMsg(1, 2, data)})
	got := recs[2].waitMsgs(t, 1)
	if got[0].GetType() != raftpb.MsgSnap || !bytes.Equal(got[0].GetSnapshot().GetData(), data) {
		t.Fatalf("got %v, want the MsgSnap with %d bytes of data", got[0].GetType(), len(data))
	}
	snaps := recs[1].waitSnap(t, 1)
	if want := (snapReport{2, raft.SnapshotFinish}); len(snaps) != 1 || snaps[0] != want {
		t.Fatalf("snapshot reports %v, want [%v]", snaps, want)
	}
}

func TestMemSnapshotReportsFailureWhenDroppedOrRejected(t *testing.T) {
	n, trs, recs := memCluster(t, 1, 2)
	n.Cut(1, 2)
	trs[1].Send([]*raftpb.Message{snapMsg(1, 2, []byte("x"))})
	snaps := recs[1].waitSnap(t, 1)
	if want := (snapReport{2, raft.SnapshotFailure}); snaps[0] != want {
		t.Fatalf("snapshot report %v, want %v", snaps[0], want)
	}
	recs[1].waitUnreachable(t, 2)

	n.Restore(1, 2)
	recs[2].mu.Lock()
	recs[2].processErr = errors.New("snapshot rejected")
	recs[2].mu.Unlock()
	trs[1].Send([]*raftpb.Message{snapMsg(1, 2, []byte("y"))})
	snaps = recs[1].waitSnap(t, 2)
	if want := (snapReport{2, raft.SnapshotFailure}); snaps[1] != want {
		t.Fatalf("snapshot report %v, want %v", snaps[1], want)
	}
}

func TestMemSendToNonPeerOrDepartedMemberIsUnreachable(t *testing.T) {
	n, trs, recs := memCluster(t, 1, 2, 3)
	trs[1].RemovePeer(3)
	trs[1].Send([]*raftpb.Message{appMsg(1, 3, 1, 8)})
	recs[1].waitUnreachable(t, 3)

	n.Leave(2)
	trs[1].Send([]*raftpb.Message{appMsg(1, 2, 2, 8)})
	recs[1].waitUnreachable(t, 2)
	if c := recs[2].count() + recs[3].count(); c != 0 {
		t.Fatalf("%d messages delivered, want 0", c)
	}
}

func TestMemCloseStopsDelivery(t *testing.T) {
	_, trs, recs := memCluster(t, 1, 2)
	if err := trs[2].Close(); err != nil {
		t.Fatal(err)
	}
	if err := trs[2].Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	trs[1].Send([]*raftpb.Message{appMsg(1, 2, 1, 8)})
	recs[1].waitUnreachable(t, 2)
	trs[2].Send([]*raftpb.Message{appMsg(2, 1, 1, 8)}) // after Close: dropped silently
	if c := recs[1].count() + recs[2].count(); c != 0 {
		t.Fatalf("%d messages delivered, want 0", c)
	}
}
