package transport_test

import (
	"context"
	"io"
	"net/http"

	"github.com/cairnkv/cairn/transport"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

type server struct{}

func (server) Process(context.Context, *raftpb.Message) error { return nil }
func (s server) ProcessSnapshot(ctx context.Context, m *raftpb.Message, db io.Reader) error {
	return transport.ProcessInline(ctx, s, m, db)
}
func (server) ReportUnreachable(uint64)                   {}
func (server) ReportSnapshot(uint64, raft.SnapshotStatus) {}
func (server) ReportRemoved(uint64)                       {}

// Mount the peer transport on the peer listener and tell it about the
// other members.
func ExampleNewHTTP() {
	tr := transport.NewHTTP(transport.HTTPConfig{ID: 1, ClusterID: 0xc1, Handler: server{}})
	defer tr.Close()
	mux := http.NewServeMux()
	mux.Handle(transport.PathPrefix+"/", tr.Handler())
	peerServer := &http.Server{Addr: "127.0.0.1:2380", Handler: mux} // no ReadTimeout: streams are long-lived
	_ = peerServer
	tr.AddPeer(2, []string{"http://127.0.0.1:22380"})
	tr.Send([]*raftpb.Message{{Type: raftpb.MsgHeartbeat.Enum(), From: new(uint64(1)), To: new(uint64(2))}})
}
