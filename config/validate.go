package config

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Validate checks c the way etcd checks its configuration before starting.
// It returns the first problem found as a single line that names the flag
// (or the ETCD_* variable or config file key it came from) and the bad
// value, suitable for printing as "cairn: <error>".
func (c *Config) Validate() error {
	for _, l := range []struct {
		name string
		urls []url.URL
		bind bool
	}{
		{"listen-peer-urls", c.ListenPeerURLs, true},
		{"listen-client-urls", c.ListenClientURLs, true},
		{"listen-client-http-urls", c.ListenClientHTTPURLs, true},
		{"listen-metrics-urls", c.ListenMetricsURLs, true},
		{"initial-advertise-peer-urls", c.InitialAdvertisePeerURLs, false},
		{"advertise-client-urls", c.AdvertiseClientURLs, false},
	} {
		for _, u := range l.urls {
			check := checkURL
			if l.bind {
				check = checkBindURL
			}
			if err := check(u); err != nil {
				return fmt.Errorf("invalid value %q for %s: %w", formatURLs(l.urls), c.where(l.name), err)
			}
		}
	}
	for _, h := range c.ListenClientHTTPURLs {
		for _, g := range c.ListenClientURLs {
			if h.Host == g.Host && h.Path == g.Path {
				return fmt.Errorf("cannot bind both %s and %s on the same url %s", c.where("listen-client-urls"), c.where("listen-client-http-urls"), h.String())
			}
		}
	}
	if len(c.ListenClientHTTPURLs) > 0 && len(c.ListenClientURLs) == 0 {
		return fmt.Errorf("%s needs a %s to serve gRPC (the JSON gateway forwards to it)", c.where("listen-client-http-urls"), c.where("listen-client-urls"))
	}
	if len(c.ListenClientURLs) > 0 && len(c.AdvertiseClientURLs) == 0 {
		return fmt.Errorf("%s is required when %s (%q) is set explicitly",
			c.where("advertise-client-urls"), c.where("listen-client-urls"), formatURLs(c.ListenClientURLs))
	}

	if err := c.prepareDiscovery(); err != nil {
		return err
	}
	if err := c.validateCluster(); err != nil {
		return err
	}
	if err := c.validateTLS(); err != nil {
		return err
	}

	if c.HeartbeatInterval <= 0 {
		return fmt.Errorf("invalid value %q for %s: must be a positive number of milliseconds",
			millis(c.HeartbeatInterval), c.where("heartbeat-interval"))
	}
	if c.ElectionTimeout <= 0 {
		return fmt.Errorf("invalid value %q for %s: must be a positive number of milliseconds",
			millis(c.ElectionTimeout), c.where("election-timeout"))
	}
	if c.ElectionTimeout < 5*c.HeartbeatInterval {
		return fmt.Errorf("invalid value %q for %s: must be at least 5 times %s (%s ms)",
			millis(c.ElectionTimeout), c.where("election-timeout"), c.where("heartbeat-interval"), millis(c.HeartbeatInterval))
	}
	if c.ElectionTimeout > MaxElectionTimeout {
		return fmt.Errorf("invalid value %q for %s: must not exceed %s ms",
			millis(c.ElectionTimeout), c.where("election-timeout"), millis(MaxElectionTimeout))
	}

	if c.MaxRequestBytes == 0 {
		return fmt.Errorf("invalid value \"0\" for %s: must be at least 1", c.where("max-request-bytes"))
	}
	if err := oneOf(c, "log-level", c.LogLevel, []string{"debug", "info", "warn", "error", "panic", "fatal"}); err != nil {
		return err
	}
	if err := oneOf(c, "log-format", c.LogFormat, []string{"json", "console"}); err != nil {
		return err
	}
	if err := oneOf(c, "metrics", c.Metrics, []string{"basic", "extensive"}); err != nil {
		return err
	}
	if _, _, _, err := c.AutoCompaction(); err != nil {
		return err
	}
	if kind, _, _ := strings.Cut(c.AuthToken, ","); kind != "simple" && kind != "jwt" {
		return fmt.Errorf("invalid value %q for %s: the token type must be \"simple\" or \"jwt\"", c.AuthToken, c.where("auth-token"))
	}
	if c.BcryptCost < 4 || c.BcryptCost > 31 {
		return fmt.Errorf("invalid value \"%d\" for %s: must be between 4 and 31", c.BcryptCost, c.where("bcrypt-cost"))
	}
	if c.WatchProgressNotifyInterval <= 0 {
		return fmt.Errorf("invalid value %q for %s: must be a positive duration",
			c.WatchProgressNotifyInterval, c.where("watch-progress-notify-interval"))
	}
	if c.CompactHashCheckTime <= 0 { // etcd: "--compact-hash-check-time must be >0"
		return fmt.Errorf("invalid value %q for %s: must be >0", c.CompactHashCheckTime, c.where("compact-hash-check-time"))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"backend-batch-interval", c.BackendBatchInterval},
		{"grpc-keepalive-min-time", c.GRPCKeepAliveMinTime},
		{"grpc-keepalive-interval", c.GRPCKeepAliveInterval},
		{"grpc-keepalive-timeout", c.GRPCKeepAliveTimeout},
	} {
		if d.v < 0 {
			return fmt.Errorf("invalid value %q for %s: must not be negative", d.v, c.where(d.name))
		}
	}
	if c.BackendBatchLimit < 0 {
		return fmt.Errorf("invalid value \"%d\" for %s: must not be negative", c.BackendBatchLimit, c.where("backend-batch-limit"))
	}
	if c.CompactionBatchLimit <= 0 {
		return fmt.Errorf("invalid value \"%d\" for %s: must be at least 1",
			c.CompactionBatchLimit, c.where("compaction-batch-limit"))
	}
	return nil
}

