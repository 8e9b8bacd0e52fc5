package config

import (
	"errors"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func u(s string) url.URL {
	p, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return *p
}

func TestDefaultMatchesEtcd(t *testing.T) {
	want := &Config{
		Name:                        "default",
		DataDir:                     "default.etcd",
		WALDir:                      "",
		SnapshotCount:               10000,
		SnapshotCatchUpEntries:      5000,
		HeartbeatInterval:           100 * time.Millisecond,
		ElectionTimeout:             1000 * time.Millisecond,
		InitialElectionTickAdvance:  true,
		ListenClientURLs:            []url.URL{u("http://localhost:2379")},
		AdvertiseClientURLs:         []url.URL{u("http://localhost:2379")},
		ListenPeerURLs:              []url.URL{u("http://localhost:2380")},
		InitialAdvertisePeerURLs:    []url.URL{u("http://localhost:2380")},
		QuotaBackendBytes:           0,
		MaxRequestBytes:             1572864,
		MaxTxnOps:                   128,
		MaxConcurrentStreams:        4294967295,
		WarningUnaryRequestDuration: 300 * time.Millisecond,
		GRPCKeepAliveMinTime:        5 * time.Second,
		GRPCKeepAliveInterval:       2 * time.Hour,
		GRPCKeepAliveTimeout:        20 * time.Second,
		EnableGRPCGateway:           true,
		InitialCluster:              []Member{{Name: "default", PeerURLs: []string{"http://localhost:2380"}}},
		InitialClusterState:         "new",
		InitialClusterToken:         "etcd-cluster",
		Discovery:                   Discovery{DialTimeout: 2 * time.Second, RequestTimeout: 5 * time.Second, KeepAliveTime: 2 * time.Second, KeepAliveTimeout: 6 * time.Second, InsecureTransport: true},
		StrictReconfigCheck:         true,
		MaxLearners:                 1,
		PreVote:                     true,
		AutoCompactionMode:          "periodic",
		AutoCompactionRetention:     "0",
		SelfSignedCertValidity:      1,
		TLSMinVersion:               "TLS1.2",
		AuthToken:                   "simple",
		BcryptCost:                  10,
		AuthTokenTTL:                300,
		EnablePprof:                 false,
		Metrics:                     "basic",
		LogLevel:                    "info",
		LogFormat:                   "json",
		LogOutputs:                  []string{"default"},

		WatchProgressNotifyInterval: 10 * time.Minute,
		CompactionBatchLimit:        1000,
		CompactionSleepInterval:     10 * time.Millisecond,
		CompactHashCheckTime:        time.Minute,
		WarningApplyDuration:        100 * time.Millisecond,
	}
	got := Default()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Default() =\n%+v\nwant\n%+v", got, want)
	}
	if err := got.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	if q, on := got.BackendQuota(); q != 2<<30 || !on {
		t.Fatalf("BackendQuota() = %d, %v; want 2 GiB, true", q, on)
	}
}

func TestParseWithNothingGivenIsDefault(t *testing.T) {
	c, err := Parse(nil, []string{"HOME=/root", "PATH=/bin"})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Fatalf("Parse(nil) =\n%+v\nwant Default()\n%+v", c, Default())
	}
}

