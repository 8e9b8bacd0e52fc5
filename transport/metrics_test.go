package transport

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
)

// metricsMember is an httpMember whose transport probes every few
// milliseconds and exports its metrics on its own registry.
func metricsMember(t *testing.T, id uint64) (*httpMember, *prometheus.Registry) {
	t.Helper()
	m := &httpMember{id: id, rec: newRecorder()}
	m.tr = NewHTTP(HTTPConfig{ID: id, ClusterID: testClusterID, Handler: m.rec, Logger: zap.NewNop(), ProbeInterval: 10 * time.Millisecond})
	mux := http.NewServeMux()
	mux.Handle(PathPrefix+"/", m.tr.Handler())
	m.srv = httptest.NewServer(mux)
	t.Cleanup(m.close)
	reg := prometheus.NewPedanticRegistry()
	m.tr.RegisterMetrics(reg)
	return m, reg
}

// sample is one series' value: a counter's or gauge's value, a
// histogram's sample count. ok is false when the series does not exist.
func sample(t *testing.T, reg *prometheus.Registry, name string, labels ...string) (v float64, ok bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue next
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue(), true
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue(), true
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount()), true
			}
		}
	}
	return 0, false
}

// The peer metrics count what goes over the streams: the bytes one member
// sends are the bytes the other receives; the stream is an active peer
// connection; probes fill the round-trip histogram; messages a stopped
// peer never gets are send failures and its broken stream a disconnection.
func TestHTTPPeerMetricsCountTraffic(t *testing.T) {
	a, ra := metricsMember(t, 1)
	b, rb := metricsMember(t, 2)
	connect(t, a, b)
	for _, name := range []string{"etcd_network_peer_sent_failures_total", "etcd_network_peer_sent_bytes_total"} {
		if v, ok := sample(t, ra, name, "To", "2"); !ok || v != 0 {
			t.Fatalf("%s{To=2} = %v (exists %v) right after AddPeer, want 0", name, v, ok)
		}
	}
	const n = 200
	for i := uint64(0); i < n; i++ {
		a.tr.Send([]*raftpb.Message{appMsg(1, 2, i, 100)})
	}
	b.rec.waitMsgs(t, n)
	eventually(t, waitLimit, "sent bytes = received bytes, an active peer, round trips", func() (bool, string) {
		sent, _ := sample(t, ra, "etcd_network_peer_sent_bytes_total", "To", "2")
		recv, _ := sample(t, rb, "etcd_network_peer_received_bytes_total", "From", "1")
		active, _ := sample(t, ra, "etcd_network_active_peers", "Local", "1", "Remote", "2")
		rtts, _ := sample(t, ra, "etcd_network_peer_round_trip_time_seconds", "To", "2")
		ok := sent >= n*100 && sent == recv && active == 1 && rtts > 0
		return ok, fmt.Sprintf("sent %v, received %v, active %v, round trips %v", sent, recv, active, rtts)
	})
	if v, _ := sample(t, ra, "etcd_network_peer_sent_failures_total", "To", "2"); v != 0 {
		t.Fatalf("send failures = %v before any failure", v)
	}

	b.close()
	eventually(t, waitLimit, "send failures and a disconnection after the peer stopped", func() (bool, string) {
		a.tr.Send([]*raftpb.Message{appMsg(1, 2, 1, 10)})
		failed, _ := sample(t, ra, "etcd_network_peer_sent_failures_total", "To", "2")
		active, _ := sample(t, ra, "etcd_network_active_peers", "Local", "1", "Remote", "2")
		gone, _ := sample(t, ra, "etcd_network_disconnected_peers_total", "Local", "1", "Remote", "2")
		return failed > 0 && active == 0 && gone >= 1, fmt.Sprintf("failures %v, active %v, disconnected %v", failed, active, gone)
	})

	// A removed peer's series go.
	a.tr.RemovePeer(2)
	mfs, err := ra.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if (lp.GetName() == "To" || lp.GetName() == "Remote") && lp.GetValue() == "2" {
					t.Errorf("%s still has a series for removed peer 2", mf.GetName())
				}
			}
		}
	}
}

// The probe path answers GET only.
func TestHTTPProbePath(t *testing.T) {
	a, _ := metricsMember(t, 1)
	resp, err := http.Get(a.url() + ProbePath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d", ProbePath, resp.StatusCode)
	}
	resp, err = http.Post(a.url()+ProbePath, "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST %s = %d, want 405", ProbePath, resp.StatusCode)
	}
}

// A snapshot counts as sent and received on both sides, its bytes with the
// peer traffic.
func TestHTTPSnapshotMetrics(t *testing.T) {
	a, ra := metricsMember(t, 1)
	b, rb := metricsMember(t, 2)
	connect(t, a, b)
	a.tr.Send([]*raftpb.Message{snapMsg(1, 2, make([]byte, 100_000))})
	b.rec.waitMsgs(t, 1)
	eventually(t, waitLimit, "the snapshot counted on both sides", func() (bool, string) {
		sent, _ := sample(t, ra, "etcd_network_snapshot_send_success", "To", "2")
		took, _ := sample(t, ra, "etcd_network_snapshot_send_total_duration_seconds", "To", "2")
		inflight, _ := sample(t, ra, "etcd_network_snapshot_send_inflights_total", "To", "2")
		recv, _ := sample(t, rb, "etcd_network_snapshot_receive_success", "From", "1")
		bytes, _ := sample(t, rb, "etcd_network_peer_received_bytes_total", "From", "1")
		ok := sent == 1 && took == 1 && inflight == 0 && recv == 1 && bytes >= 100_000
		return ok, fmt.Sprintf("sent %v (timed %v, in flight %v), received %v, bytes %v", sent, took, inflight, recv, bytes)
	})
}
