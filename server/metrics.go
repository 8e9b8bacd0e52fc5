package server

import (
	"context"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairnkv/cairn/mvcc"
	"github.com/cairnkv/cairn/node"
	"github.com/cairnkv/cairn/version"
)

// RegisterMetrics registers the member's metrics on reg, under etcd's names,
// types, labels and buckets where etcd has them, so that etcd's dashboards
// and alerts work unchanged; and the transport's (transport.HTTP's peer
// metrics) when it has any. docs/monitoring.md lists them.
func (s *Server) RegisterMetrics(reg prometheus.Registerer) {
	boolGauge := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	gauge := func(subsystem, name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "etcd", Subsystem: subsystem, Name: name, Help: help}, f)
	}
	counter := func(subsystem, name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "etcd", Subsystem: subsystem, Name: name, Help: help}, f)
	}
	// info is etcd's "1 for the label with the current value" gauge.
	info := func(subsystem, name, help, label, value string) prometheus.Collector {
		g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "etcd", Subsystem: subsystem, Name: name, Help: help}, []string{label})
		g.WithLabelValues(value).Set(1)
		return g
	}
	stats := func(f func(mvcc.Stats) float64) func() float64 { return func() float64 { return f(s.kv.Stats()) } }
	reg.MustRegister(
		s.walSave,
		s.met.backendCommit,
		s.met.apply,
		s.met.slowApplies,
		s.met.heartbeatFailures,
		s.met.proposalsFailed,
		s.met.proposalsPending,
		s.met.leaseGranted,
		s.met.leaseRevoked,
		s.met.leaseRenewed,
		s.met.leaseTTL,
		s.met.learnerPromotes,
		s.met.slowReadIndexes,
		s.met.requestSeconds,
		s.met.rangeSeconds,
		s.met.snapshotApplying,
		s.met.commitRebalance,
		s.met.commitSpill,
		s.met.commitWrite,
		s.met.snapDBSave,
		s.met.snapDBFsync,
		s.met.readIndexFailures,
		s.met.compactionKeys,
		s.met.compactionPause,
		s.met.compactionTotal,
		s.met.compactionLast,
		s.met.indexCompactionPause,
		s.met.leaseExpired,
		s.met.walWrite,
		s.met.walWriteBytes,
		s.met.hash,
		s.met.hashRev,
		gauge("debugging", "auth_revision", "The current revision of auth store.",
			func() float64 { return float64(s.authStore().Revision()) }),
		&knownPeers{s},
		gauge("server", "has_leader", "Whether or not a leader exists. 1 is existence, 0 is not.",
			func() float64 { return boolGauge(s.Leader() != 0) }),
		gauge("server", "is_leader", "Whether or not this member is a leader. 1 if is, 0 otherwise.",
			func() float64 { return boolGauge(s.Leader() == s.ID()) }),
		gauge("server", "is_learner", "Whether or not this member is a learner. 1 if is, 0 otherwise.",
			func() float64 { return boolGauge(s.Learner()) }),
		// etcd exports these two as gauges, and so does Cairn.
		gauge("server", "proposals_applied_total", "The total number of consensus proposals applied.",
			func() float64 { return float64(s.applied.Load()) }),
		gauge("server", "proposals_committed_total", "The total number of consensus proposals committed.",
			func() float64 { return float64(s.committed.Load()) }),
		counter("server", "leader_changes_seen_total", "The number of leader changes seen.",
			func() float64 { return float64(s.leaderChanges.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "cairn", Subsystem: "server", Name: "corrupt_members_detected_total",
			Help: "Members this member's compact hash check, run while it led, found diverging from the cluster (each raised a CORRUPT alarm; the log names the member and revision)."},
			func() float64 { return float64(s.corruptionsFound.Load()) }),
		gauge("server", "quota_backend_bytes", "Current backend storage quota size in bytes.",
			func() float64 { return float64(s.quotaBytes()) }),
		info("server", "id", "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.",
			"server_id", strconv.FormatUint(s.ID(), 16)),
		info("server", "version", "Which version is running. 1 for 'server_version' label with current version.",
			"server_version", version.Etcd),
		s.clusterVersionMetric.gauge(), // follows the cluster version (version.go)
		info("server", "go_version", "Which Go version server is running with. 1 for 'server_go_version' label with current version.",
			"server_go_version", runtime.Version()),
		gauge("mvcc", "db_total_size_in_bytes", "Total size of the underlying database physically allocated in bytes.",
			func() float64 { return float64(s.kv.Size()) }),
		gauge("mvcc", "db_open_read_transactions", "The number of currently open read transactions",
			func() float64 { return float64(s.kv.OpenReadTxns()) }),
		gauge("mvcc", "db_total_size_in_use_in_bytes", "Total size of the underlying database logically in use in bytes.",
			func() float64 { return float64(s.kv.SizeInUse()) }),
		gauge("debugging", "mvcc_current_revision", "The current revision of store.",
			func() float64 { return float64(s.kv.Rev()) }),
		gauge("debugging", "mvcc_compact_revision", "The revision of the last compaction in store.",
			func() float64 { return float64(s.kv.CompactRev()) }),
		counter("mvcc", "put_total", "Total number of puts seen by this member.",
			stats(func(st mvcc.Stats) float64 { return float64(st.Puts) })),
		counter("mvcc", "delete_total", "Total number of deletes seen by this member.",
			stats(func(st mvcc.Stats) float64 { return float64(st.Deletes) })),
		counter("mvcc", "range_total", "Total number of ranges seen by this member.",
			stats(func(st mvcc.Stats) float64 { return float64(st.Ranges) })),
		counter("mvcc", "txn_total", "Total number of txns seen by this member.",
			stats(func(st mvcc.Stats) float64 { return float64(st.Txns) })),
		gauge("debugging", "mvcc_keys_total", "Total number of keys.",
			stats(func(st mvcc.Stats) float64 { return float64(st.Keys) })),
		gauge("debugging", "mvcc_total_put_size_in_bytes", "The total size of put kv pairs seen by this member.",
			stats(func(st mvcc.Stats) float64 { return float64(st.PutBytes) })),
	)
	s.registerWatchMetrics(reg)
	if t, ok := s.tr.(interface{ RegisterMetrics(prometheus.Registerer) }); ok {
		t.RegisterMetrics(reg)
	}
}