// flagArgs is a three-member configuration for member n2, with values away
// from every default.
var flagPairs = [][2]string{
	{"name", "n2"},
	{"data-dir", "/var/lib/cairn"},
	{"wal-dir", "/wal"},
	{"snapshot-count", "5000"},
	{"heartbeat-interval", "50"},
	{"election-timeout", "500"},
	{"listen-peer-urls", "http://10.0.0.2:2380"},
	{"listen-client-urls", "http://10.0.0.2:2379,http://127.0.0.1:2379"},
	{"advertise-client-urls", "http://10.0.0.2:2379"},
	{"initial-advertise-peer-urls", "http://10.0.0.2:2380"},
	{"initial-cluster", "n1=http://10.0.0.1:2380,n2=http://10.0.0.2:2380,n3=http://10.0.0.3:2380"},
	{"initial-cluster-state", "existing"},
	{"initial-cluster-token", "tok"},
	{"quota-backend-bytes", "4294967296"},
	{"max-request-bytes", "2097152"},
	{"max-txn-ops", "256"},
	{"auto-compaction-mode", "revision"},
	{"auto-compaction-retention", "1000"},
	{"log-level", "debug"},
	{"enable-pprof", "true"},
	{"listen-metrics-urls", "http://127.0.0.1:2381"},
	{"strict-reconfig-check", "false"},
	{"watch-progress-notify-interval", "5s"},
	{"log-outputs", "stderr"},
	{"listen-client-http-urls", "http://10.0.0.2:2378"},
	{"memory-mlock", "true"},
	{"unsafe-no-fsync", "true"},
	{"compact-hash-check-time", "30s"},
	{"feature-gates", "CompactHashCheck=false,StopGRPCServiceOnDefrag=true"},
	{"max-concurrent-streams", "100"},
	{"enable-grpc-gateway", "false"},
	{"compaction-batch-limit", "50"},
	{"compaction-sleep-interval", "25ms"},
	{"pre-vote", "false"},
	{"initial-election-tick-advance", "false"},
	{"enable-console", "true"},
	{"console-read-only", "true"},
}

func wantFromPairs() *Config {
	w := Default()
	w.Name = "n2"
	w.DataDir = "/var/lib/cairn"
	w.WALDir = "/wal"
	w.SnapshotCount = 5000
	w.HeartbeatInterval = 50 * time.Millisecond
	w.ElectionTimeout = 500 * time.Millisecond
	w.ListenPeerURLs = []url.URL{u("http://10.0.0.2:2380")}
	w.ListenClientURLs = []url.URL{u("http://10.0.0.2:2379"), u("http://127.0.0.1:2379")}
	w.AdvertiseClientURLs = []url.URL{u("http://10.0.0.2:2379")}
	w.InitialAdvertisePeerURLs = []url.URL{u("http://10.0.0.2:2380")}
	w.InitialCluster = []Member{
		{Name: "n1", PeerURLs: []string{"http://10.0.0.1:2380"}},
		{Name: "n2", PeerURLs: []string{"http://10.0.0.2:2380"}},
		{Name: "n3", PeerURLs: []string{"http://10.0.0.3:2380"}},
	}
	w.InitialClusterState = "existing"
	w.InitialClusterToken = "tok"
	w.QuotaBackendBytes = 4 << 30
	w.MaxRequestBytes = 2 << 20
	w.MaxTxnOps = 256
	w.AutoCompactionMode = "revision"
	w.AutoCompactionRetention = "1000"
	w.LogLevel = "debug"
	w.EnablePprof = true
	w.EnableConsole = true
	w.ConsoleReadOnly = true
	w.ListenMetricsURLs = []url.URL{u("http://127.0.0.1:2381")}
	w.StrictReconfigCheck = false
	w.WatchProgressNotifyInterval = 5 * time.Second
	w.LogOutputs = []string{"stderr"}
	w.ListenClientHTTPURLs = []url.URL{u("http://10.0.0.2:2378")}
	w.MemoryMlock = true
	w.UnsafeNoFsync = true
	w.CompactHashCheckTime = 30 * time.Second
	w.FeatureGates = FeatureGates{GateCompactHashCheck: false, GateStopGRPCServiceOnDefrag: true}
	w.MaxConcurrentStreams = 100
	w.EnableGRPCGateway = false
	w.CompactionBatchLimit = 50
	w.CompactionSleepInterval = 25 * time.Millisecond
	w.PreVote = false
	w.InitialElectionTickAdvance = false
	return w
}

// sameSettings compares everything but the bookkeeping (origin, warnings,
// config file).
func sameSettings(t *testing.T, got, want *Config) {
	t.Helper()
	g, w := *got, *want
	g.origin, w.origin = nil, nil
	g.Warnings, w.Warnings = nil, nil
	g.ConfigFile, w.ConfigFile = "", ""
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("got\n%+v\nwant\n%+v", g, w)
	}
}

