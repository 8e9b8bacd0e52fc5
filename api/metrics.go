package api

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// grpcMetrics are the gRPC server metrics, named and labelled as
// go-grpc-prometheus names them (which is what etcd exports), and etcd's
// counts of the bytes its gRPC codec reads and writes.
type grpcMetrics struct {
	started  *prometheus.CounterVec
	handled  *prometheus.CounterVec
	received *prometheus.CounterVec
	sent     *prometheus.CounterVec
	// seconds is nil unless --metrics=extensive, as in etcd.
	seconds *prometheus.HistogramVec

	sentBytes, receivedBytes prometheus.Counter
	// clientRequests counts calls by the client API version the client
	// sends (etcd's etcd_server_client_requests_total).
	clientRequests *prometheus.CounterVec

	// The series a call touches, resolved once per method (and client
	// version) instead of hashing label values on every call: a unary
	// call touched five label sets.
	methods  sync.Map // "typ FullMethod" -> *methodSeries
	versions sync.Map // "typ version" -> prometheus.Counter
}

// methodSeries are one method's series.
type methodSeries struct {
	typ, svc, meth          string
	started, received, sent prometheus.Counter
	handledOK               prometheus.Counter
	seconds                 prometheus.Observer // nil without --metrics=extensive
}

func (m *grpcMetrics) series(typ, full string) *methodSeries {
	key := typ + " " + full
	if ms, ok := m.methods.Load(key); ok {
		return ms.(*methodSeries)
	}
	svc, meth := splitMethod(full)
	ms := &methodSeries{
		typ: typ, svc: svc, meth: meth,
		started:   m.started.WithLabelValues(typ, svc, meth),
		received:  m.received.WithLabelValues(typ, svc, meth),
		sent:      m.sent.WithLabelValues(typ, svc, meth),
		handledOK: m.handled.WithLabelValues(typ, svc, meth, codes.OK.String()),
	}
	if m.seconds != nil {
		ms.seconds = m.seconds.WithLabelValues(typ, svc, meth)
	}
	got, _ := m.methods.LoadOrStore(key, ms)
	return got.(*methodSeries)
}

// done counts a finished call under its code and observes its duration.
func (m *grpcMetrics) done(ms *methodSeries, start time.Time, err error) {
	if ms.seconds != nil {
		ms.seconds.Observe(time.Since(start).Seconds())
	}
	if code := status.Code(err); code == codes.OK {
		ms.handledOK.Inc()
	} else {
		m.handled.WithLabelValues(ms.typ, ms.svc, ms.meth, code.String()).Inc()
	}
}

func newGRPCMetrics(reg prometheus.Registerer, extensive bool) (*grpcMetrics, error) {
	labels := []string{"grpc_type", "grpc_service", "grpc_method"}
	m := &grpcMetrics{
		started: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_server_started_total",
			Help: "Total number of RPCs started on the server.",
		}, labels),
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_server_handled_total",
			Help: "Total number of RPCs completed on the server, regardless of success or failure.",
		}, append(labels, "grpc_code")),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_server_msg_received_total",
			Help: "Total number of RPC stream messages received on the server.",
		}, labels),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_server_msg_sent_total",
			Help: "Total number of gRPC stream messages sent by the server.",
		}, labels),
		sentBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "etcd", Subsystem: "network", Name: "client_grpc_sent_bytes_total",
			Help: "The total number of bytes sent to grpc clients.",
		}),
		receivedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "etcd", Subsystem: "network", Name: "client_grpc_received_bytes_total",
			Help: "The total number of bytes received from grpc clients.",
		}),
		clientRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "etcd", Subsystem: "server", Name: "client_requests_total",
			Help: "The total number of client requests per client version.",
		}, []string{"type", "client_api_version"}),
	}
	cs := []prometheus.Collector{m.started, m.handled, m.received, m.sent, m.sentBytes, m.receivedBytes, m.clientRequests}
	if extensive {
		m.seconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "grpc_server_handling_seconds",
			Help:    "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.",
			Buckets: prometheus.DefBuckets,
		}, labels)
		cs = append(cs, m.seconds)
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("api: register gRPC metrics: %w", err)
		}
	}
	return m, nil
}

