// Package config parses and validates the cairn daemon's configuration.
//
// Cairn accepts etcd's operator surface: the same command-line flags with
// etcd's defaults and meanings, an ETCD_* environment variable for every flag
// (--data-dir <-> ETCD_DATA_DIR), and etcd's YAML configuration file
// (--config-file), as etcd 3.7 has them: the flags etcd 3.7 removed (the
// --experimental-* spellings, the v2 proxy) are unknown here too. Flags
// that etcd knows but Cairn does not implement yet are rejected with one
// clear line unless they carry etcd's default value, so an operator is
// never silently given a weaker server than the one asked for; the few
// whose every value is harmless to ignore (etcd's deprecated knobs...)
// are accepted with a warning.
package config

import (
	"errors"
	"math"
	"net/url"
	"time"
)

// etcd's defaults, which are Cairn's defaults.
const (
	DefaultName                              = "default"
	DefaultListenPeerURL                     = "http://localhost:2380"
	DefaultListenClientURL                   = "http://localhost:2379"
	DefaultInitialClusterToken               = "etcd-cluster"
	DefaultSnapshotCount                     = 10000
	DefaultHeartbeatInterval                 = 100 * time.Millisecond
	DefaultElectionTimeout                   = 1000 * time.Millisecond
	DefaultMaxRequestBytes                   = 1536 * 1024 // 1.5 MiB
	DefaultMaxTxnOps                         = 128
	DefaultMaxLearners                       = 1
	DefaultSnapshotCatchUpEntries            = 5000
	DefaultWarningUnaryRequestDuration       = 300 * time.Millisecond
	DefaultQuotaBytes                  int64 = 2 * 1024 * 1024 * 1024 // 2 GiB, used when --quota-backend-bytes is 0
	MaxQuotaBytes                      int64 = 8 * 1024 * 1024 * 1024 // 8 GiB, etcd's suggested maximum
	DefaultWatchProgressNotify               = 10 * time.Minute
	DefaultCompactionBatchLimit              = 1000
	DefaultCompactHashCheckTime              = time.Minute
	DefaultBcryptCost                        = 10
	DefaultAuthTokenTTL                      = 300

	// MaxElectionTimeout is etcd's upper bound for --election-timeout.
	MaxElectionTimeout = 50000 * time.Millisecond

	ClusterStateNew      = "new"
	ClusterStateExisting = "existing"

	CompactionModePeriodic = "periodic"
	CompactionModeRevision = "revision"
)

// ErrHelp is returned by Parse when -h or --help is given. The caller prints
// Usage() and exits with status 0.
var ErrHelp = errors.New("help requested")

// ErrVersion is returned by Parse when --version is given. The caller prints
// its version and exits with status 0.
var ErrVersion = errors.New("version requested")

// Member is one named member of --initial-cluster. A member may have several
// peer URLs.
type Member struct {
	Name     string
	PeerURLs []string
}

