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

	// set parses v into c. Nil marks an etcd option Cairn does not
	// implement: only etcd's default (or an empty value) is accepted.
	set func(c *Config, v string) error
	// ignored marks an option that changes nothing in Cairn whatever its
	// value (TLS tuning while TLS is off, etcd's own deprecated knobs...):
	// a value is checked with set, if any, and accepted with a warning
	// that says why. --help lists these apart from the flags that work.
	ignored bool
	// why is the reason an ignored option changes nothing.
	why string
}

// envName is the environment variable for flag name: ETCD_ and the name in
// upper snake case.
func envName(name string) string {
	return "ETCD_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// isDefault reports whether v is the option's default.
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

// Group titles, in the order Usage prints them: etcd 3.7's.
const (
	groupMember     = "Member"
	groupClustering = "Clustering"
	groupSecurity   = "Security"
	groupAuth       = "Auth"
	groupMonitoring = "Profiling and monitoring"
	groupLogging    = "Logging"
	groupTracing    = "Distributed tracing"
	groupFeatures   = "Features"
	groupUnsafe     = "Unsafe"
)

func groups() []string {
	return []string{groupMember, groupClustering, groupSecurity, groupAuth, groupMonitoring,
		groupLogging, groupTracing, groupFeatures, groupUnsafe}
}

// options returns every option Cairn recognises: etcd 3.7's, in --help
// order. It builds a fresh table on each call: the package keeps no
// mutable state.
func options() []option {
	unsupported := func(group, name, def, help string) option {
		return option{name: name, group: group, def: def, help: help}
	}
	unsupportedBool := func(group, name, def, help string) option {
		return option{name: name, group: group, def: def, help: help, isBool: true}
	}
	ignored := func(group, name, def, help, why string) option {
		return option{name: name, group: group, def: def, help: help, ignored: true, why: why}
	}
	tlsOpt := func(name, def, help string) option {
		for _, f := range securityFields() {
			if f.client == name || f.peer == name {
				return option{name: name, group: groupSecurity, def: def, help: help, isBool: f.isBool, set: setTLSField(f, f.peer == name)}
			}
		}
		panic("config: no security field for " + name)
	}
	return withDiscovery([]option{
		// Member.
		{name: "name", group: groupMember, def: DefaultName, help: "Human-readable name for this member.",
			set: func(c *Config, v string) error { c.Name = v; return nil }},
		{name: "data-dir", group: groupMember, def: "${name}.etcd", help: "Path to the data directory.",
			set: func(c *Config, v string) error { c.DataDir = v; return nil }},
		{name: "wal-dir", group: groupMember, def: "", help: "Path to a dedicated WAL directory; empty keeps the WAL under --data-dir.",
			set: func(c *Config, v string) error { c.WALDir = v; return nil }},
		{name: "snapshot-count", group: groupMember, def: "10000", help: "Number of committed transactions that triggers a snapshot to disk.",
			set: setUint64(func(c *Config) *uint64 { return &c.SnapshotCount })},
		{name: "heartbeat-interval", group: groupMember, def: "100", help: "Time (in milliseconds) of a heartbeat interval.",
			set: setMillis(func(c *Config) *time.Duration { return &c.HeartbeatInterval })},
		{name: "election-timeout", group: groupMember, def: "1000", help: "Time (in milliseconds) for an election to time out; at least 5 heartbeats and at most 50000.",
			set: setMillis(func(c *Config) *time.Duration { return &c.ElectionTimeout })},
		{name: "initial-election-tick-advance", group: groupMember, def: "true", isBool: true, help: "Fast-forward the initial election ticks of a one-voter cluster on boot for a faster election.",
			set: setBool(func(c *Config) *bool { return &c.InitialElectionTickAdvance })},
		{name: "listen-peer-urls", group: groupMember, def: DefaultListenPeerURL, help: "List of URLs to listen on for peer traffic.",
			set: func(c *Config, v string) error { return setURLs(&c.ListenPeerURLs, v) }},
		{name: "listen-client-urls", group: groupMember, def: DefaultListenClientURL, help: "List of URLs to listen on for client gRPC traffic, and HTTP unless --listen-client-http-urls is given.",
			set: func(c *Config, v string) error { return setURLs(&c.ListenClientURLs, v) }},
		{name: "listen-client-http-urls", group: groupMember, def: "", help: "List of URLs to listen on for HTTP-only client traffic (JSON gateway, /health, /livez, /readyz, /version, /metrics). Giving it removes HTTP from --listen-client-urls.",
			set: func(c *Config, v string) error { return setURLs(&c.ListenClientHTTPURLs, v) }},
		ignored(groupMember, "max-snapshots", "5", "Maximum number of snapshot files to retain (0 is unlimited).",
			"cairn keeps no snapshot files (a raft snapshot is the database itself); etcd deprecated this flag in 3.6"),
		ignored(groupMember, "max-wals", "5", "Maximum number of WAL files to retain (0 is unlimited).",
			"cairn releases the WAL segments a raft snapshot covers as soon as it is taken"),
		{name: "memory-mlock", group: groupMember, def: "false", isBool: true, help: "Lock the backend database's pages in RAM (mlock), so they are never swapped out.",
			set: setBool(func(c *Config) *bool { return &c.MemoryMlock })},
		{name: "quota-backend-bytes", group: groupMember, def: "0", help: "Raise the NOSPACE alarm when the backend exceeds this size (0 means 2 GiB, negative disables).",
			set: setInt64(func(c *Config) *int64 { return &c.QuotaBackendBytes })},
		unsupported(groupMember, "backend-bbolt-freelist-type", "map", "Type of freelist the bbolt backend uses."),
		{name: "backend-batch-interval", group: groupMember, def: "", yamlNanos: true, help: "Maximum time before committing the backend transaction (empty or 0 is the default).",
			set: setDuration(func(c *Config) *time.Duration { return &c.BackendBatchInterval })},
		{name: "backend-batch-limit", group: groupMember, def: "0", help: "Maximum operations before committing the backend transaction (0 is the default).",
			set: setInt(func(c *Config) *int { return &c.BackendBatchLimit })},
		{name: "max-txn-ops", group: groupMember, def: "128", help: "Maximum number of operations permitted in a transaction.",
			set: setUint(func(c *Config) *uint { return &c.MaxTxnOps })},
		{name: "max-request-bytes", group: groupMember, def: "1572864", help: "Maximum client request size in bytes the server will accept.",
			set: setUint(func(c *Config) *uint { return &c.MaxRequestBytes })},
		{name: "max-concurrent-streams", group: groupMember, def: "4294967295", help: "Maximum concurrent gRPC streams that each client connection can open at a time.",
			set: setUint32(func(c *Config) *uint32 { return &c.MaxConcurrentStreams })},
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
		{name: "enable-grpc-gateway", group: groupMember, def: "true", isBool: true, help: "Serve the JSON gRPC gateway (/v3/...) on the client HTTP listeners.",
			set: setBool(func(c *Config) *bool { return &c.EnableGRPCGateway })},
		{name: "enable-v2", group: groupClustering, def: "false", isBool: true, help: "Serve etcd's v2 HTTP API (/v2/keys, /v2/members, /v2/stats, /v2/machines) on the client HTTP listeners, on its own replicated tree (etcd 3.5's flag; etcd 3.6 removed the API). See docs/v2.md.",
			set: setBool(func(c *Config) *bool { return &c.EnableV2 })},
		ignored(groupMember, "raft-read-timeout", "5s", "Read timeout on each peer connection.",
			"cairn's peer transport sets no per-connection read or write timeout"),
		ignored(groupMember, "raft-write-timeout", "5s", "Write timeout on each peer connection.",
			"cairn's peer transport sets no per-connection read or write timeout"),
		{name: "feature-gates", group: groupMember, def: "", help: featureGatesHelp(),
			set: func(c *Config, v string) error {
				fg, err := parseFeatureGates(v)
				c.FeatureGates = fg
				return err
			}},

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
		{name: "discovery-fallback", group: groupClustering, def: "exit", help: "Behaviour when the discovery service fails: 'exit' (etcd 3.7 removed 'proxy').",
			set: func(c *Config, v string) error {
				switch strings.TrimSpace(v) {
				case "exit":
					return nil
				case "proxy":
					return errors.New(`v2 proxy is deprecated, and --discovery-fallback can't be configured as "proxy"`)
				}
				return errors.New(`want "exit"`)
			}},
		unsupported(groupClustering, "discovery-srv", "", "DNS SRV domain used to bootstrap the cluster."),
		unsupported(groupClustering, "discovery-srv-name", "", "Suffix of the DNS SRV name queried when bootstrapping."),
		{name: "strict-reconfig-check", group: groupClustering, def: "true", isBool: true, help: "Reject reconfiguration requests that would cause quorum loss.",
			set: setBool(func(c *Config) *bool { return &c.StrictReconfigCheck })},
		{name: "pre-vote", group: groupClustering, def: "true", isBool: true, help: "Run raft's pre-vote phase so a rejoining partitioned member does not disrupt the leader.",
			set: setBool(func(c *Config) *bool { return &c.PreVote })},
		{name: "auto-compaction-retention", group: groupClustering, def: "0", help: "Auto compaction retention: hours or a duration such as '30m' in periodic mode, a revision count in revision mode. 0 disables.",
			set: func(c *Config, v string) error { c.AutoCompactionRetention = strings.TrimSpace(v); return nil }},
		{name: "auto-compaction-mode", group: groupClustering, def: CompactionModePeriodic, help: "How to read --auto-compaction-retention: 'periodic' or 'revision'.",
			set: func(c *Config, v string) error { c.AutoCompactionMode = v; return nil }},
		{name: "v2-deprecation", group: groupClustering, def: "write-only", ignored: true,
			help: "Phase of v2store deprecation: write-only, write-only-skip-check, write-only-drop-data or gone.",
			why:  "--v2-deprecation is deprecated and scheduled for removal in v3.8. The default value is enforced, ignoring user input (cairn keeps no v2 store for v3 data; the v2 API is --enable-v2)",
			set: func(c *Config, v string) error {
				switch strings.TrimSpace(v) {
				case "write-only", "write-only-skip-check", "write-only-drop-data", "gone":
					return nil
				}
				return errors.New(`want "write-only", "write-only-skip-check", "write-only-drop-data" or "gone"`)
			}},

		// Security.
		tlsOpt("cert-file", "", "Path to the client server TLS cert file."),
		tlsOpt("key-file", "", "Path to the client server TLS key file."),
		tlsOpt("client-cert-auth", "false", "Enable client cert authentication."),
		tlsOpt("client-cert-file", "", "Path to an explicit client TLS cert file otherwise cert file will be used when client auth is required."),
		tlsOpt("client-key-file", "", "Path to an explicit client TLS key file otherwise key file will be used when client auth is required."),
		tlsOpt("client-crl-file", "", "Path to the client certificate revocation list file."),
		tlsOpt("client-cert-allowed-hostname", "", "Comma-separated list of SAN hostnames for client cert authentication."),
		tlsOpt("trusted-ca-file", "", "Path to the client server TLS trusted CA cert file."),
		tlsOpt("auto-tls", "false", "Client TLS using generated certificates."),
		tlsOpt("peer-cert-file", "", "Path to the peer server TLS cert file."),
		tlsOpt("peer-key-file", "", "Path to the peer server TLS key file."),
		tlsOpt("peer-client-cert-auth", "false", "Enable peer client cert authentication."),
		tlsOpt("peer-client-cert-file", "", "Path to an explicit peer client TLS cert file otherwise peer cert file will be used when client auth is required."),
		tlsOpt("peer-client-key-file", "", "Path to an explicit peer client TLS key file otherwise peer key file will be used when client auth is required."),
		tlsOpt("peer-trusted-ca-file", "", "Path to the peer server TLS trusted CA file."),
		tlsOpt("peer-cert-allowed-cn", "", "Comma-separated list of allowed CNs for inter-peer TLS authentication."),
		tlsOpt("peer-cert-allowed-hostname", "", "Comma-separated list of allowed SAN hostnames for inter-peer TLS authentication."),
		tlsOpt("peer-auto-tls", "false", "Peer TLS using self-generated certificates if --peer-key-file and --peer-cert-file are not provided."),
		{name: "self-signed-cert-validity", group: groupSecurity, def: "1", help: "Validity in years of the certificates --auto-tls and --peer-auto-tls generate.",
			set: setUint(func(c *Config) *uint { return &c.SelfSignedCertValidity })},
		tlsOpt("peer-crl-file", "", "Path to the peer certificate revocation list file."),
		{name: "cipher-suites", group: groupSecurity, def: "", help: "Comma-separated list of supported TLS cipher suites between client/server and peers (empty will be auto-populated by Go).",
			set: setStrings(func(c *Config) *[]string { return &c.CipherSuites })},
		unsupported(groupSecurity, "cors", "*", "Comma-separated allowed CORS origins."),
		unsupported(groupSecurity, "host-whitelist", "*", "Acceptable hostnames from HTTP client requests."),
		{name: "tls-min-version", group: groupSecurity, def: "TLS1.2", help: "Minimum TLS version supported: TLS1.2 or TLS1.3.",
			set: func(c *Config, v string) error { c.TLSMinVersion = strings.TrimSpace(v); return nil }},
		{name: "tls-max-version", group: groupSecurity, def: "", help: "Maximum TLS version supported: TLS1.2 or TLS1.3 (empty will be auto-populated by Go).",
			set: func(c *Config, v string) error { c.TLSMaxVersion = strings.TrimSpace(v); return nil }},

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
		{name: "enable-console", group: groupMonitoring, def: "false", isBool: true, help: "Serve the web console under /console/ on the client HTTP URLs and the metrics URLs. See docs/console.md.",
			set: setBool(func(c *Config) *bool { return &c.EnableConsole })},
		{name: "console-read-only", group: groupMonitoring, def: "false", isBool: true, help: "The web console only reads: no put, delete, compaction, defragmentation, alarm or member change (etcd's auth still decides what a user may do through the API).",
			set: setBool(func(c *Config) *bool { return &c.ConsoleReadOnly })},

		// Logging.
		{name: "logger", group: groupLogging, def: "zap", help: "Logger implementation; only 'zap'.",
			set: func(c *Config, v string) error {
				switch strings.TrimSpace(v) {
				case "zap":
					return nil
				case "capnslog":
					return errors.New("--logger=capnslog is removed in v3.5")
				}
				return errors.New(`only "zap" is supported`)
			}},
		{name: "log-outputs", group: groupLogging, def: "default", help: "Comma-separated log targets: 'default', 'stdout', 'stderr' or file paths.",
			set: setStrings(func(c *Config) *[]string { return &c.LogOutputs })},
		{name: "log-level", group: groupLogging, def: "info", help: "Log level: debug, info, warn, error, panic or fatal.",
			set: func(c *Config, v string) error { c.LogLevel = v; return nil }},
		{name: "log-format", group: groupLogging, def: "json", help: "Log format: json or console.",
			set: func(c *Config, v string) error { c.LogFormat = v; return nil }},
		unsupportedBool(groupLogging, "enable-log-rotation", "false", "Rotate a single file log target."),
		ignored(groupLogging, "log-rotation-config-json", `{"maxsize": 100, "maxage": 0, "maxbackups": 0, "localtime": false, "compress": false}`,
			"Log rotation settings (used with --enable-log-rotation).", "cairn does not rotate logs yet"),
		{name: "warning-unary-request-duration", group: groupLogging, def: "300ms", yamlNanos: true, help: "Duration after which a warning is logged if a unary request takes longer.",
			set: setDuration(func(c *Config) *time.Duration { return &c.WarningUnaryRequestDuration })},

		// Distributed tracing.
		unsupportedBool(groupTracing, "enable-distributed-tracing", "false", "Enable OpenTelemetry distributed tracing."),
		ignored(groupTracing, "distributed-tracing-address", "localhost:4317", "Distributed tracing collector address.", "cairn does not trace yet"),
		ignored(groupTracing, "distributed-tracing-service-name", "etcd", "Distributed tracing service name.", "cairn does not trace yet"),
		ignored(groupTracing, "distributed-tracing-instance-id", "", "Distributed tracing instance ID.", "cairn does not trace yet"),
		ignored(groupTracing, "distributed-tracing-sampling-rate", "0", "Distributed tracing samples per million spans.", "cairn does not trace yet"),

		// Features.
		unsupported(groupFeatures, "corrupt-check-time", "0s", "Interval between cluster corruption check passes (0 disables)."),
		{name: "compact-hash-check-time", group: groupFeatures, def: "1m", yamlNanos: true, help: "Interval at which the leader compares the members' hashes at the latest compacted revision (with the CompactHashCheck feature gate, on by default).",
			set: setDuration(func(c *Config) *time.Duration { return &c.CompactHashCheckTime })},
		{name: "compaction-batch-limit", group: groupFeatures, def: "1000", help: "Maximum revisions deleted in each compaction batch.",
			set: setInt(func(c *Config) *int { return &c.CompactionBatchLimit })},
		unsupportedBool(groupFeatures, "peer-skip-client-san-verification", "false", "Skip verification of SAN field in client certificates for peer connections."),
		{name: "watch-progress-notify-interval", group: groupFeatures, def: "10m", yamlNanos: true, help: "Interval of periodic watch progress notifications.",
			set: setDuration(func(c *Config) *time.Duration { return &c.WatchProgressNotifyInterval })},
		{name: "warning-apply-duration", group: groupFeatures, def: "100ms", yamlNanos: true, help: "Warn when applying a request takes longer than this.",
			set: setDuration(func(c *Config) *time.Duration { return &c.WarningApplyDuration })},
		unsupported(groupFeatures, "bootstrap-defrag-threshold-megabytes", "0", "Defragment on boot when at least this much space would be freed."),
		{name: "max-learners", group: groupFeatures, def: "1", help: "Maximum number of learners the cluster may hold at once.",
			set: setInt(func(c *Config) *int { return &c.MaxLearners })},
		{name: "compaction-sleep-interval", group: groupFeatures, def: "10ms", yamlNanos: true, help: "Pause between compaction batches.",
			set: setDuration(func(c *Config) *time.Duration { return &c.CompactionSleepInterval })},
		{name: "downgrade-check-time", group: groupFeatures, def: "5s", yamlNanos: true, help: "Interval between two downgrade status checks.",
			ignored: true, why: "only downgrade cancel ends a cairn downgrade job: etcd's check ends it once every member runs the target version, which cairn members never do", set: checkDuration},
		{name: "snapshot-catchup-entries", group: groupFeatures, def: "5000", help: "Number of entries for a slow follower to catch up after compacting the raft storage entries.",
			set: setUint64(func(c *Config) *uint64 { return &c.SnapshotCatchUpEntries })},

		// Unsafe.
		{name: "force-new-cluster", group: groupUnsafe, def: "false", isBool: true, help: "Force to create a new one-member cluster: removes every other member from the existing data and keeps the data.",
			set: setBool(func(c *Config) *bool { return &c.ForceNewCluster })},
		{name: "unsafe-no-fsync", group: groupUnsafe, def: "false", isBool: true, help: "Disable fsync of the WAL and the backend: fast, and a crash of the machine (not only of cairn) loses data.",
			set: setBool(func(c *Config) *bool { return &c.UnsafeNoFsync })},
	})
}

// removedFlag is an etcd flag that etcd 3.7 no longer has.
type removedFlag struct {
	why string // what replaced it
	def string // its old default: a config file key set to it draws no warning
}

// removedFlags are the etcd flags that etcd 3.7 no longer has, and what
// replaced each. etcd 3.7 refuses them as unknown flags; Cairn does too,
// and says what to use instead.
func removedFlags() map[string]removedFlag {
	m := map[string]removedFlag{
		"discovery":       {"etcd 3.7 removed v2 discovery", ""},
		"discovery-proxy": {"etcd 3.7 removed v2 discovery", ""},
	}
	for name, def := range map[string]string{"proxy": "off", "proxy-failure-wait": "5000", "proxy-refresh-interval": "30000",
		"proxy-dial-timeout": "1000", "proxy-write-timeout": "5000", "proxy-read-timeout": "0"} {
		m[name] = removedFlag{"etcd 3.7 removed the v2 proxy", def}
	}
	renamed := map[string]string{
		"experimental-initial-corrupt-check":                "--feature-gates=InitialCorruptCheck=true",
		"experimental-corrupt-check-time":                   "--corrupt-check-time",
		"experimental-compact-hash-check-enabled":           "--feature-gates=CompactHashCheck=true",
		"experimental-compact-hash-check-time":              "--compact-hash-check-time",
		"experimental-enable-lease-checkpoint":              "--feature-gates=LeaseCheckpoint=true",
		"experimental-enable-lease-checkpoint-persist":      "--feature-gates=LeaseCheckpointPersist=true",
		"experimental-compaction-batch-limit":               "--compaction-batch-limit",
		"experimental-compaction-sleep-interval":            "--compaction-sleep-interval",
		"experimental-watch-progress-notify-interval":       "--watch-progress-notify-interval",
		"experimental-downgrade-check-time":                 "--downgrade-check-time",
		"experimental-warning-apply-duration":               "--warning-apply-duration",
		"experimental-warning-unary-request-duration":       "--warning-unary-request-duration",
		"experimental-bootstrap-defrag-threshold-megabytes": "--bootstrap-defrag-threshold-megabytes",
		"experimental-memory-mlock":                         "--memory-mlock",
		"experimental-txn-mode-write-with-shared-buffer":    "--feature-gates=TxnModeWriteWithSharedBuffer=true|false",
		"experimental-stop-grpc-service-on-defrag":          "--feature-gates=StopGRPCServiceOnDefrag=true",
		"experimental-max-learners":                         "--max-learners",
		"experimental-snapshot-catchup-entries":             "--snapshot-catchup-entries",
		"experimental-enable-distributed-tracing":           "--enable-distributed-tracing",
		"experimental-distributed-tracing-address":          "--distributed-tracing-address",
		"experimental-distributed-tracing-service-name":     "--distributed-tracing-service-name",
		"experimental-distributed-tracing-instance-id":      "--distributed-tracing-instance-id",
		"experimental-distributed-tracing-sampling-rate":    "--distributed-tracing-sampling-rate",
		"experimental-peer-skip-client-san-verification":    "--peer-skip-client-san-verification",
	}
	for old, now := range renamed {
		m[old] = removedFlag{why: "etcd 3.7 removed it: use " + now}
	}
	return m
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

func setUint32(p func(*Config) *uint32) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := parseUint(v, 32)
		*p(c) = uint32(n)
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

// checkDuration accepts what setDuration accepts and keeps nothing (for
// ignored options).
func checkDuration(_ *Config, v string) error {
	var d time.Duration
	return setDuration(func(*Config) *time.Duration { return &d })(nil, v)
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
