package config

import (
	"strings"
	"testing"
)

// TestValidationErrors checks every rejected configuration's exact message:
// one line naming the flag (or variable) and the bad value.
func TestValidationErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"name not in initial cluster",
			[]string{"--name", "n9", "--initial-cluster", "n1=http://10.0.0.1:2380"}, nil,
			`invalid value "n9" for --name: no member of that name in --initial-cluster ("n1=http://10.0.0.1:2380")`},
		{"name not in initial cluster from env",
			nil, []string{"ETCD_NAME=n9", "ETCD_INITIAL_CLUSTER=n1=http://10.0.0.1:2380"},
			`invalid value "n9" for ETCD_NAME: no member of that name in ETCD_INITIAL_CLUSTER ("n1=http://10.0.0.1:2380")`},
		{"advertise peer urls differ from initial cluster",
			[]string{"--name", "n1", "--initial-cluster", "n1=http://10.0.0.1:2380,n1=http://10.0.0.1:2381",
				"--initial-advertise-peer-urls", "http://10.0.0.1:2380"}, nil,
			`invalid value "http://10.0.0.1:2380" for --initial-advertise-peer-urls: --initial-cluster lists "http://10.0.0.1:2380,http://10.0.0.1:2381" for member "n1"`},
		{"bad url scheme",
			[]string{"--listen-client-urls", "ftp://127.0.0.1:2379"}, nil,
			`invalid value "ftp://127.0.0.1:2379" for --listen-client-urls: URL "ftp://127.0.0.1:2379" has scheme "ftp"; want http, https, unix or unixs`},
		{"url without port",
			[]string{"--advertise-client-urls", "http://10.0.0.1"}, nil,
			`invalid value "http://10.0.0.1" for --advertise-client-urls: URL "http://10.0.0.1" does not have a host:port address`},
		{"url with path",
			[]string{"--initial-advertise-peer-urls", "http://10.0.0.1:2380/x"}, nil,
			`invalid value "http://10.0.0.1:2380/x" for --initial-advertise-peer-urls: URL "http://10.0.0.1:2380/x" must not contain a path`},
		{"listen on a domain name",
			[]string{"--listen-peer-urls", "http://example.com:2380"}, nil,
			`invalid value "http://example.com:2380" for --listen-peer-urls: URL "http://example.com:2380" cannot be listened on: the host must be an IP address or localhost`},
		{"bad url from env",
			nil, []string{"ETCD_LISTEN_METRICS_URLS=gopher://127.0.0.1:1"},
			`invalid value "gopher://127.0.0.1:1" for ETCD_LISTEN_METRICS_URLS: URL "gopher://127.0.0.1:1" has scheme "gopher"; want http, https, unix or unixs`},
		{"listen client urls without advertise",
			[]string{"--listen-client-urls", "http://127.0.0.1:2379"}, nil,
			`--advertise-client-urls is required when --listen-client-urls ("http://127.0.0.1:2379") is set explicitly`},
		{"unknown cluster state",
			[]string{"--initial-cluster-state", "old"}, nil,
			`invalid value "old" for --initial-cluster-state: want "new" or "existing"`},
		{"zero heartbeat",
			[]string{"--heartbeat-interval", "0"}, nil,
			`invalid value "0" for --heartbeat-interval: must be a positive number of milliseconds`},
		{"zero election timeout",
			[]string{"--election-timeout=0"}, nil,
			`invalid value "0" for --election-timeout: must be a positive number of milliseconds`},
		{"negative heartbeat",
			[]string{"--heartbeat-interval", "-5"}, nil,
			`invalid value "-5" for --heartbeat-interval: want a whole number of milliseconds`},
		{"heartbeat with unit",
			[]string{"--heartbeat-interval", "100ms"}, nil,
			`invalid value "100ms" for --heartbeat-interval: want a whole number of milliseconds`},
		{"election below 5 heartbeats",
			[]string{"--heartbeat-interval", "100", "--election-timeout", "499"}, nil,
			`invalid value "499" for --election-timeout: must be at least 5 times --heartbeat-interval (100 ms)`},
		{"election below 5 heartbeats from env",
			nil, []string{"ETCD_HEARTBEAT_INTERVAL=300", "ETCD_ELECTION_TIMEOUT=1000"},
			`invalid value "1000" for ETCD_ELECTION_TIMEOUT: must be at least 5 times ETCD_HEARTBEAT_INTERVAL (300 ms)`},
		{"election above 50s",
			[]string{"--election-timeout", "50001"}, nil,
			`invalid value "50001" for --election-timeout: must not exceed 50000 ms`},
		{"zero max request bytes",
			[]string{"--max-request-bytes", "0"}, nil,
			`invalid value "0" for --max-request-bytes: must be at least 1`},
		{"unknown log level",
			[]string{"--log-level", "verbose"}, nil,
			`invalid value "verbose" for --log-level: want one of debug, info, warn, error, panic, fatal`},
		{"unknown log format",
			[]string{"--log-format", "xml"}, nil,
			`invalid value "xml" for --log-format: want one of json, console`},
		{"unknown compaction mode",
			[]string{"--auto-compaction-mode", "hourly"}, nil,
			`invalid value "hourly" for --auto-compaction-mode: want "periodic" or "revision"`},
		{"unparsable retention",
			[]string{"--auto-compaction-retention", "1 day"}, nil,
			`invalid value "1 day" for --auto-compaction-retention (periodic mode): want a duration such as "1h" or "30m", or a whole number of hours`},
		{"revision retention not a number",
			[]string{"--auto-compaction-mode", "revision", "--auto-compaction-retention", "1h"}, nil,
			`invalid value "1h" for --auto-compaction-retention (revision mode): revision mode wants a whole number of revisions`},
		{"negative retention",
			[]string{"--auto-compaction-retention", "-1"}, nil,
			`invalid value "-1" for --auto-compaction-retention (periodic mode): must not be negative`},
		{"bad snapshot count",
			[]string{"--snapshot-count", "many"}, nil,
			`invalid value "many" for --snapshot-count: want a non-negative whole number`},
		{"bad env number names the variable",
			nil, []string{"ETCD_SNAPSHOT_COUNT=lots"},
			`invalid value "lots" for ETCD_SNAPSHOT_COUNT: want a non-negative whole number`},
		{"bad env bool names the variable",
			nil, []string{"ETCD_ENABLE_PPROF=yes"},
			`invalid value "yes" for ETCD_ENABLE_PPROF: want true or false`},
		{"bad env duration names the variable",
			nil, []string{"ETCD_WATCH_PROGRESS_NOTIFY_INTERVAL=10"},
			`invalid value "10" for ETCD_WATCH_PROGRESS_NOTIFY_INTERVAL: want a duration such as "500ms", "10s" or "2h"`},
		{"zero watch progress interval",
			[]string{"--watch-progress-notify-interval", "0s"}, nil,
			`invalid value "0s" for --watch-progress-notify-interval: must be a positive duration`},
		{"negative keepalive",
			[]string{"--grpc-keepalive-timeout", "-1s"}, nil,
			`invalid value "-1s" for --grpc-keepalive-timeout: must not be negative`},
		{"bad auth token type",
			[]string{"--auth-token", "oauth"}, nil,
			`invalid value "oauth" for --auth-token: the token type must be "simple" or "jwt"`},
		{"bcrypt cost out of range",
			[]string{"--bcrypt-cost", "3"}, nil,
			`invalid value "3" for --bcrypt-cost: must be between 4 and 31`},
		{"bad metrics level",
			[]string{"--metrics", "all"}, nil,
			`invalid value "all" for --metrics: want one of basic, extensive`},
		{"compact hash check time not a duration",
			[]string{"--compact-hash-check-time", "bogus"}, nil,
			`invalid value "bogus" for --compact-hash-check-time: want a duration such as "500ms", "10s" or "2h"`},
		{"zero compact hash check time",
			[]string{"--compact-hash-check-time", "0s"}, nil,
			`invalid value "0s" for --compact-hash-check-time: must be >0`},
		{"negative compact hash check time from env",
			nil, []string{"ETCD_COMPACT_HASH_CHECK_TIME=-1s"},
			`invalid value "-1s" for ETCD_COMPACT_HASH_CHECK_TIME: must be >0`},
		{"bad mlock",
			[]string{"--memory-mlock=always"}, nil,
			`invalid value "always" for --memory-mlock: want true or false`},
		{"bad unsafe-no-fsync from env",
			nil, []string{"ETCD_UNSAFE_NO_FSYNC=yes"},
			`invalid value "yes" for ETCD_UNSAFE_NO_FSYNC: want true or false`},
		{"bad client http url",
			[]string{"--listen-client-http-urls", "ftp://127.0.0.1:2378"}, nil,
			`invalid value "ftp://127.0.0.1:2378" for --listen-client-http-urls: URL "ftp://127.0.0.1:2378" has scheme "ftp"; want http, https, unix or unixs`},
		{"client http url on a client url",
			[]string{"--listen-client-urls", "http://127.0.0.1:2379", "--advertise-client-urls", "http://127.0.0.1:2379",
				"--listen-client-http-urls", "http://127.0.0.1:2378,http://127.0.0.1:2379"}, nil,
			`cannot bind both --listen-client-urls and --listen-client-http-urls on the same url http://127.0.0.1:2379`},
		{"client http urls without client urls",
			[]string{"--listen-client-urls=", "--listen-client-http-urls", "http://127.0.0.1:2378"}, nil,
			`--listen-client-http-urls needs a --listen-client-urls to serve gRPC (the JSON gateway forwards to it)`},
		{"bad max concurrent streams",
			[]string{"--max-concurrent-streams", "-1"}, nil,
			`invalid value "-1" for --max-concurrent-streams: want a non-negative whole number`},
		{"initial cluster entry without =",
			[]string{"--initial-cluster", "n1"}, nil,
			`invalid value "n1" for --initial-cluster: entry "n1" is not of the form name=URL`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse(tc.args, tc.env)
			if err == nil {
				t.Fatalf("Parse(%q, %q) succeeded: %+v", tc.args, tc.env, c)
			}
			if err.Error() != tc.want {
				t.Fatalf("Parse(%q, %q) error\n got %s\nwant %s", tc.args, tc.env, err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error spans several lines: %q", err)
			}
		})
	}
}

func TestExistingClusterSkipsMembershipCheck(t *testing.T) {
	c, err := Parse([]string{"--name", "n9", "--initial-cluster", "n1=http://10.0.0.1:2380", "--initial-cluster-state", "existing"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "n9" || c.InitialClusterState != "existing" {
		t.Fatalf("Name=%q state=%q", c.Name, c.InitialClusterState)
	}
}

func TestAdvertisePeerURLsMatchIgnoringOrder(t *testing.T) {
	_, err := Parse([]string{
		"--name", "n1",
		"--initial-cluster", "n1=http://10.0.0.1:2381, n1=http://10.0.0.1:2380 ,n2=unix://n2.sock",
		"--initial-advertise-peer-urls", "http://10.0.0.1:2380,http://10.0.0.1:2381",
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
}
