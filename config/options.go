package config

import (
	"errors"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// option is one etcd configuration option, known by the same name as a
// command-line flag (--name), an environment variable (ETCD_NAME) and a
// config file key (name).
type option struct {
	name  string
	group string
	def   string // etcd's default, as shown by --help
	help  string

	isBool bool
	// yamlNanos marks a duration option: etcd's config file holds a
	// time.Duration, so a bare number there counts nanoseconds.
	yamlNanos bool
	// canonical is the option this name is another spelling of (etcd 3.6
	// renamed the experimental-* flags); "" means the option itself.
	canonical string
	// deprecated names draw a warning.
	deprecated bool

	// set parses v into c. Nil marks an etcd option Cairn does not
	// implement: only etcd's default (or an empty value) is accepted.
	set func(c *Config, v string) error
	// inert marks an unimplemented option whose every value is harmless to
	// ignore (TLS tuning while TLS is off, proxy timeouts, ...): it is
	// accepted with a warning instead of rejected.
	inert bool
}

func (o option) key() string {
	if o.canonical != "" {
		return o.canonical
	}
	return o.name
}

// envName is the environment variable for flag name: ETCD_ and the name in
// upper snake case.
func envName(name string) string {
	return "ETCD_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// isDefault reports whether v is the default of an unimplemented option.
func (o option) isDefault(v string) bool {
	v = strings.TrimSpace(v)
	if v == "" || v == o.def {
		return true
	}
	if o.isBool {
		b, err := strconv.ParseBool(v)
		d, _ := strconv.ParseBool(o.def)
		return err == nil && b == d
	}
	return false
}

// Group titles, in the order Usage prints them.
const (
	groupMember     = "Member"
	groupClustering = "Clustering"
	groupSecurity   = "Security"
	groupAuth       = "Auth"
	groupMonitoring = "Profiling and monitoring"
	groupLogging    = "Logging"
	groupExperiment = "Experimental"
	groupProxy      = "v2 proxy (not supported)"
	groupUnsafe     = "Unsafe"
)

func groups() []string {
	return []string{groupMember, groupClustering, groupSecurity, groupAuth, groupMonitoring,
		groupLogging, groupExperiment, groupProxy, groupUnsafe}
}

// options returns every option Cairn recognises, in --help order. It builds
// a fresh table on each call: the package keeps no mutable state.
func options() []option {
	unsupported := func(group, name, def, help string) option {
		return option{name: name, group: group, def: def, help: help}
	}
	unsupportedBool := func(group, name, def, help string) option {
		return option{name: name, group: group, def: def, help: help, isBool: true}
	}
	inert := func(group, name, def, help string) option {
		return option{name: name, group: group, def: def, help: help, inert: true}
	}
	return []option{
		// Member.
		{name: "name", group: groupMember, def: DefaultName, help: "Human-readable name for this member.",
			set: func(c *Config, v string) error { c.Name = v; return nil }},
		{name: "data-dir", group: groupMember, def: "${name}.etcd", help: "Path to the data directory.",
			set: func(c *Config, v string) error { c.DataDir = v; return nil }},
		{name: "wal-dir", group: groupMember, def: "", help: "Path to a dedicated WAL directory; empty keeps the WAL under --data-dir.",
			set: func(c *Config, v string) error { c.WALDir = v; return nil }},
		{name: "snapshot-count", group: groupMember, def: "10000", help: "Number of committed transactions that triggers a snapshot to disk.",
			set: setUint64(func(c *Config) *uint64 { return &c.SnapshotCount })},
		{name: "snapshot-catchup-entries", group: groupMember, def: "5000", help: "Number of entries for a slow follower to catch up after compacting the raft storage entries.",
			set: setUint64(func(c *Config) *uint64 { return &c.SnapshotCatchUpEntries })},
		{name: "heartbeat-interval", group: groupMember, def: "100", help: "Time (in milliseconds) of a heartbeat interval.",
			set: setMillis(func(c *Config) *time.Duration { return &c.HeartbeatInterval })},
		{name: "election-timeout", group: groupMember, def: "1000", help: "Time (in milliseconds) for an election to time out; at least 5 heartbeats and at most 50000.",
			set: setMillis(func(c *Config) *time.Duration { return &c.ElectionTimeout })},
		{name: "initial-election-tick-advance", group: groupMember, def: "true", isBool: true, help: "Fast-forward the initial election ticks on boot for a faster election.",
			set: setBool(func(c *Config) *bool { return &c.InitialElectionTickAdvance })},
		{name: "listen-peer-urls", group: groupMember, def: DefaultListenPeerURL, help: "List of URLs to listen on for peer traffic.",
			set: func(c *Config, v string) error { return setURLs(&c.ListenPeerURLs, v) }},
		{name: "listen-client-urls", group: groupMember, def: DefaultListenClientURL, help: "List of URLs to listen on for client gRPC and HTTP traffic.",
			set: func(c *Config, v string) error { return setURLs(&c.ListenClientURLs, v) }},
		unsupported(groupMember, "listen-client-http-urls", "", "List of URLs to listen on for HTTP-only client traffic."),
		{name: "max-snapshots", group: groupMember, def: "5", help: "Maximum number of snapshot files to retain (0 is unlimited).",
			set: setUint(func(c *Config) *uint { return &c.MaxSnapshots })},
		{name: "max-wals", group: groupMember, def: "5", help: "Maximum number of WAL files to retain (0 is unlimited).",
			set: setUint(func(c *Config) *uint { return &c.MaxWALs })},
		{name: "quota-backend-bytes", group: groupMember, def: "0", help: "Raise the NOSPACE alarm when the backend exceeds this size (0 means 2 GiB, negative disables).",
			set: setInt64(func(c *Config) *int64 { return &c.QuotaBackendBytes })},
		unsupported(groupMember, "backend-bbolt-freelist-type", "map", "Type of freelist the bbolt backend uses."),
		{name: "backend-batch-interval", group: groupMember, def: "", yamlNanos: true, help: "Maximum time before committing the backend transaction (empty or 0 is the default).",
			set: setDuration(func(c *Config) *time.Duration { return &c.BackendBatchInterval })},
		{name: "backend-batch-limit", group: groupMember, def: "0", help: "Maximum operations before committing the backend transaction (0 is the default).",
			set: setInt(func(c *Config) *int { return &c.BackendBatchLimit })},
		{name: "warning-unary-request-duration", group: groupMonitoring, def: "300ms", help: "Duration after which a warning is logged if a unary request takes longer.",
			set: setDuration(func(c *Config) *time.Duration { return &c.WarningUnaryRequestDuration })},
		{name: "max-txn-ops", group: groupMember, def: "128", help: "Maximum number of operations permitted in a transaction.",
			set: setUint(func(c *Config) *uint { return &c.MaxTxnOps })},
		{name: "max-request-bytes", group: groupMember, def: "1572864", help: "Maximum client request size in bytes the server will accept.",
			set: setUint(func(c *Config) *uint { return &c.MaxRequestBytes })},
		inert(groupMember, "max-concurrent-streams", "4294967295", "Maximum concurrent gRPC streams per client connection."),
		{name: "enable-grpc-gateway", group: groupMember, def: "true", isBool: true, help: "Serve the JSON gRPC gateway on the client URLs.",
			set: setBool(func(c *Config) *bool { return &c.EnableGRPCGateway })},
		{name: "grpc-keepalive-min-time", group: groupMember, def: "5s", yamlNanos: true, help: "Minimum interval a client should wait before pinging the server.",
			set: setDuration(func(c *Config) *time.Duration { return &c.GRPCKeepAliveMinTime })},
		{name: "grpc-keepalive-interval", group: groupMember, def: "2h", yamlNanos: true, help: "Interval of server-to-client pings checking a connection is alive (0 to disable).",
			set: setDuration(func(c *Config) *time.Duration { return &c.GRPCKeepAliveInterval })},
		{name: "grpc-keepalive-timeout", group: groupMember, def: "20s", yamlNanos: true, help: "Wait before closing a connection that does not answer a ping (0 to disable).",
			set: setDuration(func(c *Config) *time.Duration { return &c.GRPCKeepAliveTimeout })},
		{name: "socket-reuse-port", group: groupMember, def: "false", isBool: true, help: "Set SO_REUSEPORT on listeners, allowing rebinding of a port already in use.",
			set: setBool(func(c *Config) *bool { return &c.SocketReusePort })},
		{name: "socket-reuse-address", group: groupMember, def: "false", isBool: true, help: "Set SO_REUSEADDR on listeners, allowing binding to an address in TIME_WAIT state.",
			set: setBool(func(c *Config) *bool { return &c.SocketReuseAddress })},
		inert(groupMember, "raft-read-timeout", "5s", "Read timeout on each peer connection."),
		inert(groupMember, "raft-write-timeout", "5s", "Write timeout on each peer connection."),

		// Clustering.
		{name: "initial-advertise-peer-urls", group: groupClustering, def: DefaultListenPeerURL, help: "List of this member's peer URLs to advertise to the rest of the cluster.",
			set: func(c *Config, v string) error { return setURLs(&c.InitialAdvertisePeerURLs, v) }},
		{name: "initial-cluster", group: groupClustering, def: "default=" + DefaultListenPeerURL, help: "Initial cluster configuration for bootstrapping: name=URL pairs, comma separated.",
			set: func(c *Config, v string) error {
				m, err := ParseInitialCluster(v)
				c.InitialCluster = m
				return err
			}},
		{name: "initial-cluster-state", group: groupClustering, def: ClusterStateNew, help: "Initial cluster state: 'new' to bootstrap a new cluster, 'existing' to join one. Ignored once the member has data.",
			set: func(c *Config, v string) error { c.InitialClusterState = v; return nil }},
		{name: "initial-cluster-token", group: groupClustering, def: DefaultInitialClusterToken, help: "Initial cluster token; distinct tokens keep separate clusters from talking to each other.",
			set: func(c *Config, v string) error { c.InitialClusterToken = v; return nil }},
		{name: "advertise-client-urls", group: groupClustering, def: DefaultListenClientURL, help: "List of this member's client URLs to advertise to clients; required when --listen-client-urls is set.",
			set: func(c *Config, v string) error { return setURLs(&c.AdvertiseClientURLs, v) }},
		unsupported(groupClustering, "discovery", "", "Discovery URL used to bootstrap the cluster."),
		inert(groupClustering, "discovery-fallback", "proxy", "Behaviour when the discovery service fails."),
		unsupported(groupClustering, "discovery-proxy", "", "HTTP proxy for the discovery service."),
		unsupported(groupClustering, "discovery-srv", "", "DNS SRV domain used to bootstrap the cluster."),
		unsupported(groupClustering, "discovery-srv-name", "", "Suffix of the DNS SRV name queried when bootstrapping."),
		{name: "strict-reconfig-check", group: groupClustering, def: "true", isBool: true, help: "Reject reconfiguration requests that would cause quorum loss.",
			set: setBool(func(c *Config) *bool { return &c.StrictReconfigCheck })},
		{name: "max-learners", group: groupClustering, def: "1", help: "Maximum number of learners the cluster may hold at once.",
			set: setInt(func(c *Config) *int { return &c.MaxLearners })},
		{name: "pre-vote", group: groupClustering, def: "true", isBool: true, help: "Run raft's pre-vote phase so a rejoining partitioned member does not disrupt the leader.",
			set: setBool(func(c *Config) *bool { return &c.PreVote })},
		{name: "auto-compaction-retention", group: groupClustering, def: "0", help: "Auto compaction retention: hours or a duration such as '30m' in periodic mode, a revision count in revision mode. 0 disables.",
			set: func(c *Config, v string) error { c.AutoCompactionRetention = strings.TrimSpace(v); return nil }},
		{name: "auto-compaction-mode", group: groupClustering, def: CompactionModePeriodic, help: "How to read --auto-compaction-retention: 'periodic' or 'revision'.",
			set: func(c *Config, v string) error { c.AutoCompactionMode = v; return nil }},
		unsupportedBool(groupClustering, "enable-v2", "false", "Accept etcd v2 client requests."),
		inert(groupClustering, "v2-deprecation", "not-yet", "Phase of v2store deprecation."),

		// Security.
		unsupported(groupSecurity, "cert-file", "", "Path to the client server TLS cert file."),
		unsupported(groupSecurity, "key-file", "", "Path to the client server TLS key file."),
		unsupportedBool(groupSecurity, "client-cert-auth", "false", "Enable client cert authentication."),
		unsupported(groupSecurity, "client-cert-file", "", "Path to an explicit client TLS cert file."),
		unsupported(groupSecurity, "client-key-file", "", "Path to an explicit client TLS key file."),
		unsupported(groupSecurity, "client-crl-file", "", "Path to the client certificate revocation list file."),
		unsupported(groupSecurity, "client-cert-allowed-hostname", "", "Allowed TLS hostname for client cert authentication."),
		unsupported(groupSecurity, "trusted-ca-file", "", "Path to the client server TLS trusted CA cert file."),
		unsupportedBool(groupSecurity, "auto-tls", "false", "Client TLS using generated certificates."),
		unsupported(groupSecurity, "peer-cert-file", "", "Path to the peer server TLS cert file."),
		unsupported(groupSecurity, "peer-key-file", "", "Path to the peer server TLS key file."),
		unsupportedBool(groupSecurity, "peer-client-cert-auth", "false", "Enable peer client cert authentication."),
		unsupported(groupSecurity, "peer-trusted-ca-file", "", "Path to the peer server TLS trusted CA file."),
		unsupported(groupSecurity, "peer-cert-allowed-cn", "", "Allowed CN for inter-peer TLS authentication."),
		unsupported(groupSecurity, "peer-cert-allowed-hostname", "", "Allowed TLS hostname for inter-peer authentication."),
		unsupportedBool(groupSecurity, "peer-auto-tls", "false", "Peer TLS using generated certificates."),
		unsupported(groupSecurity, "peer-client-cert-file", "", "Path to an explicit peer client TLS cert file."),
		unsupported(groupSecurity, "peer-client-key-file", "", "Path to an explicit peer client TLS key file."),
		unsupported(groupSecurity, "peer-crl-file", "", "Path to the peer certificate revocation list file."),
		unsupportedBool(groupSecurity, "experimental-peer-skip-client-san-verification", "false", "Skip verification of SAN field in client certificates for peer connections."),
		inert(groupSecurity, "self-signed-cert-validity", "1", "Validity in years of generated certificates."),
		inert(groupSecurity, "cipher-suites", "", "TLS cipher suites for clients and peers."),
		inert(groupSecurity, "tls-min-version", "TLS1.2", "Minimum TLS version."),
		inert(groupSecurity, "tls-max-version", "", "Maximum TLS version."),
		unsupported(groupSecurity, "cors", "*", "Comma-separated allowed CORS origins."),
		unsupported(groupSecurity, "host-whitelist", "*", "Acceptable hostnames from HTTP client requests."),

		// Auth.
		{name: "auth-token", group: groupAuth, def: "simple", help: "Auth token type and options: 'simple' or 'jwt,<options>'.",
			set: func(c *Config, v string) error { c.AuthToken = v; return nil }},
		{name: "bcrypt-cost", group: groupAuth, def: "10", help: "Cost of the bcrypt hash of auth passwords, 4 to 31.",
			set: setUint(func(c *Config) *uint { return &c.BcryptCost })},
		{name: "auth-token-ttl", group: groupAuth, def: "300", help: "Lifetime (in seconds) of a simple auth token.",
			set: setUint(func(c *Config) *uint { return &c.AuthTokenTTL })},

		// Profiling and monitoring.
		{name: "enable-pprof", group: groupMonitoring, def: "false", isBool: true, help: "Serve runtime profiling data at the client URLs under /debug/pprof/.",
			set: setBool(func(c *Config) *bool { return &c.EnablePprof })},
		{name: "metrics", group: groupMonitoring, def: "basic", help: "Level of detail of exported metrics: 'basic' or 'extensive' (adds gRPC histograms).",
			set: func(c *Config, v string) error { c.Metrics = v; return nil }},
		{name: "listen-metrics-urls", group: groupMonitoring, def: "", help: "List of additional URLs to serve /metrics, /health, /livez and /readyz on (plain HTTP).",
			set: func(c *Config, v string) error { return setURLs(&c.ListenMetricsURLs, v) }},

		// Logging.
		unsupported(groupLogging, "logger", "zap", "Logger implementation; only 'zap'."),
		{name: "log-outputs", group: groupLogging, def: "default", help: "Comma-separated log targets: 'default', 'stdout', 'stderr' or file paths.",
			set: setStrings(func(c *Config) *[]string { return &c.LogOutputs })},
		{name: "log-level", group: groupLogging, def: "info", help: "Log level: debug, info, warn, error, panic or fatal.",
			set: func(c *Config, v string) error { c.LogLevel = v; return nil }},
		{name: "log-format", group: groupLogging, def: "json", help: "Log format: json or console.",
			set: func(c *Config, v string) error { c.LogFormat = v; return nil }},
		unsupportedBool(groupLogging, "enable-log-rotation", "false", "Rotate a single file log target."),
		inert(groupLogging, "log-rotation-config-json", "", "Log rotation settings (used with --enable-log-rotation)."),

		// Experimental.
		{name: "watch-progress-notify-interval", group: groupExperiment, def: "10m", yamlNanos: true, help: "Interval of periodic watch progress notifications.",
			set: setDuration(func(c *Config) *time.Duration { return &c.ExperimentalWatchProgressNotifyInterval })},
		{name: "experimental-watch-progress-notify-interval", group: groupExperiment, def: "10m", yamlNanos: true, canonical: "watch-progress-notify-interval", deprecated: true,
			help: "Deprecated spelling of --watch-progress-notify-interval.",
			set:  setDuration(func(c *Config) *time.Duration { return &c.ExperimentalWatchProgressNotifyInterval })},
		{name: "experimental-initial-corrupt-check", group: groupExperiment, def: "false", isBool: true, help: "Check for data corruption against the other members before serving traffic.",
			set: setBool(func(c *Config) *bool { return &c.ExperimentalInitialCorruptCheck })},
		{name: "corrupt-check-time", group: groupExperiment, def: "0s", yamlNanos: true, help: "Interval between cluster corruption check passes (0 disables).",
			set: setDuration(func(c *Config) *time.Duration { return &c.ExperimentalCorruptCheckTime })},
		{name: "experimental-corrupt-check-time", group: groupExperiment, def: "0s", yamlNanos: true, canonical: "corrupt-check-time", deprecated: true,
			help: "Deprecated spelling of --corrupt-check-time.",
			set:  setDuration(func(c *Config) *time.Duration { return &c.ExperimentalCorruptCheckTime })},
		{name: "compaction-batch-limit", group: groupExperiment, def: "1000", help: "Maximum revisions deleted in each compaction batch.",
			set: setInt(func(c *Config) *int { return &c.ExperimentalCompactionBatchLimit })},
		{name: "experimental-compaction-batch-limit", group: groupExperiment, def: "1000", canonical: "compaction-batch-limit", deprecated: true,
			help: "Deprecated spelling of --compaction-batch-limit.",
			set:  setInt(func(c *Config) *int { return &c.ExperimentalCompactionBatchLimit })},
		{name: "experimental-enable-lease-checkpoint", group: groupExperiment, def: "false", isBool: true, help: "Persist the remaining TTL of leases so a leader change does not extend them.",
			set: setBool(func(c *Config) *bool { return &c.ExperimentalEnableLeaseCheckpoint })},
		unsupported(groupExperiment, "feature-gates", "", "Comma-separated feature gates, name=true|false."),
		unsupportedBool(groupExperiment, "experimental-enable-distributed-tracing", "false", "Enable OpenTelemetry distributed tracing."),
		inert(groupExperiment, "experimental-distributed-tracing-address", "localhost:4317", "Distributed tracing collector address."),
		inert(groupExperiment, "experimental-distributed-tracing-service-name", "etcd", "Distributed tracing service name."),
		inert(groupExperiment, "experimental-distributed-tracing-instance-id", "", "Distributed tracing instance ID."),
		inert(groupExperiment, "experimental-distributed-tracing-sampling-rate", "0", "Distributed tracing samples per million spans."),
		inert(groupExperiment, "experimental-warning-apply-duration", "100ms", "Warn when applying a request takes longer than this."),
		inert(groupExperiment, "experimental-txn-mode-write-with-shared-buffer", "true", "Share a buffer for the read checks of write transactions."),
		unsupportedBool(groupExperiment, "experimental-memory-mlock", "false", "Lock the backend's pages in RAM."),
		unsupported(groupExperiment, "experimental-bootstrap-defrag-threshold-megabytes", "0", "Defragment on boot when at least this much space would be freed."),

		// v2 proxy.
		unsupported(groupProxy, "proxy", "off", "Proxy mode: 'off', 'readonly' or 'on'."),
		inert(groupProxy, "proxy-failure-wait", "5000", "Time (ms) an endpoint is held in a failed state."),
		inert(groupProxy, "proxy-refresh-interval", "30000", "Time (ms) of the endpoints refresh interval."),
		inert(groupProxy, "proxy-dial-timeout", "1000", "Time (ms) for a dial to time out."),
		inert(groupProxy, "proxy-write-timeout", "5000", "Time (ms) for a write to time out."),
		inert(groupProxy, "proxy-read-timeout", "0", "Time (ms) for a read to time out."),

		// Unsafe.
		unsupportedBool(groupUnsafe, "force-new-cluster", "false", "Force a new one-member cluster from existing data."),
		unsupportedBool(groupUnsafe, "unsafe-no-fsync", "false", "Disable fsync; will lose data on a crash."),
	}
}

func parseUint(v string, bits int) (uint64, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(v), 10, bits)
	if err != nil {
		return 0, errors.New("want a non-negative whole number")
	}
	return n, nil
}

func parseInt(v string, bits int) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, bits)
	if err != nil {
		return 0, errors.New("want a whole number")
	}
	return n, nil
}

