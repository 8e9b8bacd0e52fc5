package config

import (
	"testing"
	"time"
)

func TestDiscoveryFlags(t *testing.T) {
	c, err := Parse([]string{"--name", "n1", "--initial-advertise-peer-urls", "http://10.0.0.1:2380",
		"--discovery-endpoints", "http://d1:2379,http://d2:2379,http://d1:2379", "--discovery-token", "tok",
		"--discovery-dial-timeout", "3s", "--discovery-insecure-transport=false", "--discovery-user", "u:p"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := c.Discovery
	if !d.Enabled() || len(d.Endpoints) != 2 || d.Token != "tok" || d.DialTimeout != 3*time.Second ||
		d.RequestTimeout != 5*time.Second || d.InsecureTransport || d.User != "u:p" {
		t.Fatalf("discovery config %+v", d)
	}
	// etcd's temporary cluster: this member alone, the token as the cluster token.
	if got := FormatInitialCluster(c.InitialCluster); got != "n1=http://10.0.0.1:2380" || c.InitialClusterToken != "tok" {
		t.Fatalf("initial cluster %q token %q", got, c.InitialClusterToken)
	}

	for _, tc := range []struct {
		args []string
		env  []string
		want string
	}{
		{[]string{"--discovery-token", "t"}, nil, "both --discovery-token and --discovery-endpoints must be set"},
		{[]string{"--discovery-endpoints", "http://d:2379"}, nil, "both --discovery-token and --discovery-endpoints must be set"},
		{[]string{"--discovery-endpoints", "http://d:2379,", "--discovery-token", "t"}, nil, "--discovery-endpoints must not contain empty endpoints"},
		{[]string{"--discovery-endpoints", "http://d:2379", "--discovery-token", "t", "--initial-cluster", "default=http://localhost:2380"}, nil,
			`multiple discovery or bootstrap flags are set. Choose one of "initial-cluster", "discovery-endpoints" or "discovery-srv"`},
		{[]string{"--discovery-endpoints", "http://d:2379", "--discovery-token", "t"}, []string{"ETCD_INITIAL_CLUSTER=default=http://localhost:2380"},
			`multiple discovery or bootstrap flags are set. Choose one of "initial-cluster", "discovery-endpoints" or "discovery-srv"`},
	} {
		_, err := Parse(tc.args, tc.env)
		if err == nil || err.Error() != tc.want {
			t.Errorf("Parse(%v, %v) = %v, want %q", tc.args, tc.env, err, tc.want)
		}
	}
}