func TestFlagsInBothForms(t *testing.T) {
	var spaced, joined, single []string
	for _, p := range flagPairs {
		joined = append(joined, "--"+p[0]+"="+p[1])
		if p[1] == "true" || p[1] == "false" {
			// As with etcd (and the flag package), a boolean flag never
			// takes the next argument as its value.
			spaced = append(spaced, "--"+p[0]+"="+p[1])
			single = append(single, "-"+p[0]+"="+p[1])
			continue
		}
		spaced = append(spaced, "--"+p[0], p[1])
		single = append(single, "-"+p[0], p[1])
	}
	for name, args := range map[string][]string{"--a b": spaced, "--a=b": joined, "-a b": single} {
		t.Run(name, func(t *testing.T) {
			c, err := Parse(args, nil)
			if err != nil {
				t.Fatal(err)
			}
			sameSettings(t, c, wantFromPairs())
			if len(c.Warnings) != 0 {
				t.Fatalf("warnings %q, want none", c.Warnings)
			}
		})
	}
}

func TestBoolFlagStandsAlone(t *testing.T) {
	c, err := Parse([]string{"--enable-pprof", "--pre-vote=false", "--strict-reconfig-check", "false"}, nil)
	// "--strict-reconfig-check false": a bool flag does not take the next
	// argument, so "false" is a stray positional argument, as with etcd.
	if err == nil || err.Error() != `unexpected argument "false": cairn takes only flags (see --help)` {
		t.Fatalf("err = %v", err)
	}
	c, err = Parse([]string{"--enable-pprof", "--pre-vote=false"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !c.EnablePprof || c.PreVote {
		t.Fatalf("EnablePprof=%v PreVote=%v, want true false", c.EnablePprof, c.PreVote)
	}
}

func TestEnvironmentVariables(t *testing.T) {
	var env []string
	for _, p := range flagPairs {
		env = append(env, envName(p[0])+"="+p[1])
	}
	c, err := Parse(nil, env)
	if err != nil {
		t.Fatal(err)
	}
	sameSettings(t, c, wantFromPairs())
	if len(c.Warnings) != 0 {
		t.Fatalf("warnings %q, want none", c.Warnings)
	}
}

func TestFlagBeatsEnvironment(t *testing.T) {
	c, err := Parse([]string{"--data-dir", "/from-flag"},
		[]string{"ETCD_DATA_DIR=/from-env", "ETCD_SNAPSHOT_COUNT=7", "ETCD_WAL_DIR="})
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "/from-flag" || c.SnapshotCount != 7 || c.WALDir != "" {
		t.Fatalf("DataDir=%q SnapshotCount=%d WALDir=%q", c.DataDir, c.SnapshotCount, c.WALDir)
	}
	want := []string{"ignoring ETCD_DATA_DIR: --data-dir is set on the command line"}
	if !slices.Equal(c.Warnings, want) {
		t.Fatalf("warnings %q, want %q", c.Warnings, want)
	}
}

func TestUnknownEnvironmentVariablesAreWarnedAbout(t *testing.T) {
	c, err := Parse(nil, []string{"ETCD_ZETA=1", "ETCD_NAME=default", "ETCD_ALPHA=x", "ETCDCTL_API=3", "ETCD_UNSUPPORTED_ARCH=arm"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"ignoring unrecognized environment variable ETCD_ALPHA",
		"ignoring unrecognized environment variable ETCD_ZETA",
	}
	if !slices.Equal(c.Warnings, want) {
		t.Fatalf("warnings %q, want %q", c.Warnings, want)
	}
}

func TestNameDerivesDataDirAndInitialCluster(t *testing.T) {
	c, err := Parse([]string{"--name", "n1", "--initial-advertise-peer-urls", "http://127.0.0.1:12380", "--listen-peer-urls", "http://127.0.0.1:12380"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "n1.etcd" {
		t.Fatalf("DataDir = %q, want n1.etcd", c.DataDir)
	}
	want := []Member{{Name: "n1", PeerURLs: []string{"http://127.0.0.1:12380"}}}
	if !reflect.DeepEqual(c.InitialCluster, want) {
		t.Fatalf("InitialCluster = %+v, want %+v", c.InitialCluster, want)
	}
}

func TestUnsupportedEtcdFlags(t *testing.T) {
	// etcd's default value is accepted and changes nothing.
	c, err := Parse([]string{"--cert-file=", "--auto-tls=false", "--logger", "zap", "--cors", "*", "--corrupt-check-time", "0s",
		"--discovery-fallback", "exit", "--max-wals", "5", "--v2-deprecation", "write-only"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sameSettings(t, c, Default())
	if len(c.Warnings) != 0 {
		t.Fatalf("warnings %q", c.Warnings)
	}
	// Options whose every value is harmless to ignore are accepted with a
	// warning that says why they change nothing.
	c, err = Parse([]string{"--max-snapshots=3", "--v2-deprecation", "gone",
		"--raft-read-timeout", "10s"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`ignoring --max-snapshots="3": cairn keeps no snapshot files (a raft snapshot is the database itself); etcd deprecated this flag in 3.6`,
		`ignoring --v2-deprecation="gone": --v2-deprecation is deprecated and scheduled for removal in v3.8. The default value is enforced, ignoring user input (cairn keeps no v2 store for v3 data; the v2 API is --enable-v2)`,
		`ignoring --raft-read-timeout="10s": cairn's peer transport sets no per-connection read or write timeout`,
	}
	if !slices.Equal(c.Warnings, want) {
		t.Fatalf("warnings\n%q\nwant\n%q", c.Warnings, want)
	}
	// Others are refused, and so are bad values of the ignored ones, as
	// etcd refuses them.
	for _, tc := range []struct {
		args []string
		env  []string
		want string
	}{
		{[]string{"--cors", "example.com"}, nil,
			`invalid value "example.com" for --cors: cairn does not implement this etcd option yet (only etcd's default "*" is accepted)`},
		{nil, []string{"ETCD_DISCOVERY_SRV=example.com"},
			`invalid value "example.com" for ETCD_DISCOVERY_SRV: cairn does not implement this etcd option yet (only etcd's default "" is accepted)`},
		{[]string{"--corrupt-check-time", "1m"}, nil,
			`invalid value "1m" for --corrupt-check-time: cairn does not implement this etcd option yet (only etcd's default "0s" is accepted)`},
		{[]string{"--v2-deprecation", "not-yet"}, nil,
			`invalid value "not-yet" for --v2-deprecation: want "write-only", "write-only-skip-check", "write-only-drop-data" or "gone"`},
		{[]string{"--discovery-fallback", "proxy"}, nil,
			`invalid value "proxy" for --discovery-fallback: v2 proxy is deprecated, and --discovery-fallback can't be configured as "proxy"`},
		{[]string{"--logger", "capnslog"}, nil,
			`invalid value "capnslog" for --logger: --logger=capnslog is removed in v3.5`},
		{nil, []string{"ETCD_MAX_CONCURRENT_STREAMS=4294967296"},
			`invalid value "4294967296" for ETCD_MAX_CONCURRENT_STREAMS: want a non-negative whole number`},
		{[]string{"--compaction-sleep-interval", "soon"}, nil,
			`invalid value "soon" for --compaction-sleep-interval: want a duration such as "500ms", "10s" or "2h"`},
		{[]string{"--bcrypt-cost", "3"}, nil,
			`invalid value "3" for --bcrypt-cost: must be between 4 and 31`},
	} {
		_, err := Parse(tc.args, tc.env)
		if err == nil || err.Error() != tc.want {
			t.Errorf("Parse(%q, %q) error = %v\nwant %s", tc.args, tc.env, err, tc.want)
		}
	}
}

// TestRemovedEtcdFlags: the flags etcd 3.7 removed are unknown flags, as
// in etcd 3.7, and the error says what replaced them; their ETCD_*
// variables are ignored with a warning that says the same.
func TestRemovedEtcdFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--experimental-watch-progress-notify-interval", "3s"},
			"unknown flag --experimental-watch-progress-notify-interval: etcd 3.7 removed it: use --watch-progress-notify-interval (see --help)"},
		{[]string{"--experimental-initial-corrupt-check=true"},
			"unknown flag --experimental-initial-corrupt-check: etcd 3.7 removed it: use --feature-gates=InitialCorruptCheck=true (see --help)"},
		{[]string{"--experimental-compact-hash-check-time", "1m"},
			"unknown flag --experimental-compact-hash-check-time: etcd 3.7 removed it: use --compact-hash-check-time (see --help)"},
		{[]string{"--experimental-memory-mlock"},
			"unknown flag --experimental-memory-mlock: etcd 3.7 removed it: use --memory-mlock (see --help)"},
		{[]string{"--proxy", "off"}, "unknown flag --proxy: etcd 3.7 removed the v2 proxy (see --help)"},
		{[]string{"--discovery", "https://discovery.etcd.io/x"}, "unknown flag --discovery: etcd 3.7 removed v2 discovery (see --help)"},
	} {
		_, err := Parse(tc.args, nil)
		if err == nil || err.Error() != tc.want {
			t.Errorf("Parse(%q) error = %v\nwant %s", tc.args, err, tc.want)
		}
	}
	c, err := Parse(nil, []string{"ETCD_EXPERIMENTAL_COMPACTION_BATCH_LIMIT=5", "ETCD_PROXY=on"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"ignoring environment variable ETCD_EXPERIMENTAL_COMPACTION_BATCH_LIMIT: etcd 3.7 removed it: use --compaction-batch-limit",
		"ignoring environment variable ETCD_PROXY: etcd 3.7 removed the v2 proxy",
	}
	if !slices.Equal(c.Warnings, want) || c.CompactionBatchLimit != DefaultCompactionBatchLimit {
		t.Fatalf("warnings %q (want %q), CompactionBatchLimit %d", c.Warnings, want, c.CompactionBatchLimit)
	}
}

func TestHelpVersionAndStrayArguments(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--help"}, {"--name", "x", "-help"}} {
		if _, err := Parse(args, nil); !errors.Is(err, ErrHelp) {
			t.Errorf("Parse(%q) error = %v, want ErrHelp", args, err)
		}
	}
	if _, err := Parse([]string{"--version"}, nil); !errors.Is(err, ErrVersion) {
		t.Errorf("Parse(--version) error = %v, want ErrVersion", err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--no-such-flag", "1"}, "unknown flag --no-such-flag (see --help)"},
		{[]string{"-no-such-flag"}, "unknown flag --no-such-flag (see --help)"},
		{[]string{"--name"}, "flag --name needs a value"},
		{[]string{"serve"}, `unexpected argument "serve": cairn takes only flags (see --help)`},
	} {
		_, err := Parse(tc.args, nil)
		if err == nil || err.Error() != tc.want {
			t.Errorf("Parse(%q) error = %v, want %s", tc.args, err, tc.want)
		}
	}
}

func TestBackendQuota(t *testing.T) {
	for _, tc := range []struct {
		set     int64
		want    int64
		enabled bool
	}{{0, 2 << 30, true}, {1 << 20, 1 << 20, true}, {-1, 0, false}} {
		c := Default()
		c.QuotaBackendBytes = tc.set
		if q, on := c.BackendQuota(); q != tc.want || on != tc.enabled {
			t.Errorf("quota %d: BackendQuota() = %d, %v; want %d, %v", tc.set, q, on, tc.want, tc.enabled)
		}
	}
	c, err := Parse([]string{"--quota-backend-bytes", "10737418240"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"--quota-backend-bytes=10737418240 exceeds the suggested maximum of 8589934592 bytes"}
	if !slices.Equal(c.Warnings, want) {
		t.Fatalf("warnings %q, want %q", c.Warnings, want)
	}
}

func TestValidateNamesFlagWhenBuiltInCode(t *testing.T) {
	c := Default()
	c.ElectionTimeout = 200 * time.Millisecond
	err := c.Validate()
	want := `invalid value "200" for --election-timeout: must be at least 5 times --heartbeat-interval (100 ms)`
	if err == nil || err.Error() != want {
		t.Fatalf("Validate() = %v, want %s", err, want)
	}
	c = Default()
	c.Name = "other"
	err = c.Validate()
	want = `invalid value "other" for --name: no member of that name in --initial-cluster ("default=http://localhost:2380")`
	if err == nil || err.Error() != want {
		t.Fatalf("Validate() = %v, want %s", err, want)
	}
	c = Default()
	c.InitialCluster = []Member{{Name: "default", PeerURLs: []string{"http://localhost:2380"}}, {Name: "b", PeerURLs: []string{"http://localhost:2380"}}}
	err = c.Validate()
	want = `invalid value "default=http://localhost:2380,b=http://localhost:2380" for --initial-cluster: URL "http://localhost:2380" is listed twice`
	if err == nil || err.Error() != want {
		t.Fatalf("Validate() = %v, want %s", err, want)
	}
}

func TestUsageListsEveryConfigField(t *testing.T) {
	flagOf := map[string]string{
		"Name": "name", "DataDir": "data-dir", "WALDir": "wal-dir", "SnapshotCount": "snapshot-count",
		"HeartbeatInterval": "heartbeat-interval", "ElectionTimeout": "election-timeout",
		"InitialElectionTickAdvance": "initial-election-tick-advance",
		"ListenClientURLs":           "listen-client-urls", "AdvertiseClientURLs": "advertise-client-urls",
		"ListenPeerURLs": "listen-peer-urls", "InitialAdvertisePeerURLs": "initial-advertise-peer-urls",
		"ListenClientHTTPURLs": "listen-client-http-urls", "MemoryMlock": "memory-mlock",
		"MaxConcurrentStreams": "max-concurrent-streams", "FeatureGates": "feature-gates",
		"CompactHashCheckTime": "compact-hash-check-time", "UnsafeNoFsync": "unsafe-no-fsync", "ForceNewCluster": "force-new-cluster",
		"QuotaBackendBytes":    "quota-backend-bytes",
		"BackendBatchInterval": "backend-batch-interval", "BackendBatchLimit": "backend-batch-limit",
		"MaxRequestBytes": "max-request-bytes", "MaxTxnOps": "max-txn-ops",
		"GRPCKeepAliveMinTime": "grpc-keepalive-min-time", "GRPCKeepAliveInterval": "grpc-keepalive-interval",
		"GRPCKeepAliveTimeout": "grpc-keepalive-timeout", "EnableGRPCGateway": "enable-grpc-gateway", "EnableV2": "enable-v2",
		"InitialCluster": "initial-cluster", "InitialClusterState": "initial-cluster-state",
		"InitialClusterToken": "initial-cluster-token", "Discovery": "discovery-token", "StrictReconfigCheck": "strict-reconfig-check", "MaxLearners": "max-learners",
		"SnapshotCatchUpEntries": "snapshot-catchup-entries", "SocketReuseAddress": "socket-reuse-address",
		"SocketReusePort": "socket-reuse-port", "WarningUnaryRequestDuration": "warning-unary-request-duration",
		"PreVote": "pre-vote", "AutoCompactionMode": "auto-compaction-mode",
		"AutoCompactionRetention": "auto-compaction-retention",
		"AuthToken":               "auth-token", "BcryptCost": "bcrypt-cost", "AuthTokenTTL": "auth-token-ttl",
		"EnablePprof": "enable-pprof", "Metrics": "metrics", "ListenMetricsURLs": "listen-metrics-urls",
		"EnableConsole": "enable-console", "ConsoleReadOnly": "console-read-only",
		"LogLevel": "log-level", "LogFormat": "log-format", "LogOutputs": "log-outputs",
		"WatchProgressNotifyInterval": "watch-progress-notify-interval", "WarningApplyDuration": "warning-apply-duration",
		"CompactionBatchLimit": "compaction-batch-limit", "CompactionSleepInterval": "compaction-sleep-interval",
		"ConfigFile": "config-file",
		"ClientTLS":  "cert-file", "PeerTLS": "peer-cert-file", "SelfSignedCertValidity": "self-signed-cert-validity",
		"CipherSuites": "cipher-suites", "TLSMinVersion": "tls-min-version", "TLSMaxVersion": "tls-max-version",
	}
	usage := Usage()
	typ := reflect.TypeOf(Config{})
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		if !f.IsExported() || f.Name == "Warnings" {
			continue
		}
		name, ok := flagOf[f.Name]
		if !ok {
			t.Errorf("Config.%s has no flag in this test's table: add it (and to Usage)", f.Name)
			continue
		}
		if !strings.Contains(usage, "--"+name+" ") && !strings.Contains(usage, "--"+name+",") && !strings.Contains(usage, "--"+name+"\n") {
			t.Errorf("Usage() does not mention --%s (Config.%s)", name, f.Name)
		}
	}
	for _, o := range options() {
		listed := strings.Contains(usage, "  --"+o.name+" '"+o.def+"'")
		if listed == o.ignored {
			t.Errorf("Usage(): --%s listed with its default %q: %v; want it listed unless ignored (ignored: %v)", o.name, o.def, listed, o.ignored)
		}
	}
	ignoredPart := usage[strings.Index(usage, "\nAccepted for compatibility with etcd, and ignored"):]
	for _, o := range options() {
		if o.ignored && !strings.Contains(ignoredPart, "--"+o.name) {
			t.Errorf("Usage() does not name the ignored --%s at the end", o.name)
		}
	}
	for _, g := range []string{"\nMember:\n", "\nClustering:\n", "\nSecurity:\n", "\nLogging:\n", "\nFeatures:\n"} {
		if !strings.Contains(usage, g) {
			t.Errorf("Usage() has no %q group", strings.TrimSpace(g))
		}
	}
}

func TestEveryOptionHasAWellFormedEntry(t *testing.T) {
	seen := make(map[string]bool)
	for _, o := range options() {
		if seen[o.name] {
			t.Errorf("option %q listed twice", o.name)
		}
		seen[o.name] = true
		if o.help == "" || !slices.Contains(groups(), o.group) {
			t.Errorf("option %q: help %q group %q", o.name, o.help, o.group)
		}
		if o.ignored != (o.why != "") {
			t.Errorf("option %q: ignored %v, but why %q", o.name, o.ignored, o.why)
		}
		if _, removed := removedFlags()[o.name]; removed {
			t.Errorf("option %q is also listed as removed in etcd 3.7", o.name)
		}
		if o.set != nil && o.def != "" && o.def != "${name}.etcd" {
			// Setting an implemented option to its documented default
			// must give Default()'s value.
			c := parseStart()
			if err := o.set(c, o.def); err != nil {
				t.Errorf("option %q: default %q does not parse: %v", o.name, o.def, err)
				continue
			}
			d := parseStart()
			if !reflect.DeepEqual(c, d) {
				t.Errorf("option %q: its documented default %q differs from Default()", o.name, o.def)
			}
		}
	}
}

func TestWarningApplyDuration(t *testing.T) {
	c, err := Parse([]string{"--warning-apply-duration", "250ms"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.WarningApplyDuration != 250*time.Millisecond || len(c.Warnings) != 0 {
		t.Fatalf("--warning-apply-duration 250ms: %v, warnings %q", c.WarningApplyDuration, c.Warnings)
	}
	if _, err := Parse([]string{"--warning-apply-duration", "soon"}, nil); err == nil {
		t.Fatal("a bad duration was accepted")
	}
}
