// Command cairn is the Cairn server: an etcd v3 compatible key-value store.
// It takes etcd's flags, ETCD_* environment variables and YAML config file.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/cairnkv/cairn/api"
	"github.com/cairnkv/cairn/config"
	"github.com/cairnkv/cairn/node"
	"github.com/cairnkv/cairn/server"
	"github.com/cairnkv/cairn/transport"
	"github.com/cairnkv/cairn/version"
)

func main() {
	if err := run(os.Args[1:], os.Environ()); err != nil {
		fmt.Fprintf(os.Stderr, "cairn: %v\n", err)
		os.Exit(2)
	}
}

func run(args, environ []string) error {
	cfg, err := config.Parse(args, environ)
	switch {
	case errors.Is(err, config.ErrHelp):
		fmt.Print(config.Usage())
		return nil
	case errors.Is(err, config.ErrVersion):
		fmt.Printf("cairn Version: %s\nGit Version: %s\netcd API Version: %s\nGo Version: %s\nGo OS/Arch: %s/%s\n",
			version.Cairn, version.Describe(), version.Etcd, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return nil
	case err != nil:
		return err
	}
	lg, err := newLogger(cfg)
	if err != nil {
		return err
	}
	defer func() { _ = lg.Sync() }()
	for _, w := range cfg.Warnings {
		lg.Warn(w)
	}
	// Registered before start: a signal during WAL replay or discovery is
	// held until the member is up, then shuts it down cleanly.
	sigc := make(chan os.Signal, 2)
	signal.Notify(sigc, syscall.SIGINT, syscall.SIGTERM)
	dctx, stopDiscovery := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err = bootstrapByDiscovery(dctx, cfg, lg)
	stopDiscovery()
	if err != nil {
		return err
	}
	d, err := start(cfg, lg)
	if errors.Is(err, node.ErrRemoved) {
		// Its data dir records its own removal: etcd's two warnings, then
		// exit status 0, as when it learns of its removal while running.
		lg.Warn("server error", zap.Error(err))
		lg.Warn("data-dir used by this member must be removed")
		return nil
	}
	if err != nil {
		// main prints err on stderr; a log kept elsewhere says it too,
		// so that it tells why the member stopped.
		if !logsToStderr(cfg) {
			lg.Error("cannot start", zap.Error(err))
		}
		return err
	}
	select {
	case sig := <-sigc:
		lg.Info("received signal, shutting down", zap.String("signal", sig.String()))
		go func() {
			sig := <-sigc
			lg.Warn("second signal: exiting without a clean shutdown", zap.String("signal", sig.String()))
			os.Exit(1)
		}()
		d.stop()
		return nil
	case <-d.srv.Done():
		d.stop()
		if err := d.srv.Err(); errors.Is(err, node.ErrRemoved) {
			// As etcd: the two warnings, then exit status 0.
			lg.Warn("server error", zap.Error(err))
			lg.Warn("data-dir used by this member must be removed")
			return nil
		} else if err != nil {
			return fmt.Errorf("member stopped: %w", err)
		}
		return nil
	case err := <-d.errc:
		d.stop()
		return err
	}
}

// logsToStderr reports whether the log goes to stderr (etcd's "default"
// is stderr).
func logsToStderr(cfg *config.Config) bool {
	for _, o := range cfg.LogOutputs {
		if o == "default" || o == "stderr" || o == "/dev/stderr" {
			return true
		}
	}
	return false
}

func newLogger(cfg *config.Config) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(cfg.LogLevel)
	if err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	zc := zap.NewProductionConfig()
	zc.Level = zap.NewAtomicLevelAt(lvl)
	zc.Sampling = nil
	zc.EncoderConfig.EncodeTime = zapcore.RFC3339NanoTimeEncoder
	if cfg.LogFormat == "console" {
		zc.Encoding = "console"
	}
	if len(cfg.LogOutputs) > 0 {
		zc.OutputPaths = nil
		for _, o := range cfg.LogOutputs {
			if o == "default" { // etcd's "default" is stderr
				o = "stderr"
			}
			zc.OutputPaths = append(zc.OutputPaths, o)
		}
	}
	return zc.Build()
}

