package api

import (
	"context"
	"errors"
	"fmt"
	"log"
	"math"
	"net"
	"net/http"
	"sync"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("api: server closed")

// Server serves the client API on one or more listeners (etcd accepts
// several --listen-client-urls). Create it with New.
type Server struct {
	cfg     Config
	lg      *zap.Logger
	grpc    *grpc.Server
	metrics *grpcMetrics
	// healthMetrics count /health, /livez and /readyz checks.
	healthMetrics *healthMetrics
	grpcHealth    *health.Server
	// storageVersion is the etcd storage version Cairn claims: Status,
	// snapshots and /version report it.
	storageVersion string

	mu        sync.Mutex
	shutdown  bool
	listeners []*served
}

// served is one listener being served: gRPC and HTTP split by a
// connection mux, or only one of them (etcd's --listen-client-http-urls).
type served struct {
	l       net.Listener
	mux     *connMux     // nil unless both gRPC and HTTP are served on l
	httpSrv *http.Server // nil when l serves gRPC only
	gwConn  *grpc.ClientConn
	done    chan struct{} // closed when Serve on it has stopped its servers
}

// close stops accepting on sv's listener.
func (sv *served) close() {
	if sv.mux != nil {
		sv.mux.close()
	} else {
		sv.l.Close()
	}
}

// New builds a Server and registers the six etcd services on its gRPC
// server; it does not listen. It fails if cfg.Backend is nil or the
// metrics cannot be registered on cfg.Registry (e.g. registered twice).
func New(cfg Config) (*Server, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	m, err := newGRPCMetrics(c.Registry, c.MetricsExtensive)
	if err != nil {
		return nil, err
	}
	hm, err := newHealthMetrics(c.Registry)
	if err != nil {
		return nil, err
	}
	bm, err := newBackendMetrics(c.Registry)
	if err != nil {
		return nil, err
	}
	if err := registerFDMetrics(c.Registry); err != nil {
		return nil, err
	}
	s := &Server{cfg: c, lg: c.Logger, metrics: m, healthMetrics: hm, storageVersion: storageVersion(c.ServerVersion)}
	unary := []grpc.UnaryServerInterceptor{m.unary, recoverUnary(c.Logger)}
	if c.WarningUnaryRequestDuration > 0 || c.Logger.Core().Enabled(zapcore.DebugLevel) {
		unary = append(unary, requestStats(c.Logger, c.WarningUnaryRequestDuration))
	}
	stream := []grpc.StreamServerInterceptor{m.stream, recoverStream(c.Logger)}
	if c.AuthGate != nil {
		unary = append(unary, authUnary(c.AuthGate))
		stream = append(stream, authStream(c.AuthGate))
	}
	if g, ok := c.Backend.(LearnerGate); ok {
		unary = append(unary, learnerUnary(g))
		stream = append(stream, learnerStream(g))
	}
	s.grpc = grpc.NewServer(
		// etcd's keepalive policy: clientv3 users ping every few seconds
		// (kube-apiserver: 30s), which gRPC's default minimum (5 min) punishes.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: c.GRPCKeepAliveMinTime}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: c.GRPCKeepAliveInterval, Timeout: c.GRPCKeepAliveTimeout}),
		grpc.MaxRecvMsgSize(c.MaxRequestBytes+grpcOverheadBytes),
		grpc.MaxSendMsgSize(math.MaxInt32),
		grpc.MaxConcurrentStreams(c.MaxConcurrentStreams),
		grpc.ForceServerCodecV2(protoCodec{sent: m.sentBytes, received: m.receivedBytes}),
		// Metrics outermost, so they see the code the client sees.
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
		grpc.Creds(handshakenCreds{}), // TLS listeners hand over handshaken connections (tls.go)
	)
	pb.RegisterKVServer(s.grpc, &kvServer{be: c.Backend, maxTxnOps: c.MaxTxnOps, maxRequestBytes: c.MaxRequestBytes})
	pb.RegisterMaintenanceServer(s.grpc, &maintenanceServer{
		be:             c.Backend,
		lg:             c.Logger,
		serverVersion:  c.ServerVersion,
		storageVersion: s.storageVersion,
		metrics:        bm,
		defragging:     s.defragging,
	})
	pb.RegisterClusterServer(s.grpc, &clusterServer{be: c.Backend})
	var (
		watch pb.WatchServer = pb.UnimplementedWatchServer{}
		lease pb.LeaseServer = pb.UnimplementedLeaseServer{}
		auth  pb.AuthServer  = pb.UnimplementedAuthServer{}
	)
	if c.Watch != nil {
		watch = c.Watch
		if w, ok := c.Watch.(*watchServer); ok {
			if err := w.met.register(c.Registry); err != nil {
				return nil, err
			}
		}
	}
	if c.Lease != nil {
		lease = c.Lease
	}
	if c.Auth != nil {
		auth = c.Auth
	}
	pb.RegisterWatchServer(s.grpc, watch)
	pb.RegisterLeaseServer(s.grpc, lease)
	pb.RegisterAuthServer(s.grpc, auth)
	// gRPC's standard health service, SERVING until shutdown, as etcd's.
	s.grpcHealth = health.NewServer()
	healthpb.RegisterHealthServer(s.grpc, s.grpcHealth)
	m.initialize(s.grpc)
	return s, nil
}

// GRPCServer returns the gRPC server, for registering further services
// before Serve.
func (s *Server) GRPCServer() *grpc.Server { return s.grpc }

// Serve serves gRPC, the JSON gateway and the HTTP endpoints on l until
// Shutdown, then returns ErrServerClosed; on a listener failure it stops
// serving l and returns the error. l is plain TCP (or unix); a TLS
// listener is served with ServeListener and ListenOptions.TLS.
// Serve may be called for several listeners, from several goroutines.
func (s *Server) Serve(l net.Listener) error {
	return s.serve(l, ListenOptions{GRPC: true, HTTP: true, GatewayAddr: l.Addr()})
}

// ServeGRPC serves gRPC only on l, as etcd's --listen-client-urls do once
// --listen-client-http-urls is given; otherwise it is Serve.
func (s *Server) ServeGRPC(l net.Listener) error { return s.serve(l, ListenOptions{GRPC: true}) }

// ServeHTTP serves only the HTTP side on l (etcd's
// --listen-client-http-urls): the JSON gateway, which forwards to the gRPC
// listener at grpcAddr, the probes, /version, /metrics and pprof if
// enabled; otherwise it is Serve.
func (s *Server) ServeHTTP(l net.Listener, grpcAddr net.Addr) error {
	return s.serve(l, ListenOptions{HTTP: true, GatewayAddr: grpcAddr})
}

// ServeListener serves l as o says (see ListenOptions; Serve, ServeGRPC
// and ServeHTTP are its plaintext cases).
func (s *Server) ServeListener(l net.Listener, o ListenOptions) error {
	if o.GatewayAddr == nil {
		o.GatewayAddr = l.Addr()
	}
	return s.serve(l, o)
}

// serve serves gRPC, HTTP or both on l; the gateway dials o.GatewayAddr.
func (s *Server) serve(l net.Listener, o ListenOptions) error {
	withGRPC, withHTTP, gwAddr := o.GRPC, o.HTTP, o.GatewayAddr
	s.mu.Lock()
	if s.shutdown {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	sv := &served{l: l, done: make(chan struct{})}
	if withHTTP {
		if !s.cfg.DisableGateway {
			gwConn, err := dialSelf(gwAddr, o.GatewayCreds)
			if err != nil {
				s.mu.Unlock()
				l.Close()
				return err
			}
			sv.gwConn = gwConn
		}
		handler, err := s.httpHandler(sv.gwConn)
		if err == nil && o.TLS != nil && withGRPC {
			// As etcd: over TLS, gRPC and HTTP share one HTTP server, which
			// hands HTTP/2 gRPC requests to the gRPC server.
			handler = grpcHandlerFunc(s.grpc, handler)
		}
		if err != nil {
			s.mu.Unlock()
			if sv.gwConn != nil {
				sv.gwConn.Close()
			}
			l.Close()
			return err
		}
		sv.httpSrv = &http.Server{
			Handler:           handler,
			ErrorLog:          log.New(zapWriter{s.lg}, "", 0),
			ReadHeaderTimeout: 30 * time.Second,
			IdleTimeout:       5 * time.Minute,
			TLSConfig:         o.TLS, // nil for plaintext; l yields handshaken *tls.Conn otherwise
		}
	}
	traffic := "grpc+http"
	switch {
	case withGRPC && withHTTP && o.TLS != nil:
		traffic = "grpc+http over TLS"
	case withGRPC && withHTTP:
		sv.mux = newConnMux(l)
	case withGRPC:
		traffic = "grpc"
	default:
		traffic = "http"
	}
	if o.TLS != nil && !(withGRPC && withHTTP) {
		traffic += " over TLS"
	}
	s.listeners = append(s.listeners, sv)
	s.mu.Unlock()
	defer close(sv.done)

	s.lg.Info("serving client traffic", zap.String("address", l.Addr().String()), zap.String("traffic", traffic))
	var err error
	switch {
	case sv.mux != nil:
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			s.grpc.Serve(sv.mux.grpcL) // returns when the mux closes grpcL or on Stop
		}()
		go func() {
			defer wg.Done()
			sv.httpSrv.Serve(sv.mux.httpL)
		}()
		err = sv.mux.serve()
		if err != nil {
			sv.mux.close()
			sv.httpSrv.Close()
			if sv.gwConn != nil {
				sv.gwConn.Close()
			}
		}
		wg.Wait()
	case withGRPC && !withHTTP:
		err = s.grpc.Serve(l)
	default:
		err = sv.httpSrv.Serve(l)
		if sv.gwConn != nil && !errors.Is(err, http.ErrServerClosed) {
			sv.gwConn.Close()
		}
	}
	s.mu.Lock()
	stopping := s.shutdown
	s.mu.Unlock()
	if err == nil || errors.Is(err, http.ErrServerClosed) || stopping {
		return ErrServerClosed
	}
	s.lg.Warn("client listener failed; stopping it", zap.String("address", l.Addr().String()), zap.Error(err))
	return fmt.Errorf("api: serve: %w", err)
}

// dialSelf opens the gateway's gRPC connection to this server's own
// listener, as etcd's gateway does; it connects lazily.
func dialSelf(addr net.Addr, creds credentials.TransportCredentials) (*grpc.ClientConn, error) {
	target := "passthrough:///" + addr.String()
	if addr.Network() == "unix" {
		target = "unix://" + addr.String()
	}
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	conn, err := grpc.NewClient(target,
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(math.MaxInt32)),
	)
	if err != nil {
		return nil, fmt.Errorf("api: gateway connection: %w", err)
	}
	return conn, nil
}

