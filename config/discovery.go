package config

import (
	"errors"
	"slices"
	"strings"
	"time"
)

// Discovery is etcd 3.7's v3 discovery (--discovery-*): a new cluster's
// members find each other through an existing etcd-API cluster
// (cmd/cairn/discovery.go).
type Discovery struct {
	Token     string
	Endpoints []string
	// DialTimeout, RequestTimeout, KeepAliveTime and KeepAliveTimeout of
	// the client of the discovery service.
	DialTimeout      time.Duration
	RequestTimeout   time.Duration
	KeepAliveTime    time.Duration
	KeepAliveTimeout time.Duration
	// InsecureTransport dials without TLS (etcd's default) unless a
	// certificate or CA is given; InsecureSkipVerify skips the server's
	// certificate check.
	InsecureTransport  bool
	InsecureSkipVerify bool
	Cert, Key, CACert  string
	// User and Password authenticate to the discovery service.
	User, Password string
}

// Enabled reports whether the member bootstraps through v3 discovery.
func (d Discovery) Enabled() bool { return len(d.Endpoints) > 0 }

// Defaults of etcd 3.7's --discovery-* flags.
const (
	DefaultDiscoveryDialTimeout      = 2 * time.Second
	DefaultDiscoveryRequestTimeout   = 5 * time.Second
	DefaultDiscoveryKeepAliveTime    = 2 * time.Second
	DefaultDiscoveryKeepAliveTimeout = 6 * time.Second
)

func defaultDiscovery() Discovery {
	return Discovery{
		DialTimeout: DefaultDiscoveryDialTimeout, RequestTimeout: DefaultDiscoveryRequestTimeout,
		KeepAliveTime: DefaultDiscoveryKeepAliveTime, KeepAliveTimeout: DefaultDiscoveryKeepAliveTimeout,
		InsecureTransport: true,
	}
}

// withDiscovery puts the --discovery-* options before --discovery-fallback,
// where etcd's --help lists them.
func withDiscovery(opts []option) []option {
	i := slices.IndexFunc(opts, func(o option) bool { return o.name == "discovery-fallback" })
	if i < 0 {
		i = len(opts)
	}
	return slices.Insert(opts, i, discoveryOptions()...)
}

func discoveryOptions() []option {
	str := func(name, help string, field func(d *Discovery) *string) option {
		return option{name: name, group: groupClustering, def: "", help: help,
			set: func(c *Config, v string) error { *field(&c.Discovery) = v; return nil }}
	}
	dur := func(name, def, help string, field func(d *Discovery) *time.Duration) option {
		return option{name: name, group: groupClustering, def: def, help: help, yamlNanos: true,
			set: func(c *Config, v string) error {
				d, err := time.ParseDuration(strings.TrimSpace(v))
				if err != nil {
					return errors.New("want a duration such as 2s")
				}
				*field(&c.Discovery) = d
				return nil
			}}
	}
	boolean := func(name, def, help string, field func(d *Discovery) *bool) option {
		return option{name: name, group: groupClustering, def: def, help: help, isBool: true,
			set: setBool(func(c *Config) *bool { return field(&c.Discovery) })}
	}
	return []option{
		str("discovery-token", "V3 discovery: discovery token for the etcd cluster to be bootstrapped.",
			func(d *Discovery) *string { return &d.Token }),
		{name: "discovery-endpoints", group: groupClustering, def: "", help: "V3 discovery: List of gRPC endpoints of the discovery service.",
			set: func(c *Config, v string) error {
				c.Discovery.Endpoints = nil
				if strings.TrimSpace(v) == "" {
					return nil
				}
				for _, ep := range strings.Split(v, ",") {
					if !slices.Contains(c.Discovery.Endpoints, ep) { // etcd keeps unique values
						c.Discovery.Endpoints = append(c.Discovery.Endpoints, ep)
					}
				}
				return nil
			}},
		dur("discovery-dial-timeout", "2s", "V3 discovery: dial timeout for client connections.",
			func(d *Discovery) *time.Duration { return &d.DialTimeout }),
		dur("discovery-request-timeout", "5s", "V3 discovery: timeout for discovery requests (excluding dial timeout).",
			func(d *Discovery) *time.Duration { return &d.RequestTimeout }),
		dur("discovery-keepalive-time", "2s", "V3 discovery: keepalive time for client connections.",
			func(d *Discovery) *time.Duration { return &d.KeepAliveTime }),
		dur("discovery-keepalive-timeout", "6s", "V3 discovery: keepalive timeout for client connections.",
			func(d *Discovery) *time.Duration { return &d.KeepAliveTimeout }),
		boolean("discovery-insecure-transport", "true", "V3 discovery: disable transport security for client connections.",
			func(d *Discovery) *bool { return &d.InsecureTransport }),
		boolean("discovery-insecure-skip-tls-verify", "false", "V3 discovery: skip server certificate verification (CAUTION: this option should be enabled only for testing purposes).",
			func(d *Discovery) *bool { return &d.InsecureSkipVerify }),
		str("discovery-cert", "V3 discovery: identify secure client using this TLS certificate file.",
			func(d *Discovery) *string { return &d.Cert }),
		str("discovery-key", "V3 discovery: identify secure client using this TLS key file.",
			func(d *Discovery) *string { return &d.Key }),
		str("discovery-cacert", "V3 discovery: verify certificates of TLS-enabled secure servers using this CA bundle.",
			func(d *Discovery) *string { return &d.CACert }),
		str("discovery-user", "V3 discovery: username for authentication (etcd 3.7 takes the value whole: a \":password\" in it is part of the name).",
			func(d *Discovery) *string { return &d.User }),
		str("discovery-password", "V3 discovery: password for authentication.",
			func(d *Discovery) *string { return &d.Password }),
	}
}

// errConflictBootstrapFlags is etcd's ErrConflictBootstrapFlags.
var errConflictBootstrapFlags = errors.New(`multiple discovery or bootstrap flags are set. Choose one of "initial-cluster", "discovery-endpoints" or "discovery-srv"`)

// prepareDiscovery checks the --discovery-* flags as etcd does and, when
// discovery is on, replaces the default --initial-cluster with etcd's
// temporary one-member cluster (this member's name and advertised peer
// URLs), which discovery completes at start. It runs before
// validateCluster.
func (c *Config) prepareDiscovery() error {
	d := c.Discovery
	_, explicitCluster := c.origin["initial-cluster"]
	if d.Enabled() && explicitCluster {
		return errConflictBootstrapFlags
	}
	if (d.Token != "") != d.Enabled() {
		return errors.New("both --discovery-token and --discovery-endpoints must be set")
	}
	for _, ep := range d.Endpoints {
		if strings.TrimSpace(ep) == "" {
			return errors.New("--discovery-endpoints must not contain empty endpoints")
		}
	}
	if !d.Enabled() {
		return nil
	}
	self := Member{Name: c.Name}
	for _, u := range c.InitialAdvertisePeerURLs {
		self.PeerURLs = append(self.PeerURLs, u.String())
	}
	c.InitialCluster = []Member{self}
	// As etcd, the discovery token is the cluster token: member and
	// cluster IDs derive from it.
	c.InitialClusterToken = d.Token
	return nil
}