// initialize creates every method's series at zero, every code of
// grpc_server_handled_total included, as go-grpc-prometheus's
// InitializeMetrics does for etcd: rates and ratios over them exist
// before the first call.
func (m *grpcMetrics) initialize(srv *grpc.Server) {
	for svc, info := range srv.GetServiceInfo() {
		for _, mi := range info.Methods {
			typ := methodType(mi.IsClientStream, mi.IsServerStream)
			m.started.WithLabelValues(typ, svc, mi.Name)
			m.received.WithLabelValues(typ, svc, mi.Name)
			m.sent.WithLabelValues(typ, svc, mi.Name)
			if m.seconds != nil {
				m.seconds.WithLabelValues(typ, svc, mi.Name)
			}
			for c := codes.OK; c <= codes.Unauthenticated; c++ {
				m.handled.WithLabelValues(typ, svc, mi.Name, c.String())
			}
		}
	}
}

// splitMethod turns "/etcdserverpb.KV/Range" into ("etcdserverpb.KV", "Range").
func splitMethod(full string) (service, method string) {
	full = strings.TrimPrefix(full, "/")
	if i := strings.LastIndex(full, "/"); i >= 0 {
		return full[:i], full[i+1:]
	}
	return "unknown", full
}

func streamType(info *grpc.StreamServerInfo) string {
	return methodType(info.IsClientStream, info.IsServerStream)
}

// methodType is go-grpc-prometheus's grpc_type of a method.
func methodType(clientStream, serverStream bool) string {
	switch {
	case clientStream && serverStream:
		return "bidi_stream"
	case clientStream:
		return "client_stream"
	case serverStream:
		return "server_stream"
	default:
		return "unary"
	}
}

// countClientRequest counts a call in etcd_server_client_requests_total
// under the client API version its metadata carries ("unknown" without
// one), as etcd's interceptors do (typ "unary" or "stream").
func (m *grpcMetrics) countClientRequest(ctx context.Context, typ string) {
	ver := "unknown"
	// ValueFromIncomingContext copies only this key's values, not the
	// whole metadata as FromIncomingContext does; clientv3 always sends
	// the key, so the copy is left to the calls without it.
	if vs := metadata.ValueFromIncomingContext(ctx, clientAPIVersionKey); len(vs) > 0 {
		if utf8.ValidString(vs[0]) {
			ver = vs[0]
		}
	} else if _, ok := metadata.FromIncomingContext(ctx); !ok {
		return
	}
	key := typ + " " + ver
	c, ok := m.versions.Load(key)
	if !ok {
		c, _ = m.versions.LoadOrStore(key, m.clientRequests.WithLabelValues(typ, ver))
	}
	c.(prometheus.Counter).Inc()
}

// clientAPIVersionKey is the metadata key of the client's API version
// (etcd's rpctypes.MetadataClientAPIVersionKey), sent by clientv3.
const clientAPIVersionKey = "client-api-version"

func (m *grpcMetrics) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	m.countClientRequest(ctx, "unary")
	ms := m.series("unary", info.FullMethod)
	ms.started.Inc()
	ms.received.Inc()
	start := time.Now()
	resp, err := handler(ctx, req)
	m.done(ms, start, err)
	if err == nil {
		ms.sent.Inc()
	}
	return resp, err
}

func (m *grpcMetrics) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	m.countClientRequest(ss.Context(), "stream")
	ms := m.series(streamType(info), info.FullMethod)
	ms.started.Inc()
	start := time.Now()
	err := handler(srv, &countingStream{ServerStream: ss, received: ms.received, sent: ms.sent})
	m.done(ms, start, err)
	return err
}

// countingStream counts the messages a stream carries.
type countingStream struct {
	grpc.ServerStream
	received, sent prometheus.Counter
}

func (s *countingStream) SendMsg(m any) error {
	err := s.ServerStream.SendMsg(m)
	if err == nil {
		s.sent.Inc()
	}
	return err
}

func (s *countingStream) RecvMsg(m any) error {
	err := s.ServerStream.RecvMsg(m)
	if err == nil {
		s.received.Inc()
	}
	return err
}

