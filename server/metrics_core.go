package server

import (
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/clock"
	"github.com/cairnkv/cairn/mvcc"
	"github.com/cairnkv/cairn/node"
)

// defaultWarningApplyDuration is etcd's default --warning-apply-duration: an apply
// slower than this is logged and counted in etcd_server_slow_apply_total.
const defaultWarningApplyDuration = 100 * time.Millisecond

// serverMetrics are what the shell measures itself, from the core's
// callbacks (applies, backend commits), the messages it sends (heartbeats)
// and the requests it proposes. They exist from New on, so that what the
// core reports while it replays its log is counted; RegisterMetrics
// exports them.
type serverMetrics struct {
	backendCommit     prometheus.Histogram
	apply             *prometheus.HistogramVec
	slowApplies       prometheus.Counter
	heartbeatFailures prometheus.Counter
	proposalsFailed   prometheus.Counter
	proposalsPending  prometheus.Gauge
	leaseGranted      prometheus.Counter
	leaseRevoked      prometheus.Counter
	leaseRenewed      prometheus.Counter
	leaseTTL          prometheus.Histogram
	learnerPromotes   prometheus.Counter
	hash, hashRev     prometheus.Histogram
	walWrite          prometheus.Histogram
	walWriteBytes     prometheus.Gauge // a gauge in etcd
	leaseExpired      prometheus.Counter
	slowReadIndexes   prometheus.Counter
	requestSeconds    *prometheus.HistogramVec
	rangeSeconds      *prometheus.HistogramVec
	snapshotApplying  prometheus.Gauge
	commitRebalance   prometheus.Histogram
	commitSpill       prometheus.Histogram
	commitWrite       prometheus.Histogram
	snapDBSave        prometheus.Histogram
	snapDBFsync       prometheus.Histogram
	readIndexFailures prometheus.Counter

	compactionKeys       prometheus.Counter
	compactionPause      prometheus.Histogram // milliseconds, as etcd's
	compactionTotal      prometheus.Histogram // milliseconds
	compactionLast       prometheus.Gauge     // unix time
	indexCompactionPause prometheus.Histogram // milliseconds
}

