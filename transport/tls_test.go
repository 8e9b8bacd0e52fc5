package transport

import (
	"net"
	"net/http"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/cairnkv/cairn/config"
	"github.com/cairnkv/cairn/internal/testcerts"
	"github.com/cairnkv/cairn/internal/tlsconf"
)

// tlsMember is an HTTP transport behind a TLS listener (peer mTLS:
// --peer-client-cert-auth with the CA), dialing its peers with the same
// side's certificate.
type tlsMember struct {
	*httpMember
	url     string
	tlsLogs *observer.ObservedLogs
}

func startTLSMember(t *testing.T, id uint64, ca *testcerts.CA, cert testcerts.Pair, allowedCN ...string) *tlsMember {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	side, err := tlsconf.New(config.TLSInfo{CertFile: cert.CertFile, KeyFile: cert.KeyFile, TrustedCAFile: ca.CertFile, ClientCertAuth: true, AllowedCNs: allowedCN},
		tlsconf.Common{}, tlsconf.PeerFlags, "peer", "", nil, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	tcore, tlogs := observer.New(zapcore.DebugLevel)
	m := &httpMember{id: id, rec: newRecorder(), logs: tlogs}
	m.tr = NewHTTP(HTTPConfig{ID: id, ClusterID: testClusterID, Handler: m.rec, Logger: zap.New(tcore), DialTLS: side.DialContext})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(PathPrefix+"/", m.tr.Handler())
	srv := &http.Server{Handler: mux}
	go srv.Serve(side.Listener(l))
	t.Cleanup(func() {
		m.tr.Close()
		srv.Close()
	})
	return &tlsMember{httpMember: m, url: "https://" + l.Addr().String(), tlsLogs: logs}
}

// TestHTTPOverPeerMTLS: two transports with peer mTLS exchange messages
// and snapshots; a third with a certificate of another CA is refused at
// the handshake (nothing delivered) and the refusal is logged once.
func TestHTTPOverPeerMTLS(t *testing.T) {
	ca := testcerts.NewCA(t)
	a := startTLSMember(t, 1, ca, ca.Peer(t, "m1"))
	b := startTLSMember(t, 2, ca, ca.Peer(t, "m2"))
	a.tr.AddPeer(2, []string{b.url})
	b.tr.AddPeer(1, []string{a.url})
	b.tr.AddPeer(3, []string{"https://127.0.0.1:1"})
	waitStream(t, a, 2)
	waitStream(t, b, 1)
	a.tr.Send(batch(1, 2, 1, 10, 8))
	checkInOrder(t, b.rec.waitMsgs(t, 10), 1, 2, 1, 8)
	b.tr.Send(batch(2, 1, 1, 5, 8))
	checkInOrder(t, a.rec.waitMsgs(t, 5), 2, 1, 1, 8)

	other := testcerts.NewCA(t)
	c := startTLSMember(t, 3, other, other.Peer(t, "m3"))
	c.tr.AddPeer(2, []string{b.url})
	for range 3 {
		c.tr.Send(batch(3, 2, 1, 1, 8))
	}
	c.rec.waitUnreachable(t, 2)
	eventually(t, waitLimit, "the refusal logged", func() (bool, string) {
		n := b.tlsLogs.FilterMessageSnippet("rejected connection").Len()
		return n >= 1, ""
	})
	if n := b.tlsLogs.FilterMessageSnippet("rejected connection").FilterLevelExact(zapcore.WarnLevel).Len(); n != 1 {
		t.Errorf("refusal warned %d times, want once", n)
	}
	if got := b.rec.count(); got != 10 {
		t.Fatalf("member 2 got %d messages, want only member 1's 10", got)
	}
}

// TestHTTPPeerAllowedCN: with --peer-cert-allowed-cn, a member whose
// certificate (of the right CA) has another CN is refused.
func TestHTTPPeerAllowedCN(t *testing.T) {
	ca := testcerts.NewCA(t)
	a := startTLSMember(t, 1, ca, ca.Peer(t, "m1"), "m1", "m2")
	b := startTLSMember(t, 2, ca, ca.Peer(t, "m2"), "m1", "m2")
	x := startTLSMember(t, 3, ca, ca.Peer(t, "intruder"), "m1", "m2")
	a.tr.AddPeer(2, []string{b.url})
	b.tr.AddPeer(1, []string{a.url})
	b.tr.AddPeer(3, []string{x.url})
	x.tr.AddPeer(2, []string{b.url})
	waitStream(t, a, 2)
	a.tr.Send(batch(1, 2, 1, 3, 8))
	checkInOrder(t, b.rec.waitMsgs(t, 3), 1, 2, 1, 8)
	x.tr.Send(batch(3, 2, 1, 1, 8))
	x.rec.waitUnreachable(t, 2)
	if got := b.rec.count(); got != 3 {
		t.Fatalf("member 2 got %d messages, want only member 1's 3", got)
	}
}

// batch is n messages from to, indexes first.., each with payload bytes.
func batch(from, to, first uint64, n, payload int) []*raftpb.Message {
	var out []*raftpb.Message
	for i := range n {
		out = append(out, appMsg(from, to, first+uint64(i), payload))
	}
	return out
}

// waitStream waits until m's stream to peer id is open (a stream opened
// before the peer knew m was refused, and m drops messages while it backs
// off).
func waitStream(t *testing.T, m *tlsMember, id uint64) {
	t.Helper()
	eventually(t, waitLimit, "the stream to the peer", func() (bool, string) {
		return !m.tr.ActiveSince(id).IsZero(), ""
	})
}
