package api

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.uber.org/zap"
)

// Defaults applied by New to zero Config fields. They are etcd's.
const (
	DefaultMaxRequestBytes = 1536 * 1024 // --max-request-bytes
	DefaultMaxTxnOps       = 128         // --max-txn-ops
	DefaultServerVersion   = "3.7.0"
	DefaultClusterVersion  = "3.7.0"

	// grpcOverheadBytes is added to MaxRequestBytes for the gRPC receive
	// limit, as etcd does, so that a request slightly over the limit
	// reaches the server and gets etcd's ErrRequestTooLarge.
	grpcOverheadBytes = 512 * 1024
)

// Config configures a Server. The zero value of every field except
// Backend is usable.
type Config struct {
	Backend Backend
	Logger  *zap.Logger // nil: no logging

	// MaxRequestBytes bounds write requests: a Put, DeleteRange or
	// writing Txn whose encoding is larger gets ErrGRPCRequestTooLarge; a
	// gRPC message larger than MaxRequestBytes+512KiB is refused by gRPC
	// itself (codes.ResourceExhausted). 0 means DefaultMaxRequestBytes.
	MaxRequestBytes int
	// MaxTxnOps bounds the compares and each branch of a Txn. 0 means
	// DefaultMaxTxnOps.
	MaxTxnOps int

	ServerVersion  string // Status.version and /version "etcdserver"; "" means DefaultServerVersion
	ClusterVersion string // /version "etcdcluster"; "" means DefaultClusterVersion
	CairnVersion   string // /version "cairn"
	GitVersion     string // /version "git" (omitted when empty): the git version stamped at build

	// Registry receives the gRPC server metrics and is what /metrics
	// serves. nil means a private registry.
	Registry    *prometheus.Registry
	EnablePprof bool
	// V2 serves etcd's v2 HTTP API under /v2/ (--enable-v2; package
	// v2http); nil leaves /v2/ unserved (404), as etcd 3.6 and later.
	V2 http.Handler
	// Console serves the web console under /console/ (--enable-console;
	// package console); nil leaves /console/ unserved (404).
	Console http.Handler
	// MetricsExtensive is etcd's --metrics=extensive: it adds the gRPC
	// handling-time histograms (grpc_server_handling_seconds).
	MetricsExtensive bool

	// gRPC keepalive, etcd's --grpc-keepalive-min-time (the shortest ping
	// interval a client may use; 0 means 5s as etcd), --grpc-keepalive-interval
	// and --grpc-keepalive-timeout (server pings; 0 leaves gRPC's defaults).
	GRPCKeepAliveMinTime  time.Duration
	GRPCKeepAliveInterval time.Duration
	GRPCKeepAliveTimeout  time.Duration

	// WarningUnaryRequestDuration is etcd's --warning-unary-request-duration:
	// a unary request slower than this is logged with a warning. 0 means
	// never.
	WarningUnaryRequestDuration time.Duration

	// MaxConcurrentStreams bounds the gRPC streams of one client
	// connection (etcd's --max-concurrent-streams); 0 means no bound
	// (math.MaxUint32, etcd's default).
	MaxConcurrentStreams uint32
	// DisableGateway leaves the JSON gateway (/v3/...) out of the HTTP
	// side, as etcd's --enable-grpc-gateway=false does.
	DisableGateway bool
	// StopGRPCServiceOnDefrag reports the gRPC health service NOT_SERVING
	// while a defragmentation runs, as etcd's StopGRPCServiceOnDefrag
	// feature gate does, so that clients balancing on health go elsewhere.
	StopGRPCServiceOnDefrag bool

	// Watch, Lease and Auth services; nil answers codes.Unimplemented.
	Watch pb.WatchServer
	Lease pb.LeaseServer
	Auth  pb.AuthServer
	// AuthGate runs etcd's API-layer auth checks (root for maintenance
	// and membership changes, a user for the rest; api/auth.go); nil runs
	// none.
	AuthGate AuthGate
}

func (c *Config) withDefaults() (Config, error) {
	out := *c
	if out.Backend == nil {
		return out, errors.New("api: Config.Backend is nil")
	}
	if out.MaxRequestBytes < 0 || out.MaxTxnOps < 0 {
		return out, fmt.Errorf("api: negative limit (MaxRequestBytes=%d MaxTxnOps=%d)", out.MaxRequestBytes, out.MaxTxnOps)
	}
	if out.Logger == nil {
		out.Logger = zap.NewNop()
	}
	if out.MaxRequestBytes == 0 {
		out.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if out.MaxTxnOps == 0 {
		out.MaxTxnOps = DefaultMaxTxnOps
	}
	if out.ServerVersion == "" {
		out.ServerVersion = DefaultServerVersion
	}
	if out.ClusterVersion == "" {
		out.ClusterVersion = DefaultClusterVersion
	}
	if out.GRPCKeepAliveMinTime == 0 {
		out.GRPCKeepAliveMinTime = 5 * time.Second
	}
	if out.MaxConcurrentStreams == 0 {
		out.MaxConcurrentStreams = math.MaxUint32
	}
	if out.Registry == nil {
		out.Registry = prometheus.NewRegistry()
	}
	return out, nil
}

// storageVersion is the "major.minor.0" form of an etcd version, which is
// what etcd reports as its storage version (Status, snapshots, /version).
func storageVersion(serverVersion string) string {
	parts := strings.SplitN(serverVersion, ".", 3)
	if len(parts) < 2 {
		return serverVersion
	}
	return parts[0] + "." + parts[1] + ".0"
}