// daemon is a running member: the node, its listeners and servers.
type daemon struct {
	lg      *zap.Logger
	srv     *server.Server
	api     *api.Server
	peers   []*http.Server
	metrics []*http.Server // --listen-metrics-urls
	console *webConsole    // --enable-console; nil without
	clients []net.Listener
	errc    chan error
}

func urlStrings(us []url.URL) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = u.String()
	}
	return out
}

func start(cfg *config.Config, lg *zap.Logger) (*daemon, error) {
	token := cfg.InitialClusterToken
	var members []node.Member
	var self uint64
	for _, m := range cfg.InitialCluster {
		id := node.MemberID(m.PeerURLs, token)
		members = append(members, node.Member{ID: id, Name: m.Name, PeerURLs: m.PeerURLs})
		if m.Name == cfg.Name {
			self = id
		}
	}
	walDir := cfg.WALDir
	if walDir == "" {
		walDir = node.WALDir(cfg.DataDir)
	}
	if self == 0 {
		return nil, fmt.Errorf("--name %q is not in --initial-cluster %q", cfg.Name, config.FormatInitialCluster(cfg.InitialCluster))
	}
	ids := make([]uint64, len(members))
	for i, m := range members {
		ids[i] = m.ID
	}
	clusterID := node.ClusterID(ids, token)
	if id, err := discoveredClusterID(cfg, walDir); err != nil {
		return nil, err
	} else if id != 0 {
		clusterID = id
	}
	// A member started with --initial-cluster-state existing is who its
	// WAL says (see walIdentity). With new, the flags must give the WAL's
	// member: a data dir of another cluster (another token, other peers)
	// is refused rather than joined by mistake.
	if id, cid, ok := walIdentity(walDir); ok && id != self && cfg.InitialClusterState == config.ClusterStateExisting {
		self, clusterID = id, cid
	}
	sec, err := newSecurity(cfg, lg)
	if err != nil {
		return nil, err
	}
	join := false
	_, walErr := os.Stat(walDir)
	if err := walErr; err != nil && cfg.InitialClusterState == config.ClusterStateExisting {
		// A new member of a running cluster: learn the cluster's ID,
		// members and this member's ID from the others.
		clusterID, self, members, err = discover(cfg, urlStrings(cfg.InitialAdvertisePeerURLs), sec.peerHTTPClient(3*time.Second))
		if err != nil {
			return nil, err
		}
		join = true
	}

	// Listen before opening state, so a bad address fails fast and clean.
	lc := listenConfig(cfg.SocketReuseAddress, cfg.SocketReusePort)
	peerLns, err := listenAll(lc, cfg.ListenPeerURLs, "--listen-peer-urls")
	if err != nil {
		return nil, err
	}
	clientLns, err := listenAll(lc, cfg.ListenClientURLs, "--listen-client-urls")
	if err != nil {
		closeAll(peerLns)
		return nil, err
	}
	metricsLns, err := listenAll(lc, cfg.ListenMetricsURLs, "--listen-metrics-urls")
	if err != nil {
		closeAll(peerLns)
		closeAll(clientLns)
		return nil, err
	}
	httpLns, err := listenAll(lc, cfg.ListenClientHTTPURLs, "--listen-client-http-urls")
	if err != nil {
		closeAll(peerLns)
		closeAll(clientLns)
		closeAll(metricsLns)
		return nil, err
	}
	closeListeners := func() {
		for _, ls := range [][]net.Listener{peerLns, clientLns, metricsLns, httpLns} {
			closeAll(ls)
		}
	}
	peerLns = wrapTLS(sec.peer, peerLns, cfg.ListenPeerURLs)
	clientLns = wrapTLS(sec.client, clientLns, cfg.ListenClientURLs)
	metricsLns = wrapTLS(sec.client, metricsLns, cfg.ListenMetricsURLs)
	httpLns = wrapTLS(sec.client, httpLns, cfg.ListenClientHTTPURLs)
	if err := checkDirs(cfg.DataDir, walDir); err != nil {
		closeListeners()
		return nil, err
	}
	var autoCompact server.AutoCompaction
	if cfg.AutoCompactionRetention != "" && cfg.AutoCompactionRetention != "0" {
		_, retention, revisions, err := cfg.AutoCompaction()
		if err != nil {
			closeListeners()
			return nil, err
		}
		autoCompact = server.AutoCompaction{Retention: retention, Revisions: revisions}
	}
	quota, quotaOn := cfg.BackendQuota()
	if !quotaOn {
		quota = 0
	}
	core := node.Config{
		Name: cfg.Name, ID: self, ClusterID: clusterID, ClusterToken: token, InitialMembers: members, Join: join,
		DataDir: cfg.DataDir, WALDir: cfg.WALDir, Logger: lg,
		ElectionTicks:          int(cfg.ElectionTimeout / cfg.HeartbeatInterval),
		HeartbeatTicks:         1,
		SnapshotCount:          cfg.SnapshotCount,
		SnapshotCatchUpEntries: cfg.SnapshotCatchUpEntries,
		MaxRequestBytes:        int(cfg.MaxRequestBytes) + 512*1024,
		BackendBatchInterval:   cfg.BackendBatchInterval,
		BackendBatchLimit:      cfg.BackendBatchLimit,
		TickInterval:           cfg.HeartbeatInterval,
		Bugs:                   plantedBugs(),
	}
	applyCoreFlags(&core, cfg)
	plantStorageBugs(&core)
	core.ForceNewCluster = cfg.ForceNewCluster
	if cfg.UnsafeNoFsync {
		lg.Warn("--unsafe-no-fsync: the WAL and the backend are never fsynced; a crash of the machine will lose acknowledged writes")
	}
	var tr *transport.HTTP
	var knownMembers func(context.Context) ([]node.Member, error) // set once srv exists, before peers are served
	srv, err := server.New(server.Config{
		Core:                 core,
		ClientURLs:           urlStrings(cfg.AdvertiseClientURLs),
		QuotaBackendBytes:    quota,
		MaxLearners:          cfg.MaxLearners,
		AutoCompaction:       autoCompact,
		CompactHashCheckTime: compactHashCheckTime(cfg),
		WarningApplyDuration: cfg.WarningApplyDuration,
		StrictReconfigCheck:  cfg.StrictReconfigCheck,
		AuthToken:            cfg.AuthToken,
		AuthTokenTTL:         time.Duration(cfg.AuthTokenTTL) * time.Second,
		BcryptCost:           int(cfg.BcryptCost),
		ClientCertAuth:       cfg.ClientTLS.ClientCertAuth,
		PeerClient:           sec.peerHTTPClient(0),
		ClientCreds:          sec.leaderCreds(),
		VersionCheckInterval: server.DefaultVersionCheckInterval,
	}, func(h transport.Handler) transport.Transport {
		tr = transport.NewHTTP(transport.HTTPConfig{ID: self, ClusterID: clusterID, Handler: h, Logger: lg.Named("transport"),
			DialTLS: sec.peerDialTLS(), OnAppend: v2AppendObserver(cfg),
			VerifyMember: verifyMember(func(ctx context.Context) ([]node.Member, error) {
				if knownMembers == nil {
					return nil, errors.New("not started")
				}
				return knownMembers(ctx)
			},
				sec.peerHTTPClient(3*time.Second), self, clusterID)})
		return tr
	})
	if err != nil {
		closeListeners()
		return nil, explainStartError(err, cfg)
	}
	knownMembers = srv.Members
	if walErr != nil && !join {
		// A new cluster's members learn each other when they apply its
		// first entries; until then the peer listener must already know
		// them, since it refuses non-members.
		for _, m := range members {
			if m.ID != self {
				tr.AddPeer(m.ID, m.PeerURLs)
			}
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	srv.RegisterMetrics(reg)
	reg.MustRegister(featureGatesMetric(cfg.FeatureGates))
	webc, err := newWebConsole(cfg, sec, self, clientLns[0], reg, lg)
	if err != nil {
		srv.Stop()
		closeListeners()
		return nil, err
	}
	apiSrv, err := api.New(api.Config{
		Backend: srv, Logger: lg.Named("api"),
		MaxRequestBytes: int(cfg.MaxRequestBytes), MaxTxnOps: int(cfg.MaxTxnOps),
		ServerVersion: version.Etcd, ClusterVersion: version.EtcdCluster, CairnVersion: version.Cairn, GitVersion: version.GitVersion(),
		Registry: reg, EnablePprof: cfg.EnablePprof, MetricsExtensive: cfg.Metrics == "extensive",
		V2:                   v2Handler(cfg, srv, lg),
		Console:              webc.handler(),
		GRPCKeepAliveMinTime: cfg.GRPCKeepAliveMinTime, GRPCKeepAliveInterval: cfg.GRPCKeepAliveInterval, GRPCKeepAliveTimeout: cfg.GRPCKeepAliveTimeout,
		WarningUnaryRequestDuration: cfg.WarningUnaryRequestDuration,
		MaxConcurrentStreams:        cfg.MaxConcurrentStreams,
		DisableGateway:              !cfg.EnableGRPCGateway,
		StopGRPCServiceOnDefrag:     cfg.FeatureGates.Enabled(config.GateStopGRPCServiceOnDefrag),
		Lease:                       api.NewLeaseServer(srv, lg.Named("lease")),
		Auth:                        api.NewAuthServer(srv),
		AuthGate:                    srv,
		Watch:                       api.NewWatchServer(api.StoreWatchBackend(srv.KV(), srv), api.WatchConfig{ProgressNotifyInterval: cfg.WatchProgressNotifyInterval, MaxRequestBytes: int(cfg.MaxRequestBytes), Logger: lg.Named("watch"), Permitted: srv.AuthWatchPermitted}),
	})
	if err != nil {
		webc.close()
		srv.Stop()
		closeListeners()
		return nil, err
	}
	d := &daemon{lg: lg, srv: srv, api: apiSrv, console: webc, clients: clientLns, errc: make(chan error, len(peerLns)+len(clientLns)+len(metricsLns)+len(httpLns))}
	peerMux := http.NewServeMux()
	peerMux.Handle("/", tr.Handler())
	peerMux.Handle(membersPath, membersHandler(srv))
	peerMux.Handle(server.HashKVPath, srv.HashKVHandler())
	peerMux.Handle(server.LeaseRenewPath, srv.LeasePeerHandler())
	peerMux.Handle(server.LeaseTimeToLivePath, srv.LeasePeerHandler())
	peerMux.Handle(server.MemberPromotePath, srv.PromotePeerHandler())
	for i, l := range peerLns {
		hs := &http.Server{Handler: peerMux, ReadHeaderTimeout: 10 * time.Second, TLSConfig: serverTLS(sec.peer, cfg.ListenPeerURLs[i]),
			ErrorLog: log.New(io.Discard, "", 0)} // as etcd: peers' protocol errors are not logged
		d.peers = append(d.peers, hs)
		go func(l net.Listener) {
			if err := hs.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				d.errc <- fmt.Errorf("peer listener %s: %w", l.Addr(), err)
			}
		}(l)
	}
	srv.Start()
	// As etcd: with --listen-client-http-urls, the client URLs serve gRPC
	// only and the HTTP side (the gateway forwarding to the first client
	// URL, the probes, /version, /metrics) is on the HTTP URLs alone.
	for i, l := range clientLns {
		o := sec.clientListenOptions(cfg.ListenClientURLs[i], true, len(httpLns) == 0, l.Addr(), cfg.ListenClientURLs[i])
		go func(l net.Listener) {
			if err := apiSrv.ServeListener(l, o); err != nil && !errors.Is(err, api.ErrServerClosed) {
				d.errc <- fmt.Errorf("client listener %s: %w", l.Addr(), err)
			}
		}(l)
	}
	for i, l := range httpLns {
		o := sec.clientListenOptions(cfg.ListenClientHTTPURLs[i], false, true, clientLns[0].Addr(), cfg.ListenClientURLs[0])
		go func(l net.Listener) {
			if err := apiSrv.ServeListener(l, o); err != nil && !errors.Is(err, api.ErrServerClosed) {
				d.errc <- fmt.Errorf("client HTTP listener %s: %w", l.Addr(), err)
			}
		}(l)
	}
	// As etcd: /metrics and the probes, plain HTTP, on each metrics URL.
	metricsHandler := webc.withMetrics(apiSrv.MetricsHandler())
	for i, l := range metricsLns {
		hs := &http.Server{Handler: metricsHandler, ReadHeaderTimeout: 10 * time.Second, TLSConfig: serverTLS(sec.client, cfg.ListenMetricsURLs[i])}
		d.metrics = append(d.metrics, hs)
		go func(l net.Listener) {
			if err := hs.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				d.errc <- fmt.Errorf("metrics listener %s: %w", l.Addr(), err)
			}
		}(l)
		lg.Info("serving metrics", zap.String("address", l.Addr().String()))
	}
	lg.Info("cairn serving",
		zap.String("name", cfg.Name), zap.String("member-id", fmt.Sprintf("%x", self)),
		zap.String("cluster-id", fmt.Sprintf("%x", clusterID)), zap.String("version", version.Cairn), zap.String("git", version.Describe()),
		zap.String("etcd-api", version.Etcd), zap.Strings("client-urls", urlStrings(cfg.ListenClientURLs)),
		zap.Strings("peer-urls", urlStrings(cfg.ListenPeerURLs)), zap.String("data-dir", cfg.DataDir))
	if ok, err := config.NotifyReady(os.Environ()); err != nil {
		lg.Warn("systemd notify failed", zap.Error(err))
	} else if ok {
		lg.Info("notified systemd: ready")
	}
	return d, nil
}

