package transport

import (
	"context"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ProbePath answers the round-trip probes peers send (GET, 200 "OK").
const ProbePath = PathPrefix + "/probing"

// DefaultProbeInterval is how often a peer is probed for its round-trip
// time, as etcd's prober does (every 4 s).
const DefaultProbeInterval = 4 * time.Second

// metrics are etcd's peer network metrics (etcd's rafthttp), with etcd's
// names, help, labels and buckets. Peers are labelled by their ID in hex:
// To on what is sent, From on what is received, Local and Remote on the
// connection gauges. Each HTTP transport has its own; RegisterMetrics
// exports them.
type metrics struct {
	local string

	sentBytes     *prometheus.CounterVec
	receivedBytes *prometheus.CounterVec
	sentFailures  *prometheus.CounterVec
	recvFailures  *prometheus.CounterVec
	activePeers   *prometheus.GaugeVec
	disconnected  *prometheus.CounterVec
	rtt           *prometheus.HistogramVec

	snapSend         *prometheus.CounterVec
	snapSendFailures *prometheus.CounterVec
	snapSendInflight *prometheus.GaugeVec
	snapSendSeconds  *prometheus.HistogramVec
	snapRecv         *prometheus.CounterVec
	snapRecvFailures *prometheus.CounterVec
	snapRecvInflight *prometheus.GaugeVec
	snapRecvSeconds  *prometheus.HistogramVec
}

func newMetrics(local uint64) *metrics {
	counter := func(name, help, label string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "etcd", Subsystem: "network", Name: name, Help: help}, []string{label})
	}
	gauge := func(name, help, label string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "etcd", Subsystem: "network", Name: name, Help: help}, []string{label})
	}
	histogram := func(name, help, label string, buckets []float64) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "etcd", Subsystem: "network", Name: name, Help: help, Buckets: buckets}, []string{label})
	}
	snapBuckets := prometheus.ExponentialBuckets(0.1, 2, 10)
	return &metrics{
		local:         idString(local),
		sentBytes:     counter("peer_sent_bytes_total", "The total number of bytes sent to peers.", "To"),
		receivedBytes: counter("peer_received_bytes_total", "The total number of bytes received from peers.", "From"),
		sentFailures:  counter("peer_sent_failures_total", "The total number of send failures from peers.", "To"),
		recvFailures:  counter("peer_received_failures_total", "The total number of receive failures from peers.", "From"),
		activePeers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "etcd", Subsystem: "network", Name: "active_peers",
			Help: "The current number of active peer connections.",
		}, []string{"Local", "Remote"}),
		disconnected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "etcd", Subsystem: "network", Name: "disconnected_peers_total",
			Help: "The total number of disconnected peers.",
		}, []string{"Local", "Remote"}),
		rtt: histogram("peer_round_trip_time_seconds", "Round-Trip-Time histogram between peers", "To",
			prometheus.ExponentialBuckets(0.0001, 2, 16)),

		snapSend:         counter("snapshot_send_success", "Total number of successful snapshot sends", "To"),
		snapSendFailures: counter("snapshot_send_failures", "Total number of snapshot send failures", "To"),
		snapSendInflight: gauge("snapshot_send_inflights_total", "Total number of inflight snapshot sends", "To"),
		snapSendSeconds:  histogram("snapshot_send_total_duration_seconds", "Total latency distributions of v3 snapshot sends", "To", snapBuckets),
		snapRecv:         counter("snapshot_receive_success", "Total number of successful snapshot receives", "From"),
		snapRecvFailures: counter("snapshot_receive_failures", "Total number of snapshot receive failures", "From"),
		snapRecvInflight: gauge("snapshot_receive_inflights_total", "Total number of inflight snapshot receives", "From"),
		snapRecvSeconds:  histogram("snapshot_receive_total_duration_seconds", "Total latency distributions of v3 snapshot receives", "From", snapBuckets),
	}
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{
		m.sentBytes, m.receivedBytes, m.sentFailures, m.recvFailures, m.activePeers, m.disconnected, m.rtt,
		m.snapSend, m.snapSendFailures, m.snapSendInflight, m.snapSendSeconds,
		m.snapRecv, m.snapRecvFailures, m.snapRecvInflight, m.snapRecvSeconds,
	}
}

