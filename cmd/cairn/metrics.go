package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairnkv/cairn/config"
)

// featureGatesMetric is etcd_server_feature_enabled: for each of etcd's
// feature gates (labelled name and stage), 1 when the member runs with the
// feature on, 0 otherwise (config.FeatureGates.States).
func featureGatesMetric(fg config.FeatureGates) prometheus.Collector {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "etcd", Subsystem: "server", Name: "feature_enabled",
		Help: "Whether or not a feature is enabled. 1 is enabled, 0 is not.",
	}, []string{"name", "stage"})
	for _, s := range fg.States() {
		v := 0.0
		if s.Enabled {
			v = 1
		}
		g.WithLabelValues(s.Name, s.Stage).Set(v)
	}
	return g
}
