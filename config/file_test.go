package config

import (
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cairn.conf.yml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const fullFile = `
name: 'n2'
data-dir: /var/lib/cairn
wal-dir: /wal
snapshot-count: 5000
heartbeat-interval: 50
election-timeout: 500
quota-backend-bytes: 4294967296
listen-peer-urls: http://10.0.0.2:2380
listen-client-urls: http://10.0.0.2:2379,http://127.0.0.1:2379
advertise-client-urls: http://10.0.0.2:2379
initial-advertise-peer-urls: http://10.0.0.2:2380
initial-cluster: n1=http://10.0.0.1:2380,n2=http://10.0.0.2:2380,n3=http://10.0.0.3:2380
initial-cluster-token: 'tok'
initial-cluster-state: 'existing'
strict-reconfig-check: false
enable-pprof: true
enable-console: true
console-read-only: true
auto-compaction-mode: revision
auto-compaction-retention: "1000"
max-request-bytes: 2097152
max-txn-ops: 256
log-level: debug
log-outputs: [stderr]
listen-metrics-urls: http://127.0.0.1:2381
watch-progress-notify-interval: 5000000000
listen-client-http-urls: http://10.0.0.2:2378
memory-mlock: true
unsafe-no-fsync: true
compact-hash-check-time: 30000000000
feature-gates: CompactHashCheck=false,StopGRPCServiceOnDefrag=true
max-concurrent-streams: 100
enable-grpc-gateway: false
compaction-batch-limit: 50
compaction-sleep-interval: 25000000
pre-vote: false
initial-election-tick-advance: false
`

func TestConfigFile(t *testing.T) {
	path := writeFile(t, fullFile)
	c, err := Parse([]string{"--config-file", path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sameSettings(t, c, wantFromPairs())
	if c.ConfigFile != path {
		t.Fatalf("ConfigFile = %q, want %q", c.ConfigFile, path)
	}
	if len(c.Warnings) != 0 {
		t.Fatalf("warnings %q", c.Warnings)
	}
}

func TestConfigFileFromEnvironment(t *testing.T) {
	path := writeFile(t, fullFile)
	c, err := Parse(nil, []string{"ETCD_CONFIG_FILE=" + path})
	if err != nil {
		t.Fatal(err)
	}
	sameSettings(t, c, wantFromPairs())
}

// TestConfigFileOverridesFlagsAndEnvironment follows etcd's documented
// precedence: with a config file, other flags and ETCD_* variables are
// ignored.
func TestConfigFileOverridesFlagsAndEnvironment(t *testing.T) {
	path := writeFile(t, "name: n1\ninitial-cluster: n1=http://localhost:2380\n")
	c, err := Parse([]string{"--data-dir=/flag", "--config-file", path, "--snapshot-count", "1"},
		[]string{"ETCD_WAL_DIR=/env", "ETCD_BOGUS=1"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "n1" || c.DataDir != "n1.etcd" || c.SnapshotCount != 10000 || c.WALDir != "" {
		t.Fatalf("Name=%q DataDir=%q SnapshotCount=%d WALDir=%q", c.Name, c.DataDir, c.SnapshotCount, c.WALDir)
	}
	want := []string{
		"ignoring --data-dir: a config file is given, so command-line flags and ETCD_* variables are ignored",
		"ignoring --snapshot-count: a config file is given, so command-line flags and ETCD_* variables are ignored",
		"ignoring ETCD_WAL_DIR: a config file is given, so command-line flags and ETCD_* variables are ignored",
		"ignoring unrecognized environment variable ETCD_BOGUS",
	}
	if !slices.Equal(c.Warnings, want) {
		t.Fatalf("warnings\n%q\nwant\n%q", c.Warnings, want)
	}
}

// TestEtcdSampleStyleFile is a file laid out like etcd's etcd.conf.yml.sample:
// empty keys, etcd-only keys at their defaults, TLS sections that configure
// nothing. It must load, ignoring only the harmless extras.
func TestEtcdSampleStyleFile(t *testing.T) {
	path := writeFile(t, `
name: 'default'
data-dir:
wal-dir:
snapshot-count: 10000
heartbeat-interval: 100
election-timeout: 1000
quota-backend-bytes: 0
listen-peer-urls: http://localhost:2380
listen-client-urls: http://localhost:2379
max-snapshots: 5
max-wals: 5
cors:
initial-advertise-peer-urls: http://localhost:2380
advertise-client-urls: http://localhost:2379
discovery:
discovery-fallback: 'proxy'
discovery-proxy:
discovery-srv:
initial-cluster:
initial-cluster-token: 'etcd-cluster'
initial-cluster-state: 'new'
strict-reconfig-check: false
enable-pprof: true
proxy: 'off'
proxy-failure-wait: 5000
proxy-refresh-interval: 30000
proxy-dial-timeout: 1000
proxy-write-timeout: 5000
proxy-read-timeout: 0
client-transport-security:
  cert-file:
  key-file:
  client-cert-auth: false
  trusted-ca-file:
  auto-tls: false
peer-transport-security:
  cert-file:
  key-file:
  client-cert-auth: false
  trusted-ca-file:
  auto-tls: false
self-signed-cert-validity: 1
log-level: debug
logger: zap
log-outputs: [stderr]
force-new-cluster: false
auto-compaction-mode: periodic
auto-compaction-retention: "1"
cipher-suites: [
  TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
  TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
]
tls-min-version: 'TLS1.2'
tls-max-version: 'TLS1.3'
not-an-etcd-key: 1
`)
	c, err := Parse([]string{"--config-file=" + path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.StrictReconfigCheck = false
	want.EnablePprof = true
	want.LogLevel = "debug"
	want.LogOutputs = []string{"stderr"}
	want.AutoCompactionRetention = "1"
	want.CipherSuites = []string{"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"}
	want.TLSMaxVersion = "TLS1.3"
	sameSettings(t, c, want)
	wantWarnings := []string{
		`ignoring key "discovery-fallback" in config file ` + path + `="proxy": etcd 3.7 removed the v2 proxy`,
		`ignoring unrecognized key "not-an-etcd-key" in config file ` + path,
	}
	if !slices.Equal(c.Warnings, wantWarnings) {
		t.Fatalf("warnings\n%q\nwant\n%q", c.Warnings, wantWarnings)
	}
}

func TestConfigFileValueForms(t *testing.T) {
	path := writeFile(t, `
auto-compaction-retention: 2
listen-client-urls: [http://127.0.0.1:2379, "http://127.0.0.1:22379"]
advertise-client-urls: http://127.0.0.1:2379
grpc-keepalive-interval: 1m
compact-hash-check-time: 1000000000
experimental-compaction-batch-limit: 10
proxy: 'on'
feature-gates: [LeaseCheckpoint=false]
`)
	c, err := Parse([]string{"--config-file", path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.AutoCompactionRetention != "2" ||
		!slices.Equal(c.ListenClientURLs, []url.URL{u("http://127.0.0.1:2379"), u("http://127.0.0.1:22379")}) ||
		c.GRPCKeepAliveInterval != time.Minute || c.CompactHashCheckTime != time.Second ||
		c.CompactionBatchLimit != DefaultCompactionBatchLimit || c.FeatureGates.Enabled(GateLeaseCheckpoint) {
		t.Fatalf("got %+v", c)
	}
	want := []string{
		`ignoring key "experimental-compaction-batch-limit" in config file ` + path + `: etcd 3.7 removed it: use --compaction-batch-limit`,
		`ignoring key "proxy" in config file ` + path + `: etcd 3.7 removed the v2 proxy`,
		"feature gate LeaseCheckpoint=false has no effect: cairn always checkpoints the remaining TTLs of leases",
	}
	if !slices.Equal(c.Warnings, want) {
		t.Fatalf("warnings %q, want %q", c.Warnings, want)
	}
}

func TestConfigFileErrors(t *testing.T) {
	for _, tc := range []struct {
		name, body, want string
	}{
		{"bad number", "snapshot-count: lots\n",
			`invalid value "lots" for key "snapshot-count" in config file PATH: want a non-negative whole number`},
		{"bad election", "election-timeout: 60000\n",
			`invalid value "60000" for key "election-timeout" in config file PATH: must not exceed 50000 ms`},
		{"mapping for a scalar", "name: {a: b}\n",
			`invalid value {"a":"b"} for key "name" in config file PATH: want a value, not a mapping`},
		{"tls cert without key", "client-transport-security:\n  cert-file: /etc/c.pem\n",
			`key "client-transport-security.cert-file" in config file PATH and --key-file must be given together`},
		{"tls bad bool", "peer-transport-security:\n  client-cert-auth: maybe\n",
			`invalid value "maybe" for key "peer-transport-security.client-cert-auth" in config file PATH: want true or false`},
		{"tls section not a mapping", "peer-transport-security: yes\n",
			`invalid value true for key "peer-transport-security" in config file PATH: want a mapping`},
		{"https peer without cert", "listen-peer-urls: https://127.0.0.1:2380\ninitial-advertise-peer-urls: https://127.0.0.1:2380\ninitial-cluster: default=https://127.0.0.1:2380\n",
			`cannot listen on TLS for 127.0.0.1:2380: KeyFile and CertFile are not presented (give --peer-cert-file and --peer-key-file, or --peer-auto-tls)`},
		{"unsupported etcd key", "discovery-srv: example.com\n",
			`invalid value "example.com" for key "discovery-srv" in config file PATH: cairn does not implement this etcd option yet (only etcd's default "" is accepted)`},
		{"unknown feature gate", "feature-gates: CompactHashCheck=true,Foo=false\n",
			`invalid value "CompactHashCheck=true,Foo=false" for key "feature-gates" in config file PATH: unrecognized feature gate: Foo`},
		{"zero compact hash check time", "compact-hash-check-time: 0\n",
			`invalid value "0s" for key "compact-hash-check-time" in config file PATH: must be >0`},
		{"bad mlock", "memory-mlock: sometimes\n",
			`invalid value "sometimes" for key "memory-mlock" in config file PATH: want true or false`},
		{"bad http url", "listen-client-http-urls: localhost:2379\n",
			`invalid value "localhost:2379" for key "listen-client-http-urls" in config file PATH: URL "localhost:2379" has scheme "localhost"; want http, https, unix or unixs`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, tc.body)
			_, err := Parse([]string{"--config-file", path}, nil)
			want := strings.ReplaceAll(tc.want, "PATH", path)
			if err == nil || err.Error() != want {
				t.Fatalf("error\n got %v\nwant %s", err, want)
			}
		})
	}
	_, err := Parse([]string{"--config-file", "/nonexistent/cairn.yml"}, nil)
	if err == nil || err.Error() != "config file: open /nonexistent/cairn.yml: no such file or directory" {
		t.Fatalf("missing file: err = %v", err)
	}
}