func setUint64(p func(*Config) *uint64) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := parseUint(v, 64)
		*p(c) = n
		return err
	}
}

func setUint(p func(*Config) *uint) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := parseUint(v, strconv.IntSize)
		*p(c) = uint(n)
		return err
	}
}

func setInt64(p func(*Config) *int64) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := parseInt(v, 64)
		*p(c) = n
		return err
	}
}

func setInt(p func(*Config) *int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := parseInt(v, strconv.IntSize)
		*p(c) = int(n)
		return err
	}
}

func setBool(p func(*Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return errors.New("want true or false")
		}
		*p(c) = b
		return nil
	}
}

// setMillis parses etcd's millisecond flags (a whole number, no unit).
func setMillis(p func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := parseUint(v, 63)
		if err != nil {
			return errors.New("want a whole number of milliseconds")
		}
		if n > uint64((1<<63-1)/int64(time.Millisecond)) {
			return errors.New("too large")
		}
		*p(c) = time.Duration(n) * time.Millisecond
		return nil
	}
}

// setDuration parses a Go duration ("10m", "1h30m"); empty means zero.
func setDuration(p func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		v = strings.TrimSpace(v)
		if v == "" {
			*p(c) = 0
			return nil
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			return errors.New("want a duration such as \"500ms\", \"10s\" or \"2h\"")
		}
		*p(c) = d
		return nil
	}
}

// setStrings parses a comma-separated list, trimming spaces and dropping
// empty items and repeats.
func setStrings(p func(*Config) *[]string) func(*Config, string) error {
	return func(c *Config, v string) error {
		var out []string
		for _, s := range strings.Split(v, ",") {
			s = strings.TrimSpace(s)
			if s != "" && !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
		*p(c) = out
		return nil
	}
}

func setURLs(dst *[]url.URL, v string) error {
	us, err := parseURLList(v)
	if err != nil {
		return err
	}
	*dst = us
	return nil
}