// validateCluster checks --initial-cluster-state and, for a new cluster,
// that this member is in --initial-cluster with exactly its
// --initial-advertise-peer-urls. For "existing" the list is only used to
// find peers, and a restarted member ignores it, so it is not checked here.
func (c *Config) validateCluster() error {
	if c.InitialClusterState != ClusterStateNew && c.InitialClusterState != ClusterStateExisting {
		return fmt.Errorf("invalid value %q for %s: want %q or %q",
			c.InitialClusterState, c.where("initial-cluster-state"), ClusterStateNew, ClusterStateExisting)
	}
	cluster := FormatInitialCluster(c.InitialCluster)
	seen := make(map[string]bool)
	for _, m := range c.InitialCluster {
		for _, raw := range m.PeerURLs {
			u, err := parseURL(raw)
			if err != nil {
				return fmt.Errorf("invalid value %q for %s: member %q: %w", cluster, c.where("initial-cluster"), m.Name, err)
			}
			if seen[u.String()] {
				return fmt.Errorf("invalid value %q for %s: URL %q is listed twice", cluster, c.where("initial-cluster"), u.String())
			}
			seen[u.String()] = true
		}
	}
	if c.InitialClusterState != ClusterStateNew {
		return nil
	}
	i := slices.IndexFunc(c.InitialCluster, func(m Member) bool { return m.Name == c.Name })
	if i < 0 {
		return fmt.Errorf("invalid value %q for %s: no member of that name in %s (%q)",
			c.Name, c.where("name"), c.where("initial-cluster"), cluster)
	}
	if !sameURLSet(c.InitialCluster[i].PeerURLs, c.InitialAdvertisePeerURLs) {
		return fmt.Errorf("invalid value %q for %s: %s lists %q for member %q",
			formatURLs(c.InitialAdvertisePeerURLs), c.where("initial-advertise-peer-urls"),
			c.where("initial-cluster"), strings.Join(c.InitialCluster[i].PeerURLs, ","), c.Name)
	}
	return nil
}

func oneOf(c *Config, name, v string, allowed []string) error {
	if slices.Contains(allowed, v) {
		return nil
	}
	return fmt.Errorf("invalid value %q for %s: want one of %s", v, c.where(name), strings.Join(allowed, ", "))
}

// millis renders d in etcd's millisecond flag units.
func millis(d time.Duration) string {
	if d%time.Millisecond == 0 {
		return strconv.FormatInt(d.Milliseconds(), 10)
	}
	return d.String()
}
