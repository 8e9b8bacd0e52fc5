package node

import (
	"github.com/prometheus/client_golang/prometheus"
)

// RegisterMetrics registers the member's metrics on reg, under etcd's names
// where etcd has one, so etcd dashboards and alerts work unchanged.
func (s *Server) RegisterMetrics(reg prometheus.Registerer) {
	boolGauge := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	reg.MustRegister(
		s.walSave,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "etcd", Subsystem: "server", Name: "has_leader",
			Help: "Whether or not a leader exists. 1 is existence, 0 is not.",
		}, func() float64 { return boolGauge(s.Leader() != 0) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "etcd", Subsystem: "server", Name: "is_leader",
			Help: "Whether or not this member is a leader. 1 if is, 0 otherwise.",
		}, func() float64 { return boolGauge(s.Leader() == s.ID()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "etcd", Subsystem: "server", Name: "proposals_applied_total",
			Help: "The total number of consensus proposals applied.",
		}, func() float64 { return float64(s.applied.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "etcd", Subsystem: "server", Name: "proposals_committed_total",
			Help: "The total number of consensus proposals committed.",
		}, func() float64 { return float64(s.committed.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "etcd", Subsystem: "server", Name: "leader_changes_seen_total",
			Help: "The number of leader changes seen.",
		}, func() float64 { return float64(s.leaderChanges.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "etcd", Subsystem: "mvcc", Name: "db_total_size_in_bytes",
			Help: "Total size of the underlying database physically allocated in bytes.",
		}, func() float64 { return float64(s.kv.Size()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "etcd", Subsystem: "mvcc", Name: "db_total_size_in_use_in_bytes",
			Help: "Total size of the underlying database logically in use in bytes.",
		}, func() float64 { return float64(s.kv.SizeInUse()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "etcd", Subsystem: "debugging", Name: "mvcc_current_revision",
			Help: "The current revision of the store.",
		}, func() float64 { return float64(s.kv.Rev()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "etcd", Subsystem: "debugging", Name: "mvcc_compact_revision",
			Help: "The revision of the last compaction in store.",
		}, func() float64 { return float64(s.kv.CompactRev()) }),
	)
}