// newServerMetrics returns the metrics with etcd's names, help, labels and
// buckets.
func newServerMetrics() *serverMetrics {
	return &serverMetrics{
		backendCommit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "etcd", Subsystem: "disk", Name: "backend_commit_duration_seconds",
			Help:    "The latency distributions of commit called by backend.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		apply: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "etcd", Subsystem: "server", Name: "apply_duration_seconds",
			Help:    "The latency distributions of v2 apply called by backend.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 20),
		}, []string{"version", "op", "success"}),
		slowApplies: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "etcd", Subsystem: "server", Name: "slow_apply_total",
			Help: "The total number of slow apply requests (likely overloaded from slow disk).",
		}),
		heartbeatFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "etcd", Subsystem: "server", Name: "heartbeat_send_failures_total",
			Help: "The total number of leader heartbeat send failures (likely overloaded from slow disk).",
		}),
		proposalsFailed: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "etcd", Subsystem: "server", Name: "proposals_failed_total",
			Help: "The total number of failed proposals seen.",
		}),
		proposalsPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "etcd", Subsystem: "server", Name: "proposals_pending",
			Help: "The current number of pending proposals to commit.",
		}),
		leaseGranted: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "etcd", Subsystem: "debugging", Name: "lease_granted_total",
			Help: "The total number of granted leases.",
		}),
		leaseRevoked: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "etcd", Subsystem: "debugging", Name: "lease_revoked_total",
			Help: "The total number of revoked leases.",
		}),
		leaseRenewed: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "etcd", Subsystem: "debugging", Name: "lease_renewed_total",
			Help: "The number of renewed leases seen by the leader.",
		}),
		leaseTTL: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "etcd", Subsystem: "debugging", Name: "lease_ttl_total",
			Help:    "Bucketed histogram of lease TTLs.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 24),
		}),
		walWrite: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "etcd", Subsystem: "disk", Name: "wal_write_duration_seconds",
			Help:    "The latency distributions of write called by WAL.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		walWriteBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "etcd", Subsystem: "disk", Name: "wal_write_bytes_total",
			Help: "Total number of bytes written in WAL.",
		}),
		leaseExpired: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "etcd", Subsystem: "debugging", Name: "server_lease_expired_total",
			Help: "The total number of expired leases.",
		}),
		compactionKeys: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "etcd_debugging", Subsystem: "mvcc", Name: "db_compaction_keys_total",
			Help: "Total number of db keys compacted.",
		}),
		compactionPause: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "etcd_debugging", Subsystem: "mvcc", Name: "db_compaction_pause_duration_milliseconds",
			Help:    "Bucketed histogram of db compaction pause duration.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 13),
		}),
		compactionTotal: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "etcd_debugging", Subsystem: "mvcc", Name: "db_compaction_total_duration_milliseconds",
			Help:    "Bucketed histogram of db compaction total duration.",
			Buckets: prometheus.ExponentialBuckets(100, 2, 14),
		}),
		compactionLast: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "etcd_debugging", Subsystem: "mvcc", Name: "db_compaction_last",
			Help: "The unix time of the last db compaction. Resets to 0 on start.",
		}),
		indexCompactionPause: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "etcd_debugging", Subsystem: "mvcc", Name: "index_compaction_pause_duration_milliseconds",
			Help:    "Bucketed histogram of index compaction pause duration.",
			Buckets: prometheus.ExponentialBuckets(0.5, 2, 14),
		}),
		slowReadIndexes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "etcd", Subsystem: "server", Name: "slow_read_indexes_total",
			Help: "The total number of pending read indexes not in sync with leader's or timed out read index requests.",
		}),
		readIndexFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "etcd", Subsystem: "server", Name: "read_indexes_failed_total",
			Help: "The total number of failed read indexes seen.",
		}),
		commitRebalance: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "etcd_debugging", Subsystem: "disk", Name: "backend_commit_rebalance_duration_seconds",
			Help:    "The latency distributions of commit.rebalance called by bboltdb backend.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		commitSpill: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "etcd_debugging", Subsystem: "disk", Name: "backend_commit_spill_duration_seconds",
			Help:    "The latency distributions of commit.spill called by bboltdb backend.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		commitWrite: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "etcd_debugging", Subsystem: "disk", Name: "backend_commit_write_duration_seconds",
			Help:    "The latency distributions of commit.write called by bboltdb backend.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		requestSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "etcd", Subsystem: "server", Name: "request_duration_seconds",
			Help:    "Response latency distribution in seconds for each type.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"type", "success"}),
		rangeSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "etcd", Subsystem: "server", Name: "range_duration_seconds",
			Help:    "The latency distributions of txn.Range",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 20),
		}, []string{"success"}),
		snapshotApplying: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "etcd", Subsystem: "server", Name: "snapshot_apply_in_progress_total",
			Help: "1 if the server is applying the incoming snapshot. 0 if none.",
		}),
		snapDBSave: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "etcd", Subsystem: "snap_db", Name: "save_total_duration_seconds",
			Help:    "The total latency distributions of v3 snapshot save",
			Buckets: prometheus.ExponentialBuckets(0.1, 2, 10),
		}),
		snapDBFsync: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "etcd", Subsystem: "snap_db", Name: "fsync_duration_seconds",
			Help:    "The latency distributions of fsyncing .snap.db file",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		learnerPromotes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "etcd", Subsystem: "server", Name: "learner_promote_successes",
			Help: "The total number of successful learner promotions while this member is leader.",
		}),
		hash: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "etcd", Subsystem: "mvcc", Name: "hash_duration_seconds",
			Help:    "The latency distribution of storage hash operation.",
			Buckets: prometheus.ExponentialBuckets(.01, 2, 15),
		}),
		hashRev: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "etcd", Subsystem: "mvcc", Name: "hash_rev_duration_seconds",
			Help:    "The latency distribution of storage hash by revision operation.",
			Buckets: prometheus.ExponentialBuckets(.01, 2, 15),
		}),
	}
}

// observeRequest times a request in etcd_server_request_duration_seconds
// from start, as etcd does: a Range or read-only Txn served locally (its
// wait for the read index included), or a request proposed through raft
// until it applied. success is whether it was served: as in etcd, a
// request that applied with an error (a bad lease, say) was.
func (s *Server) observeRequest(typ string, start time.Time, success bool) {
	s.met.requestSeconds.WithLabelValues(typ, boolLabel(success)).Observe(s.clock.Now().Sub(start).Seconds())
}

// hashKV is the store's HashKV timed in etcd_mvcc_hash_rev_duration_seconds,
// as etcd times each hash by revision: for Maintenance.HashKV, the compact
// hash check, and the peers asking for this member's hash.
func (s *Server) hashKV(rev int64) (hash uint32, hashRev, compactRev int64, err error) {
	start := s.clock.Now()
	hash, hashRev, compactRev, err = s.kv.HashKV(rev)
	if err == nil {
		s.met.hashRev.Observe(s.clock.Now().Sub(start).Seconds())
	}
	return hash, hashRev, compactRev, err
}