func (d *daemon) stop() {
	// In-flight unary calls get a moment to finish; watch and keep-alive
	// streams never end by themselves, so they are cut after it (clients
	// reconnect elsewhere).
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := d.api.Shutdown(ctx); err != nil {
		d.lg.Warn("shutting down client API", zap.Error(err))
	}
	for _, m := range d.metrics {
		_ = m.Shutdown(ctx)
	}
	d.console.close()
	d.srv.Stop()
	for _, p := range d.peers {
		_ = p.Shutdown(ctx)
	}
	d.lg.Info("cairn stopped")
}

// listenAll listens on every URL; a failure names the flag and the address.
func listenAll(lc *net.ListenConfig, us []url.URL, flag string) ([]net.Listener, error) {
	var out []net.Listener
	ctx := context.Background()
	for _, u := range us {
		var l net.Listener
		var err error
		switch u.Scheme {
		case "unix", "unixs":
			l, err = lc.Listen(ctx, "unix", u.Host+u.Path)
		default: // http, https (TLS is put on by wrapTLS)
			l, err = lc.Listen(ctx, "tcp", u.Host)
		}
		if err != nil {
			closeAll(out)
			return nil, fmt.Errorf("%s: cannot listen on %s: %s", flag, u.String(), strings.TrimPrefix(err.Error(), "listen tcp "+u.Host+": "))
		}
		out = append(out, l)
	}
	return out, nil
}

func closeAll(ls []net.Listener) {
	for _, l := range ls {
		_ = l.Close()
	}
}