// quotaBytes is the backend quota etcd_server_quota_backend_bytes reports:
// as Status does, -1 when there is none (what etcd reports for a negative
// --quota-backend-bytes).
func (s *Server) quotaBytes() int64 {
	if s.cfg.QuotaBackendBytes <= 0 {
		return -1
	}
	return s.cfg.QuotaBackendBytes
}

// majorMinor turns "3.7.0" into "3.7", the form of etcd's cluster_version
// label.
func majorMinor(v string) string {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return v
	}
	return parts[0] + "." + parts[1]
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
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "etcd_debugging", Subsystem: "mvcc", Name: "events_total",
			Help: "Total number of events sent by this member."},
			func() float64 { return float64(s.kv.WatchStats().EventsSent) }),
		gauge("cairn", "mvcc_watch_pending_bytes", "Bytes of the events queued for watch streams, counted as if none were shared (bounded per stream and in total).",
			func(w mvcc.WatchStats) float64 { return float64(w.PendingBytes) }),
		gauge("cairn", "mvcc_watch_cache_bytes", "Bytes of the recent events kept for watchers that are catching up.",
			func(w mvcc.WatchStats) float64 { return float64(w.CacheBytes) }),
	)
}

// knownPeers is etcd_network_known_peers: as etcd's, 1 for every member of
// the cluster (this one included), 0 for every member removed from it,
// labelled Local (this member) and Remote (the peer), in hex. It reads the
// membership on the loop at each scrape.
type knownPeers struct{ s *Server }

var knownPeersDesc = prometheus.NewDesc("etcd_network_known_peers", "The current number of known peers.", []string{"Local", "Remote"}, nil)

func (k *knownPeers) Describe(ch chan<- *prometheus.Desc) { ch <- knownPeersDesc }

func (k *knownPeers) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), knownPeersTimeout)
	defer cancel()
	var ms []node.Member
	var removed []uint64
	if err := k.s.onLoop(ctx, func() { ms, removed = k.s.core.Members(), k.s.core.RemovedIDs() }); err != nil {
		return // stopped, or the loop is stuck: no series rather than stale ones
	}
	local := strconv.FormatUint(k.s.ID(), 16)
	seen := map[uint64]bool{}
	for _, m := range ms {
		seen[m.ID] = true
		ch <- prometheus.MustNewConstMetric(knownPeersDesc, prometheus.GaugeValue, 1, local, strconv.FormatUint(m.ID, 16))
	}
	for _, id := range removed {
		if !seen[id] {
			ch <- prometheus.MustNewConstMetric(knownPeersDesc, prometheus.GaugeValue, 0, local, strconv.FormatUint(id, 16))
		}
	}
}

// knownPeersTimeout bounds a scrape's wait for the loop.
const knownPeersTimeout = time.Second
