package api

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// grpcMetrics are the gRPC server metrics, named and labelled as
// go-grpc-prometheus names them (which is what etcd exports).
type grpcMetrics struct {
	started  *prometheus.CounterVec
	handled  *prometheus.CounterVec
	received *prometheus.CounterVec
	sent     *prometheus.CounterVec
	seconds  *prometheus.HistogramVec
}

func newGRPCMetrics(reg prometheus.Registerer) (*grpcMetrics, error) {
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
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "grpc_server_handling_seconds",
			Help:    "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.",
			Buckets: prometheus.DefBuckets,
		}, labels),
	}
	for _, c := range []prometheus.Collector{m.started, m.handled, m.received, m.sent, m.seconds} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("api: register gRPC metrics: %w", err)
		}
	}
	return m, nil
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
	switch {
	case info.IsClientStream && info.IsServerStream:
		return "bidi_stream"
	case info.IsClientStream:
		return "client_stream"
	default:
		return "server_stream"
	}
}

func (m *grpcMetrics) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	svc, meth := splitMethod(info.FullMethod)
	m.started.WithLabelValues("unary", svc, meth).Inc()
	m.received.WithLabelValues("unary", svc, meth).Inc()
	start := time.Now()
	resp, err := handler(ctx, req)
	m.seconds.WithLabelValues("unary", svc, meth).Observe(time.Since(start).Seconds())
	m.handled.WithLabelValues("unary", svc, meth, status.Code(err).String()).Inc()
	if err == nil {
		m.sent.WithLabelValues("unary", svc, meth).Inc()
	}
	return resp, err
}

func (m *grpcMetrics) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	typ := streamType(info)
	svc, meth := splitMethod(info.FullMethod)
	m.started.WithLabelValues(typ, svc, meth).Inc()
	start := time.Now()
	err := handler(srv, &countingStream{
		ServerStream: ss,
		received:     m.received.WithLabelValues(typ, svc, meth),
		sent:         m.sent.WithLabelValues(typ, svc, meth),
	})
	m.seconds.WithLabelValues(typ, svc, meth).Observe(time.Since(start).Seconds())
	m.handled.WithLabelValues(typ, svc, meth, status.Code(err).String()).Inc()
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
