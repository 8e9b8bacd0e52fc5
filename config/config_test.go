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
		MaxSnapshots:                5,
		MaxWALs:                     5,
		QuotaBackendBytes:           0,
		MaxRequestBytes:             1572864,
		MaxTxnOps:                   128,
		WarningUnaryRequestDuration: 300 * time.Millisecond,
		GRPCKeepAliveMinTime:        5 * time.Second,
		GRPCKeepAliveInterval:       2 * time.Hour,
		GRPCKeepAliveTimeout:        20 * time.Second,
		EnableGRPCGateway:           true,
		InitialCluster:              []Member{{Name: "default", PeerURLs: []string{"http://localhost:2380"}}},
		InitialClusterState:         "new",
		InitialClusterToken:         "etcd-cluster",
		StrictReconfigCheck:         true,
		MaxLearners:                 1,
		PreVote:                     true,
		AutoCompactionMode:          "periodic",
		AutoCompactionRetention:     "0",
		AuthToken:                   "simple",
		BcryptCost:                  10,
		AuthTokenTTL:                300,
		EnablePprof:                 false,
		Metrics:                     "basic",
		LogLevel:                    "info",
		LogFormat:                   "json",
		LogOutputs:                  []string{"default"},

		ExperimentalWatchProgressNotifyInterval: 10 * time.Minute,
		ExperimentalCompactionBatchLimit:        1000,
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
	w.ListenMetricsURLs = []url.URL{u("http://127.0.0.1:2381")}
	w.StrictReconfigCheck = false
	w.ExperimentalWatchProgressNotifyInterval = 5 * time.Second
	w.LogOutputs = []string{"stderr"}
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
	c, err := Parse([]string{"--proxy", "off", "--cert-file=", "--auto-tls=false", "--logger", "zap", "--cors", "*"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sameSettings(t, c, Default())
	if len(c.Warnings) != 0 {
		t.Fatalf("warnings %q", c.Warnings)
	}
	// Harmless ones are ignored with a warning.
	c, err = Parse([]string{"--cipher-suites", "TLS_AES_128_GCM_SHA256"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`ignoring --cipher-suites="TLS_AES_128_GCM_SHA256": cairn does not implement this etcd option yet`}
	if !slices.Equal(c.Warnings, want) {
		t.Fatalf("warnings %q, want %q", c.Warnings, want)
	}
	// Others are refused.
	for _, tc := range []struct {
		args []string
		env  []string
		want string
	}{
		{[]string{"--cert-file", "/etc/cert.pem"}, nil,
			`invalid value "/etc/cert.pem" for --cert-file: cairn does not implement this etcd option yet (only etcd's default "" is accepted)`},
		{[]string{"--force-new-cluster"}, nil,
			`invalid value "true" for --force-new-cluster: cairn does not implement this etcd option yet (only etcd's default "false" is accepted)`},
		{nil, []string{"ETCD_DISCOVERY=https://discovery.etcd.io/x"},
			`invalid value "https://discovery.etcd.io/x" for ETCD_DISCOVERY: cairn does not implement this etcd option yet (only etcd's default "" is accepted)`},
	} {
		_, err := Parse(tc.args, tc.env)
		if err == nil || err.Error() != tc.want {
			t.Errorf("Parse(%q, %q) error = %v\nwant %s", tc.args, tc.env, err, tc.want)
		}
	}
}

func TestDeprecatedExperimentalSpelling(t *testing.T) {
	c, err := Parse([]string{"--experimental-watch-progress-notify-interval", "3s"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.ExperimentalWatchProgressNotifyInterval != 3*time.Second {
		t.Fatalf("interval = %v, want 3s", c.ExperimentalWatchProgressNotifyInterval)
	}
	want := []string{"--experimental-watch-progress-notify-interval is deprecated: use --watch-progress-notify-interval (ETCD_WATCH_PROGRESS_NOTIFY_INTERVAL) instead"}
	if !slices.Equal(c.Warnings, want) {
		t.Fatalf("warnings %q, want %q", c.Warnings, want)
	}
	_, err = Parse([]string{"--experimental-watch-progress-notify-interval", "3s", "--watch-progress-notify-interval=4s"}, nil)
	if err == nil || err.Error() != "--experimental-watch-progress-notify-interval and --watch-progress-notify-interval set the same option: give only one" {
		t.Fatalf("err = %v", err)
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
		"MaxSnapshots": "max-snapshots", "MaxWALs": "max-wals", "QuotaBackendBytes": "quota-backend-bytes",
		"BackendBatchInterval": "backend-batch-interval", "BackendBatchLimit": "backend-batch-limit",
		"MaxRequestBytes": "max-request-bytes", "MaxTxnOps": "max-txn-ops",
		"GRPCKeepAliveMinTime": "grpc-keepalive-min-time", "GRPCKeepAliveInterval": "grpc-keepalive-interval",
		"GRPCKeepAliveTimeout": "grpc-keepalive-timeout", "EnableGRPCGateway": "enable-grpc-gateway",
		"InitialCluster": "initial-cluster", "InitialClusterState": "initial-cluster-state",
		"InitialClusterToken": "initial-cluster-token", "StrictReconfigCheck": "strict-reconfig-check", "MaxLearners": "max-learners",
		"SnapshotCatchUpEntries": "snapshot-catchup-entries", "SocketReuseAddress": "socket-reuse-address",
		"SocketReusePort": "socket-reuse-port", "WarningUnaryRequestDuration": "warning-unary-request-duration",
		"PreVote": "pre-vote", "AutoCompactionMode": "auto-compaction-mode",
		"AutoCompactionRetention": "auto-compaction-retention",
		"AuthToken":               "auth-token", "BcryptCost": "bcrypt-cost", "AuthTokenTTL": "auth-token-ttl",
		"EnablePprof": "enable-pprof", "Metrics": "metrics", "ListenMetricsURLs": "listen-metrics-urls",
		"LogLevel": "log-level", "LogFormat": "log-format", "LogOutputs": "log-outputs",
		"ExperimentalWatchProgressNotifyInterval": "watch-progress-notify-interval",
		"ExperimentalInitialCorruptCheck":         "experimental-initial-corrupt-check",
		"ExperimentalCorruptCheckTime":            "corrupt-check-time",
		"ExperimentalCompactionBatchLimit":        "compaction-batch-limit",
		"ExperimentalEnableLeaseCheckpoint":       "experimental-enable-lease-checkpoint",
		"ConfigFile":                              "config-file",
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
		if !strings.Contains(usage, "--"+name+" ") {
			t.Errorf("Usage() does not mention --%s (Config.%s)", name, f.Name)
		}
	}
	for _, o := range options() {
		if !strings.Contains(usage, "  --"+o.name+" '"+o.def+"'") {
			t.Errorf("Usage() does not list --%s with its default %q", o.name, o.def)
		}
	}
	for _, g := range []string{"\nMember:\n", "\nClustering:\n", "\nSecurity:\n", "\nAuth:\n", "\nLogging:\n"} {
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
