package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairnkv/cairn/config"
)

// etcd_server_feature_enabled has etcd's name, help and labels, one series
// per gate, and follows the gates the member runs with.
func TestFeatureGatesMetric(t *testing.T) {
	fg := config.FeatureGates{config.GateStopGRPCServiceOnDefrag: true, config.GateCompactHashCheck: false}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(featureGatesMetric(fg))
	want := `# HELP etcd_server_feature_enabled Whether or not a feature is enabled. 1 is enabled, 0 is not.
# TYPE etcd_server_feature_enabled gauge
etcd_server_feature_enabled{name="AllAlpha",stage="ALPHA"} 0
etcd_server_feature_enabled{name="AllBeta",stage="BETA"} 0
etcd_server_feature_enabled{name="CompactHashCheck",stage="ALPHA"} 0
etcd_server_feature_enabled{name="FastLeaseKeepAlive",stage="BETA"} 0
etcd_server_feature_enabled{name="InitialCorruptCheck",stage="ALPHA"} 0
etcd_server_feature_enabled{name="LeaseCheckpoint",stage="ALPHA"} 1
etcd_server_feature_enabled{name="LeaseCheckpointPersist",stage="ALPHA"} 1
etcd_server_feature_enabled{name="PriorityRequest",stage="ALPHA"} 0
etcd_server_feature_enabled{name="SetMemberLocalAddr",stage="ALPHA"} 0
etcd_server_feature_enabled{name="StopGRPCServiceOnDefrag",stage="ALPHA"} 1
etcd_server_feature_enabled{name="TxnModeWriteWithSharedBuffer",stage="BETA"} 1
`
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", mf.GetName(), mf.GetHelp(), mf.GetName(), strings.ToLower(mf.GetType().String()))
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			fmt.Fprintf(&b, "%s{%s} %v\n", mf.GetName(), strings.Join(labels, ","), m.GetGauge().GetValue())
		}
	}
	if got := b.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
