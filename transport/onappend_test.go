package transport

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// appendLog records HTTPConfig.OnAppend's calls.
type appendLog struct {
	mu       sync.Mutex
	ok, fail int
	maxDur   time.Duration
}

func (l *appendLog) observe(to uint64, n int, d time.Duration, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ok {
		l.ok += n
		l.maxDur = max(l.maxDur, d)
	} else {
		l.fail += n
	}
}

func (l *appendLog) counts() (ok, fail int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ok, l.fail
}

// TestHTTPOnAppendCountsAppends: OnAppend is told of every append written
// to a peer's stream (not of other messages), and of the appends lost to
// a dead peer.
func TestHTTPOnAppendCountsAppends(t *testing.T) {
	var log appendLog
	a := startMember(t, 1, testClusterID, 16)
	a.tr.cfg.OnAppend = log.observe // before any peer: no stream reads it yet
	b := startMember(t, 2, testClusterID, 16)
	connect(t, a, b)
	for i := uint64(1); i <= 5; i++ {
		a.tr.Send([]*raftpb.Message{appMsg(1, 2, i, 10), {Type: raftpb.MessageType_MsgHeartbeat.Enum(), From: proto.Uint64(1), To: proto.Uint64(2)}})
	}
	b.rec.waitMsgs(t, 10)
	eventually(t, waitLimit, "5 appends reported written", func() (bool, string) {
		ok, fail := log.counts()
		return ok == 5 && fail == 0, fmt.Sprintf("%d written, %d lost", ok, fail)
	})

	a.tr.AddPeer(3, []string{deadURL(t)})
	a.tr.Send([]*raftpb.Message{appMsg(1, 3, 1, 10)})
	waitLog(t, a.logs, "stream to peer failed")
	a.tr.Send([]*raftpb.Message{appMsg(1, 3, 2, 10)})
	eventually(t, waitLimit, "an append to the dead peer reported lost", func() (bool, string) {
		ok, fail := log.counts()
		return fail > 0 && ok == 5, fmt.Sprintf("%d written, %d lost", ok, fail)
	})
}