// healthMetrics are etcd's metrics of its HTTP health checks.
type healthMetrics struct {
	success, failures prometheus.Counter
	check             *prometheus.GaugeVec   // 1 passed, 0 failed, by type (livez, readyz) and check
	checks            *prometheus.CounterVec // runs by type, check and status
}

func newHealthMetrics(reg prometheus.Registerer) (*healthMetrics, error) {
	m := &healthMetrics{
		success: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "etcd", Subsystem: "server", Name: "health_success",
			Help: "The total number of successful health checks",
		}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "etcd", Subsystem: "server", Name: "health_failures",
			Help: "The total number of failed health checks",
		}),
		check: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "etcd", Subsystem: "server", Name: "healthcheck",
			Help: "The result of each kind of healthcheck.",
		}, []string{"type", "name"}),
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "etcd", Subsystem: "server", Name: "healthchecks_total",
			Help: "The total number of each kind of healthcheck.",
		}, []string{"type", "name", "status"}),
	}
	for _, c := range []prometheus.Collector{m.success, m.failures, m.check, m.checks} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("api: registering health metrics: %w", err)
		}
	}
	return m, nil
}

// observe records one run of check name of kind typ ("livez", "readyz").
func (m *healthMetrics) observe(typ, name string, err error) {
	v, status := 1.0, "success"
	if err != nil {
		v, status = 0, "failure"
	}
	m.check.WithLabelValues(typ, name).Set(v)
	m.checks.WithLabelValues(typ, name, status).Inc()
}

// backendMetrics are etcd's metrics of the maintenance operations on the
// backend the API runs: defragmentation and snapshots to clients.
type backendMetrics struct {
	defragSeconds   prometheus.Histogram
	defragInflight  prometheus.Gauge
	snapshotSeconds prometheus.Histogram
}

func newBackendMetrics(reg prometheus.Registerer) (*backendMetrics, error) {
	m := &backendMetrics{
		defragSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "etcd", Subsystem: "disk", Name: "backend_defrag_duration_seconds",
			Help:    "The latency distribution of backend defragmentation.",
			Buckets: prometheus.ExponentialBuckets(.1, 2, 13),
		}),
		defragInflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "etcd", Subsystem: "disk", Name: "defrag_inflight",
			Help: "Whether or not defrag is active on the member. 1 means active, 0 means not.",
		}),
		snapshotSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "etcd", Subsystem: "disk", Name: "backend_snapshot_duration_seconds",
			Help:    "The latency distribution of backend snapshots.",
			Buckets: prometheus.ExponentialBuckets(.01, 2, 17),
		}),
	}
	for _, c := range []prometheus.Collector{m.defragSeconds, m.defragInflight, m.snapshotSeconds} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("api: registering backend metrics: %w", err)
		}
	}
	return m, nil
}

// watchMetrics are etcd's timings of its watch streams' send loop.
type watchMetrics struct {
	stream, perEvent, control, progress prometheus.Histogram
}

func newWatchMetrics() *watchMetrics {
	h := func(name, help string) prometheus.Histogram {
		return prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "etcd_debugging", Subsystem: "server", Name: name, Help: help,
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		})
	}
	return &watchMetrics{
		stream: h("watch_send_loop_watch_stream_duration_seconds",
			"The total duration in seconds of running through the send loop watch stream response all events."),
		perEvent: h("watch_send_loop_watch_stream_duration_per_event_seconds",
			"The average duration in seconds of running through the send loop watch stream response, per event."),
		control: h("watch_send_loop_control_stream_duration_seconds",
			"The total duration in seconds of running through the send loop control stream response."),
		progress: h("watch_send_loop_progress_duration_seconds",
			"The total duration in seconds of running through the progress loop control stream response."),
	}
}

func (m *watchMetrics) register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.stream, m.perEvent, m.control, m.progress} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("api: registering watch metrics: %w", err)
		}
	}
	return nil
}

// observeResponse times the sending of a response of the watch stream
// with events (etcd also divides the time of a response without events,
// by zero: Cairn leaves those out of the per-event histogram).
func (m *watchMetrics) observeResponse(d time.Duration, events int) {
	m.stream.Observe(d.Seconds())
	if events > 0 {
		m.perEvent.Observe(d.Seconds() / float64(events))
	}
}
