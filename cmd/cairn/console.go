package main

import (
	"fmt"
	"net"
	"net/http"
	"net/url"

	"github.com/cairnkv/cairn/config"
	"github.com/cairnkv/cairn/console"
	"github.com/cairnkv/cairn/version"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// webConsole is the web console with --enable-console (docs/console.md),
// else nil. It asks this member over its first client listener, with TLS
// if that URL is https (as the gateway does), and the other members over
// their client URLs with the credentials a follower forwards to the
// leader with.
type webConsole struct {
	*console.Console
	self    *grpc.ClientConn
	gateway bool // the client URLs serve the JSON gateway (--enable-grpc-gateway)
}

func newWebConsole(cfg *config.Config, sec *security, self uint64, clientLn net.Listener, reg prometheus.Gatherer, lg *zap.Logger) (*webConsole, error) {
	if !cfg.EnableConsole {
		return nil, nil
	}
	var selfCreds credentials.TransportCredentials = insecure.NewCredentials()
	if config.IsSecureScheme(cfg.ListenClientURLs[0].Scheme) && sec.client.Enabled() {
		selfCreds = sec.client.SelfGRPCCredentials()
	}
	target := "passthrough:///" + clientLn.Addr().String()
	if clientLn.Addr().Network() == "unix" {
		target = "unix://" + clientLn.Addr().String()
	}
	selfConn, err := grpc.NewClient(target, grpc.WithTransportCredentials(selfCreds))
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	c, err := console.New(console.Config{
		ReadOnly: cfg.ConsoleReadOnly, Gatherer: reg, Self: selfConn, SelfID: self,
		Version: version.Cairn, Logger: lg.Named("console"),
		Dial: func(clientURL string) (grpc.ClientConnInterface, error) {
			u, err := url.Parse(clientURL)
			if err != nil {
				return nil, err
			}
			target, creds := u.Host, credentials.TransportCredentials(insecure.NewCredentials())
			if u.Scheme == "unix" || u.Scheme == "unixs" {
				target = "unix://" + u.Host + u.Path
			}
			if u.Scheme == "https" || u.Scheme == "unixs" {
				if creds = sec.leaderCreds(); creds == nil {
					creds = credentials.NewClientTLSFromCert(nil, "")
				}
			}
			return grpc.NewClient(target, grpc.WithTransportCredentials(creds))
		},
	})
	if err != nil {
		selfConn.Close()
		return nil, err
	}
	lg.Info("web console enabled", zap.String("path", console.Prefix), zap.Bool("read-only", cfg.ConsoleReadOnly))
	return &webConsole{Console: c, self: selfConn, gateway: cfg.EnableGRPCGateway}, nil
}

// handler is what api.Config.Console takes: nil without the console.
// Without the gateway (--enable-grpc-gateway=false) the client URLs serve
// the console as the metrics URLs do: cluster and charts only.
func (w *webConsole) handler() http.Handler {
	if w == nil {
		return nil
	}
	if !w.gateway {
		return w.MetricsHandler()
	}
	return w.Handler()
}

// withMetrics serves the console beside what the metrics URLs serve.
func (w *webConsole) withMetrics(h http.Handler) http.Handler {
	if w == nil {
		return h
	}
	mux := http.NewServeMux()
	mux.Handle(console.Prefix, w.MetricsHandler())
	mux.Handle("/", h)
	return mux
}

func (w *webConsole) close() {
	if w == nil {
		return
	}
	w.Close()
	w.self.Close()
}