// Shutdown stops accepting connections, lets in-flight HTTP requests and
// RPCs finish, and returns once every goroutine Serve started is gone.
// If ctx ends first it closes what remains at once and returns ctx's
// error. Serve then returns ErrServerClosed. Shutdown is safe to call
// more than once and before Serve.
func (s *Server) Shutdown(ctx context.Context) error {
	s.grpcHealth.Shutdown() // NOT_SERVING from now on
	s.mu.Lock()
	s.shutdown = true
	listeners := s.listeners
	s.mu.Unlock()
	if len(listeners) == 0 { // never served
		s.grpc.Stop()
		return nil
	}
	for _, sv := range listeners {
		sv.close()
	}
	var forced error
	for _, sv := range listeners {
		if sv.httpSrv == nil {
			continue
		}
		if err := sv.httpSrv.Shutdown(ctx); err != nil {
			forced = err
			sv.httpSrv.Close()
		}
		// The gateway's requests are done (or cut), so its connection can go.
		if sv.gwConn != nil {
			sv.gwConn.Close()
		}
	}
	stopped := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-ctx.Done():
		forced = ctx.Err()
		s.grpc.Stop()
		<-stopped
	}
	for _, sv := range listeners {
		<-sv.done
	}
	if forced != nil {
		return fmt.Errorf("api: shutdown cut short: %w", forced)
	}
	return nil
}

// zapWriter routes net/http's internal error log to zap at debug level
// (these are client misbehaviours, e.g. TLS or protocol errors).
type zapWriter struct{ lg *zap.Logger }

func (w zapWriter) Write(p []byte) (int, error) {
	w.lg.Debug("http server", zap.ByteString("msg", p))
	return len(p), nil
}