// hashAll is the store's Hash (of the whole database) timed in
// etcd_mvcc_hash_duration_seconds.
func (s *Server) hashAll() (uint32, error) {
	start := s.clock.Now()
	h, err := s.kv.Hash()
	if err == nil {
		s.met.hash.Observe(s.clock.Now().Sub(start).Seconds())
	}
	return h, err
}

// observeCore points the core's callbacks and the store's commit observer
// at s's metrics, and wraps the transport the core sends through to watch
// the leader's heartbeats. It runs in New, before the core starts.
func (s *Server) observeCore(cfg *node.Config) {
	if cfg.ObserveApply == nil {
		cfg.ObserveApply = s.observeApply
	}
	prevSnapshotApply := cfg.ObserveSnapshotApply
	cfg.ObserveSnapshotApply = func(inProgress bool) {
		if inProgress {
			s.met.snapshotApplying.Set(1)
		} else {
			s.met.snapshotApplying.Set(0)
		}
		if prevSnapshotApply != nil {
			prevSnapshotApply(inProgress)
		}
	}
	if cfg.ObserveSlowReadIndex == nil {
		cfg.ObserveSlowReadIndex = s.met.slowReadIndexes.Inc
	}
	if cfg.ObserveLeaseExpired == nil {
		cfg.ObserveLeaseExpired = s.met.leaseExpired.Inc
	}
	if cfg.ObserveWALWrite == nil {
		cfg.ObserveWALWrite = func(n int, d time.Duration) {
			s.met.walWriteBytes.Add(float64(n))
			s.met.walWrite.Observe(d.Seconds())
		}
	}
	heartbeat := time.Duration(max(cfg.HeartbeatTicks, 1)) * cfg.TickInterval
	cfg.Transport = &heartbeatWatch{
		Transport: cfg.Transport, clock: cfg.Clock, lg: s.lg,
		interval: heartbeat, failures: s.met.heartbeatFailures,
	}
}

// observeCommits times the store's batch commits (run once the core has
// opened the store).
func (s *Server) observeCommits(kv *mvcc.Store) {
	kv.SetCommitObserver(func(d time.Duration) { s.met.backendCommit.Observe(d.Seconds()) })
	kv.SetCommitPhasesObserver(func(p mvcc.CommitPhases) {
		s.met.commitRebalance.Observe(p.Rebalance.Seconds())
		s.met.commitSpill.Observe(p.Spill.Seconds())
		s.met.commitWrite.Observe(p.Write.Seconds())
	})
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	kv.SetCompactionObserver(mvcc.CompactionObserver{
		Index: func(d time.Duration) { s.met.indexCompactionPause.Observe(ms(d)) },
		Step: func(st mvcc.CompactionStep) {
			s.met.compactionKeys.Add(float64(st.Keys))
			s.met.compactionPause.Observe(ms(st.Pause))
			if st.Done {
				s.met.compactionTotal.Observe(ms(st.Total))
				s.met.compactionLast.Set(float64(s.clock.Now().Unix()))
			}
		},
	})
}

// observeApply is the core's ObserveApply: etcd's apply histogram by
// operation, its slow-apply counter and warning, and the lease counters
// that etcd's lessor keeps (grants and revokes as they apply, on every
// member; the TTL granted, after the minimum TTL was applied).
func (s *Server) observeApply(r *pb.InternalRaftRequest, res node.Result, d time.Duration) {
	op := applyOp(r)
	// As etcd: a compacted read is still a successful apply.
	success := res.Err == nil || errors.Is(res.Err, mvcc.ErrCompacted)
	s.met.apply.WithLabelValues("v3", op, boolLabel(success)).Observe(d.Seconds())
	warn := s.cfg.WarningApplyDuration
	if warn <= 0 {
		warn = defaultWarningApplyDuration
	}
	if d > warn {
		s.met.slowApplies.Inc()
		s.lg.Warn("apply request took too long",
			zap.Duration("took", d), zap.Duration("expected-duration", warn),
			zap.String("request-type", op), zap.Error(res.Err))
	}
	if res.Err != nil {
		return
	}
	switch {
	case r.GetLeaseGrant() != nil:
		s.met.leaseGranted.Inc()
		if g, ok := res.Resp.(*pb.LeaseGrantResponse); ok {
			s.met.leaseTTL.Observe(float64(g.GetTTL()))
		}
	case r.GetLeaseRevoke() != nil:
		s.met.leaseRevoked.Inc()
	}
}