// RegisterMetrics registers the transport's peer metrics on reg.
func (t *HTTP) RegisterMetrics(reg prometheus.Registerer) {
	reg.MustRegister(t.m.collectors()...)
}

// addPeer creates a new peer's series at zero, so that rates and alerts
// over them work from the start (etcd creates them at first use).
func (m *metrics) addPeer(id uint64) {
	p := idString(id)
	m.sentBytes.WithLabelValues(p)
	m.receivedBytes.WithLabelValues(p)
	m.sentFailures.WithLabelValues(p)
	m.recvFailures.WithLabelValues(p)
	m.activePeers.WithLabelValues(m.local, p)
	m.disconnected.WithLabelValues(m.local, p)
	m.rtt.WithLabelValues(p)
}

// removePeer drops a removed peer's series.
func (m *metrics) removePeer(id uint64) {
	p := idString(id)
	for _, v := range []*prometheus.MetricVec{
		m.sentBytes.MetricVec, m.receivedBytes.MetricVec, m.sentFailures.MetricVec, m.recvFailures.MetricVec, m.rtt.MetricVec,
		m.snapSend.MetricVec, m.snapSendFailures.MetricVec, m.snapSendInflight.MetricVec, m.snapSendSeconds.MetricVec,
		m.snapRecv.MetricVec, m.snapRecvFailures.MetricVec, m.snapRecvInflight.MetricVec, m.snapRecvSeconds.MetricVec,
	} {
		v.DeleteLabelValues(p)
	}
	m.activePeers.DeleteLabelValues(m.local, p)
	m.disconnected.DeleteLabelValues(m.local, p)
}

// peerMetrics are one peer's sending-side series.
type peerMetrics struct {
	sentBytes, sentFailures prometheus.Counter
	active                  prometheus.Gauge
	disconnected            prometheus.Counter
	rtt                     prometheus.Observer
}

func (m *metrics) forPeer(id uint64) peerMetrics {
	p := idString(id)
	return peerMetrics{
		sentBytes:    m.sentBytes.WithLabelValues(p),
		sentFailures: m.sentFailures.WithLabelValues(p),
		active:       m.activePeers.WithLabelValues(m.local, p),
		disconnected: m.disconnected.WithLabelValues(m.local, p),
		rtt:          m.rtt.WithLabelValues(p),
	}
}

// countingReader counts the bytes read through it into a counter.
type countingReader struct {
	r io.Reader
	c prometheus.Counter
}

func (cr countingReader) Read(b []byte) (int, error) {
	n, err := cr.r.Read(b)
	if n > 0 {
		cr.c.Add(float64(n))
	}
	return n, err
}

// serveProbe answers a peer's round-trip probe.
func (t *HTTP) serveProbe(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "cairn: method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "OK")
}

// probe measures the round trip to the peer every ProbeInterval, the
// first at once, into etcd_network_peer_round_trip_time_seconds, until
// the peer is stopped. A probe that fails records nothing: the send
// failures and the stream's state tell that story.
func (p *peer) probe() {
	defer close(p.probed)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-timer.C:
		}
		if d, ok := p.probeOnce(); ok {
			p.m.rtt.Observe(d.Seconds())
		}
		timer.Reset(p.t.cfg.ProbeInterval)
	}
}

// probeOnce times one GET of ProbePath on the peer's preferred URL.
func (p *peer) probeOnce() (time.Duration, bool) {
	urls := p.orderedURLs()
	if len(urls) == 0 {
		return 0, false
	}
	ctx, cancel := context.WithTimeout(p.ctx, p.t.handshakeTimeout())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(urls[0], "/")+ProbePath, nil)
	if err != nil {
		return 0, false
	}
	start := time.Now()
	resp, err := p.t.client.Do(req)
	if err != nil {
		return 0, false
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1024))
	resp.Body.Close()
	d := time.Since(start)
	return d, resp.StatusCode == http.StatusOK
}