// Config is the complete configuration of one cairn member. The zero value is
// not useful: start from Default() or Parse.
//
// Durations set from etcd's millisecond flags (--heartbeat-interval,
// --election-timeout) are held as time.Duration.
type Config struct {
	// Member.
	Name, DataDir, WALDir      string
	SnapshotCount              uint64
	SnapshotCatchUpEntries     uint64 // entries kept behind a raft snapshot for slow followers
	HeartbeatInterval          time.Duration
	ElectionTimeout            time.Duration
	InitialElectionTickAdvance bool
	ListenClientURLs           []url.URL
	// ListenClientHTTPURLs serve the client HTTP endpoints only; when any
	// is given, ListenClientURLs serve gRPC only (etcd's
	// --listen-client-http-urls).
	ListenClientHTTPURLs     []url.URL
	AdvertiseClientURLs      []url.URL
	ListenPeerURLs           []url.URL
	InitialAdvertisePeerURLs []url.URL
	// SocketReuseAddress and SocketReusePort set SO_REUSEADDR and
	// SO_REUSEPORT on every listener.
	SocketReuseAddress, SocketReusePort bool
	// MemoryMlock locks the backend database's pages in RAM.
	MemoryMlock          bool
	QuotaBackendBytes    int64         // 0 = DefaultQuotaBytes; negative disables the quota (as etcd)
	BackendBatchInterval time.Duration // 0 = the backend's default
	BackendBatchLimit    int           // 0 = the backend's default
	MaxRequestBytes      uint
	MaxTxnOps            uint
	MaxConcurrentStreams uint32 // per client connection
	// WarningUnaryRequestDuration: a unary request slower than this is
	// logged with a warning.
	WarningUnaryRequestDuration time.Duration
	GRPCKeepAliveMinTime        time.Duration
	GRPCKeepAliveInterval       time.Duration // 0 disables server pings
	GRPCKeepAliveTimeout        time.Duration // 0 disables
	EnableGRPCGateway           bool
	// EnableV2 is etcd 3.5's --enable-v2: serve the v2 HTTP API (v2http).
	EnableV2 bool
	// FeatureGates are etcd's --feature-gates (see FeatureGates.Enabled).
	FeatureGates FeatureGates

	// Clustering.
	InitialCluster          []Member
	InitialClusterState     string // ClusterStateNew | ClusterStateExisting
	InitialClusterToken     string
	Discovery               Discovery // v3 discovery (discovery.go)
	StrictReconfigCheck     bool
	MaxLearners             int // learners the cluster may hold at once
	PreVote                 bool
	AutoCompactionMode      string // CompactionModePeriodic | CompactionModeRevision
	AutoCompactionRetention string // "0" = off; decode with AutoCompaction

	// Security (tls.go): the client side's and the peer side's TLS
	// settings, and what both share.
	ClientTLS, PeerTLS     TLSInfo
	SelfSignedCertValidity uint     // years, for --auto-tls and --peer-auto-tls
	CipherSuites           []string // etcd's --cipher-suites names; empty lets Go choose
	TLSMinVersion          string   // "TLS1.2" (default) or "TLS1.3"
	TLSMaxVersion          string   // "" lets Go choose

	// Auth: checked as etcd checks them, not used yet.
	AuthToken    string // "simple" or "jwt,<options>"
	BcryptCost   uint
	AuthTokenTTL uint // seconds

	// Profiling and monitoring.
	EnablePprof       bool
	Metrics           string // "basic" | "extensive"
	ListenMetricsURLs []url.URL
	// EnableConsole serves the web console (package console) under
	// /console/ on the client HTTP listeners and the metrics URLs;
	// ConsoleReadOnly takes every write out of it (docs/console.md).
	EnableConsole   bool
	ConsoleReadOnly bool

	// Logging.
	LogLevel   string // debug|info|warn|error|panic|fatal
	LogFormat  string // json|console
	LogOutputs []string

	// Features.
	WatchProgressNotifyInterval time.Duration
	// WarningApplyDuration is etcd's --warning-apply-duration: an apply
	// slower than this is logged and counted as slow.
	WarningApplyDuration time.Duration
	CompactionBatchLimit int
	// CompactionSleepInterval is etcd's --compaction-sleep-interval: the
	// pause a compaction batch stands for (mvcc.Config.CompactionPace).
	CompactionSleepInterval time.Duration
	// CompactHashCheckTime is how often the leader compares the members'
	// hashes at the latest compacted revision (with the CompactHashCheck
	// feature gate).
	CompactHashCheckTime time.Duration

	// Unsafe.
	UnsafeNoFsync bool // no fsync of the WAL and the backend
	// ForceNewCluster restarts the member as a one-member cluster with its
	// data (etcd's --force-new-cluster).
	ForceNewCluster bool

	// ConfigFile is the YAML file the configuration was read from, if any.
	ConfigFile string

	// Warnings are the non-fatal findings of Parse, one line each, in a
	// stable order: unrecognized ETCD_* variables, ignored flags and
	// variables when a config file is used, accepted-but-ignored etcd
	// options, and feature gates that change nothing. The daemon logs them.
	Warnings []string

	// origin maps an option's canonical name to where its value came from
	// ("--x", "ETCD_X" or `config file key "x"`), so that errors name what
	// the operator actually wrote. Nil means all values are defaults or set
	// in code.
	origin map[string]string
}

