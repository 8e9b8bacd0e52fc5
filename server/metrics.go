package server

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairnkv/cairn/mvcc"
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
	s.registerWatchMetrics(reg)
}

// registerWatchMetrics exports the watch gauges under etcd's names, and
// the bytes behind the watch memory bounds under Cairn's.
func (s *Server) registerWatchMetrics(reg prometheus.Registerer) {
	gauge := func(ns, name, help string, f func(mvcc.WatchStats) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: "", Name: name, Help: help},
			func() float64 { return f(s.kv.WatchStats()) })
	}
	reg.MustRegister(
		gauge("etcd", "debugging_mvcc_watch_stream_total", "Total number of watch streams.",
			func(w mvcc.WatchStats) float64 { return float64(w.Streams) }),
		gauge("etcd", "debugging_mvcc_watcher_total", "Total number of watchers.",
			func(w mvcc.WatchStats) float64 { return float64(w.Watchers) }),
		gauge("etcd", "debugging_mvcc_slow_watcher_total", "Total number of unsynced slow watchers.",
			func(w mvcc.WatchStats) float64 { return float64(w.Behind) }),
		gauge("etcd", "debugging_mvcc_pending_events_total", "Total number of pending events to be sent.",
			func(w mvcc.WatchStats) float64 { return float64(w.PendingEvents) }),
		gauge("cairn", "mvcc_watch_pending_bytes", "Bytes of the events queued for watch streams, counted as if none were shared (bounded per stream and in total).",
			func(w mvcc.WatchStats) float64 { return float64(w.PendingBytes) }),
		gauge("cairn", "mvcc_watch_cache_bytes", "Bytes of the recent events kept for watchers that are catching up.",
			func(w mvcc.WatchStats) float64 { return float64(w.CacheBytes) }),
	)
}
