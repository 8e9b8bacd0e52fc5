package main

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/url"
	"time"

	"go.uber.org/zap"

	"github.com/cairnkv/cairn/api"
	"github.com/cairnkv/cairn/config"
	"github.com/cairnkv/cairn/internal/tlsconf"
	"github.com/cairnkv/cairn/server"
)

// security is the member's TLS: the client side (--cert-file...) and the
// peer side (--peer-cert-file...). A nil side has no TLS.
type security struct {
	client, peer *tlsconf.Side
}

// newSecurity checks both sides' settings and files (making the
// self-signed certificates of --auto-tls and --peer-auto-tls in the data
// dir, as etcd does) and warns, as etcd does, about TLS settings that
// plain http URLs ignore.
func newSecurity(cfg *config.Config, lg *zap.Logger) (*security, error) {
	suites, err := cfg.CipherSuiteIDs()
	if err != nil {
		return nil, err
	}
	minV, maxV := cfg.TLSVersions()
	common := tlsconf.Common{CipherSuites: suites, MinVersion: minV, MaxVersion: maxV, SelfSignedCertValidity: cfg.SelfSignedCertValidity}
	var clientHosts, peerHosts []string
	for _, u := range append(append([]url.URL{}, cfg.ListenClientURLs...), cfg.ListenClientHTTPURLs...) {
		clientHosts = append(clientHosts, u.Host)
	}
	for _, u := range cfg.ListenPeerURLs {
		peerHosts = append(peerHosts, u.Host)
	}
	sec := &security{}
	if sec.client, err = tlsconf.New(cfg.ClientTLS, common, tlsconf.ClientFlags, "client",
		tlsconf.AutoDir(cfg.DataDir, "client"), clientHosts, lg.Named("tls")); err != nil {
		return nil, err
	}
	if sec.peer, err = tlsconf.New(cfg.PeerTLS, common, tlsconf.PeerFlags, "peer",
		tlsconf.AutoDir(cfg.DataDir, "peer"), peerHosts, lg.Named("tls")); err != nil {
		return nil, err
	}
	for _, u := range append(append([]url.URL{}, cfg.ListenClientURLs...), cfg.ListenClientHTTPURLs...) {
		if !config.IsSecureScheme(u.Scheme) {
			if sec.client.Enabled() {
				lg.Warn("scheme is http or unix while key and cert files are present; ignoring key and cert files", zap.String("client-url", u.String()))
			}
			if cfg.ClientTLS.ClientCertAuth {
				lg.Warn("scheme is http or unix while --client-cert-auth is enabled; ignoring client cert auth for this URL", zap.String("client-url", u.String()))
			}
		}
	}
	for _, u := range cfg.ListenPeerURLs {
		if !config.IsSecureScheme(u.Scheme) {
			if sec.peer.Enabled() {
				lg.Warn("scheme is HTTP while key and cert files are present; ignoring key and cert files", zap.String("peer-url", u.String()))
			}
			if cfg.PeerTLS.ClientCertAuth {
				lg.Warn("scheme is HTTP while --peer-client-cert-auth is enabled; ignoring client cert auth for this URL", zap.String("peer-url", u.String()))
			}
		}
	}
	if sec.client.Enabled() {
		lg.Info("starting with client TLS", zap.Bool("client-cert-auth", cfg.ClientTLS.ClientCertAuth),
			zap.String("trusted-ca-file", cfg.ClientTLS.TrustedCAFile), zap.Strings("cipher-suites", cfg.CipherSuites))
	}
	if sec.peer.Enabled() {
		lg.Info("starting with peer TLS", zap.Bool("peer-client-cert-auth", cfg.PeerTLS.ClientCertAuth),
			zap.String("peer-trusted-ca-file", cfg.PeerTLS.TrustedCAFile), zap.Strings("cipher-suites", cfg.CipherSuites))
	}
	return sec, nil
}

// wrap puts side's TLS on the listeners whose URL is https or unixs.
func wrapTLS(side *tlsconf.Side, ls []net.Listener, us []url.URL) []net.Listener {
	out := make([]net.Listener, len(ls))
	for i, l := range ls {
		out[i] = l
		if config.IsSecureScheme(us[i].Scheme) && side.Enabled() {
			out[i] = side.Listener(l)
		}
	}
	return out
}

// peerHTTPClient fetches from peer URLs (join discovery, the hash check):
// https ones with the peer side's TLS (its certificate, its trusted CA,
// read per connection), never in plaintext.
func (sec *security) peerHTTPClient(timeout time.Duration) *http.Client {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     90 * time.Second,
	}
	if sec.peer.Enabled() {
		tr.DialTLSContext = sec.peer.DialContext
	}
	return &http.Client{Transport: tr, Timeout: timeout}
}

// leaderCreds are what a follower dials the leader's https client URL
// with: the client side's TLS, as etcd's forwarding does.
func (sec *security) leaderCreds() server.ClientCredentials {
	if !sec.client.Enabled() {
		return nil
	}
	return sec.client.GRPCCredentials()
}

// peerDialTLS dials https peer URLs for the raft transport; nil without
// peer TLS.
func (sec *security) peerDialTLS() func(ctx context.Context, network, addr string) (net.Conn, error) {
	if !sec.peer.Enabled() {
		return nil
	}
	return sec.peer.DialContext
}

// clientListenOptions are what the client listener on u serves; the JSON
// gateway dials gw (the first --listen-client-urls) with TLS if gwURL is
// https.
func (sec *security) clientListenOptions(u url.URL, grpcSide, httpSide bool, gw net.Addr, gwURL url.URL) api.ListenOptions {
	o := api.ListenOptions{GRPC: grpcSide, HTTP: httpSide, GatewayAddr: gw}
	if config.IsSecureScheme(u.Scheme) && sec.client.Enabled() {
		o.TLS = sec.client.ServerConfig()
	}
	if config.IsSecureScheme(gwURL.Scheme) && sec.client.Enabled() {
		o.GatewayCreds = sec.client.SelfGRPCCredentials()
	}
	return o
}

// serverTLS is the http.Server TLSConfig for a listener on u made by
// wrapTLS (it lets net/http speak HTTP/2 on it); nil for plain URLs.
func serverTLS(side *tlsconf.Side, u url.URL) *tls.Config {
	if config.IsSecureScheme(u.Scheme) && side.Enabled() {
		return side.ServerConfig()
	}
	return nil
}