// Default returns etcd's defaults: name "default", data dir "default.etcd",
// client URLs http://localhost:2379, peer URLs http://localhost:2380,
// initial cluster "default=http://localhost:2380", state "new", token
// "etcd-cluster", and the rest as documented on each flag in Usage().
func Default() *Config {
	return &Config{
		Discovery:                   defaultDiscovery(),
		Name:                        DefaultName,
		DataDir:                     DefaultName + ".etcd",
		SnapshotCount:               DefaultSnapshotCount,
		SnapshotCatchUpEntries:      DefaultSnapshotCatchUpEntries,
		WarningUnaryRequestDuration: DefaultWarningUnaryRequestDuration,
		HeartbeatInterval:           DefaultHeartbeatInterval,
		ElectionTimeout:             DefaultElectionTimeout,
		InitialElectionTickAdvance:  true,
		ListenClientURLs:            []url.URL{mustURL(DefaultListenClientURL)},
		AdvertiseClientURLs:         []url.URL{mustURL(DefaultListenClientURL)},
		ListenPeerURLs:              []url.URL{mustURL(DefaultListenPeerURL)},
		InitialAdvertisePeerURLs:    []url.URL{mustURL(DefaultListenPeerURL)},
		MaxRequestBytes:             DefaultMaxRequestBytes,
		MaxTxnOps:                   DefaultMaxTxnOps,
		MaxConcurrentStreams:        math.MaxUint32,
		GRPCKeepAliveMinTime:        5 * time.Second,
		GRPCKeepAliveInterval:       2 * time.Hour,
		GRPCKeepAliveTimeout:        20 * time.Second,
		EnableGRPCGateway:           true,

		InitialCluster:          []Member{{Name: DefaultName, PeerURLs: []string{DefaultListenPeerURL}}},
		InitialClusterState:     ClusterStateNew,
		InitialClusterToken:     DefaultInitialClusterToken,
		StrictReconfigCheck:     true,
		MaxLearners:             DefaultMaxLearners,
		PreVote:                 true,
		AutoCompactionMode:      CompactionModePeriodic,
		AutoCompactionRetention: "0",

		SelfSignedCertValidity: 1,
		TLSMinVersion:          "TLS1.2",

		AuthToken:    "simple",
		BcryptCost:   DefaultBcryptCost,
		AuthTokenTTL: DefaultAuthTokenTTL,

		Metrics: "basic",

		LogLevel:   "info",
		LogFormat:  "json",
		LogOutputs: []string{"default"},

		WatchProgressNotifyInterval: DefaultWatchProgressNotify,
		CompactionBatchLimit:        DefaultCompactionBatchLimit,
		CompactionSleepInterval:     10 * time.Millisecond,
		CompactHashCheckTime:        DefaultCompactHashCheckTime,
		WarningApplyDuration:        100 * time.Millisecond,
	}
}

// BackendQuota returns the backend size at which the NOSPACE alarm is raised
// and whether the quota is enabled: --quota-backend-bytes 0 means
// DefaultQuotaBytes, a negative value disables the quota, as in etcd.
func (c *Config) BackendQuota() (bytes int64, enabled bool) {
	switch {
	case c.QuotaBackendBytes < 0:
		return 0, false
	case c.QuotaBackendBytes == 0:
		return DefaultQuotaBytes, true
	default:
		return c.QuotaBackendBytes, true
	}
}

// where names the source of option name's value for error messages: the
// flag, the ETCD_* variable or the config file key the operator used.
func (c *Config) where(name string) string {
	if w, ok := c.origin[name]; ok {
		return w
	}
	return "--" + name
}

func (c *Config) setOrigin(name, where string) {
	if c.origin == nil {
		c.origin = make(map[string]string)
	}
	c.origin[name] = where
}

func mustURL(s string) url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return *u
}