func boolLabel(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// applyOp names a request as etcd's apply metrics do.
func applyOp(r *pb.InternalRaftRequest) string {
	switch {
	case r.GetClusterVersionSet() != nil:
		return "ClusterVersionSet"
	case r.GetClusterMemberAttrSet() != nil:
		return "ClusterMemberAttrSet"
	case r.GetDowngradeInfoSet() != nil:
		return "DowngradeInfoSet"
	case r.GetDowngradeVersionTest() != nil:
		return "DowngradeVersionTest"
	case r.GetRange() != nil:
		return "Range"
	case r.GetPut() != nil:
		return "Put"
	case r.GetDeleteRange() != nil:
		return "DeleteRange"
	case r.GetTxn() != nil:
		return "Txn"
	case r.GetCompaction() != nil:
		return "Compaction"
	case r.GetLeaseGrant() != nil:
		return "LeaseGrant"
	case r.GetLeaseRevoke() != nil:
		return "LeaseRevoke"
	case r.GetLeaseCheckpoint() != nil:
		return "LeaseCheckpoint"
	case r.GetAlarm() != nil:
		return "Alarm"
	case r.GetAuthEnable() != nil:
		return "AuthEnable"
	case r.GetAuthDisable() != nil:
		return "AuthDisable"
	case r.GetAuthStatus() != nil:
		return "AuthStatus"
	case r.GetAuthenticate() != nil:
		return "Authenticate"
	case r.GetAuthUserAdd() != nil:
		return "AuthUserAdd"
	case r.GetAuthUserDelete() != nil:
		return "AuthUserDelete"
	case r.GetAuthUserGet() != nil:
		return "AuthUserGet"
	case r.GetAuthUserChangePassword() != nil:
		return "AuthUserChangePassword"
	case r.GetAuthUserGrantRole() != nil:
		return "AuthUserGrantRole"
	case r.GetAuthUserRevokeRole() != nil:
		return "AuthUserRevokeRole"
	case r.GetAuthUserList() != nil:
		return "AuthUserList"
	case r.GetAuthRoleList() != nil:
		return "AuthRoleList"
	case r.GetAuthRoleAdd() != nil:
		return "AuthRoleAdd"
	case r.GetAuthRoleDelete() != nil:
		return "AuthRoleDelete"
	case r.GetAuthRoleGet() != nil:
		return "AuthRoleGet"
	case r.GetAuthRoleGrantPermission() != nil:
		return "AuthRoleGrantPermission"
	case r.GetAuthRoleRevokePermission() != nil:
		return "AuthRoleRevokePermission"
	}
	return "unknown"
}

// heartbeatWatch is the core's transport as the shell hands it over: it
// passes every message on, and watches the heartbeats the leader sends as
// etcd's timeout detector does. A heartbeat to a peer more than two
// heartbeat intervals after the previous one in the same term means the
// leader was held up (typically by a slow disk): it is logged and counted
// in etcd_server_heartbeat_send_failures_total. Send runs on the loop.
type heartbeatWatch struct {
	node.Transport
	clock    clock.Clock
	lg       *zap.Logger
	interval time.Duration
	failures prometheus.Counter

	mu   sync.Mutex
	term uint64               // the term of the heartbeats in last
	last map[uint64]time.Time // peer -> when the last heartbeat to it was sent
}

// Send implements node.Transport.
func (h *heartbeatWatch) Send(msgs []*raftpb.Message) {
	var now time.Time
	for _, m := range msgs {
		if m.GetType() != raftpb.MsgHeartbeat {
			continue
		}
		if now.IsZero() {
			now = h.clock.Now()
		}
		h.observe(m.GetTo(), m.GetTerm(), now)
	}
	h.Transport.Send(msgs)
}

func (h *heartbeatWatch) observe(to, term uint64, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if term != h.term || h.last == nil {
		// A new leadership: earlier heartbeats say nothing about it.
		h.term, h.last = term, make(map[uint64]time.Time)
	}
	prev, ok := h.last[to]
	h.last[to] = now
	if !ok {
		return
	}
	if gap, limit := now.Sub(prev), 2*h.interval; gap > limit {
		h.failures.Inc()
		h.lg.Warn("leader failed to send out heartbeat on time; took too long, leader is overloaded likely from slow disk",
			zap.String("to", strconv.FormatUint(to, 16)), zap.Duration("heartbeat-interval", h.interval),
			zap.Duration("expected-duration", limit), zap.Duration("exceeded-duration", gap-limit))
	}
}
