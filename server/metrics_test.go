package server

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"

	"github.com/cairnkv/cairn/clock"
	"github.com/cairnkv/cairn/internal/testutil"
	"github.com/cairnkv/cairn/mvcc"
	"github.com/cairnkv/cairn/node"
)

// family is one gathered metric family: its type and its series.
type family struct {
	typ    string
	series []series
}

type series struct {
	labels map[string]string
	value  float64 // counter or gauge value, histogram sample count
}

func gather(t *testing.T, reg *prometheus.Registry) map[string]family {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]family{}
	for _, mf := range mfs {
		f := family{typ: mf.GetType().String()}
		for _, m := range mf.GetMetric() {
			s := series{labels: map[string]string{}}
			for _, lp := range m.GetLabel() {
				s.labels[lp.GetName()] = lp.GetValue()
			}
			switch {
			case m.GetCounter() != nil:
				s.value = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				s.value = m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				s.value = float64(m.GetHistogram().GetSampleCount())
			}
			f.series = append(f.series, s)
		}
		out[mf.GetName()] = f
	}
	return out
}

// value is the value of the series of name with the given labels (a
// subset), or -1 when there is none.
func (f family) value(labels ...string) float64 {
next:
	for _, s := range f.series {
		for i := 0; i+1 < len(labels); i += 2 {
			if s.labels[labels[i]] != labels[i+1] {
				continue next
			}
		}
		return s.value
	}
	return -1
}

// A member's metrics carry etcd's names and types and count what the
// member did: its identity, applies by operation, lease grants and
// renewals, mvcc operations, backend commits.
func TestRegisterMetricsCountsWhatTheMemberDoes(t *testing.T) {
	c := newTestCluster(t, 3, clusterOpts{logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))})
	lead := c.server(c.waitLeader())
	reg := prometheus.NewPedanticRegistry()
	lead.RegisterMetrics(reg)
	for i := 0; i < 5; i++ {
		c.put(lead, fmt.Sprintf("k%d", i), "v")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	g, err := lead.LeaseGrant(ctx, &pb.LeaseGrantRequest{TTL: 60})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lead.LeaseRenew(ctx, g.GetID()); err != nil {
		t.Fatal(err)
	}
	if _, err := lead.Range(ctx, &pb.RangeRequest{Key: []byte("k0")}); err != nil {
		t.Fatal(err)
	}

	// The next batch commit is at most BackendBatchInterval away.
	var fams map[string]family
	testutil.Eventually(t, 10*time.Second, "a backend commit observed", func() (bool, string) {
		fams = gather(t, reg)
		return fams["etcd_disk_backend_commit_duration_seconds"].value() > 0, "no commit yet"
	})
	types := map[string]string{
		"etcd_server_id":                              "GAUGE",
		"etcd_server_version":                         "GAUGE",
		"etcd_cluster_version":                        "GAUGE",
		"etcd_server_go_version":                      "GAUGE",
		"etcd_server_is_learner":                      "GAUGE",
		"etcd_server_quota_backend_bytes":             "GAUGE",
		"etcd_server_proposals_applied_total":         "GAUGE",
		"etcd_server_proposals_committed_total":       "GAUGE",
		"etcd_server_proposals_pending":               "GAUGE",
		"etcd_server_proposals_failed_total":          "COUNTER",
		"etcd_server_leader_changes_seen_total":       "COUNTER",
		"etcd_server_slow_apply_total":                "COUNTER",
		"etcd_server_heartbeat_send_failures_total":   "COUNTER",
		"etcd_server_apply_duration_seconds":          "HISTOGRAM",
		"etcd_disk_backend_commit_duration_seconds":   "HISTOGRAM",
		"etcd_disk_wal_fsync_duration_seconds":        "HISTOGRAM",
		"etcd_mvcc_put_total":                         "COUNTER",
		"etcd_mvcc_range_total":                       "COUNTER",
		"etcd_mvcc_txn_total":                         "COUNTER",
		"etcd_mvcc_delete_total":                      "COUNTER",
		"etcd_debugging_mvcc_keys_total":              "GAUGE",
		"etcd_debugging_mvcc_total_put_size_in_bytes": "GAUGE",
		"etcd_debugging_lease_granted_total":          "COUNTER",
		"etcd_debugging_lease_revoked_total":          "COUNTER",
		"etcd_debugging_lease_renewed_total":          "COUNTER",
		"etcd_debugging_lease_ttl_total":              "HISTOGRAM",
	}
	for name, typ := range types {
		if got := fams[name].typ; got != typ {
			t.Errorf("%s is a %q, want %s", name, got, typ)
		}
	}
	want := []struct {
		name   string
		labels []string
		check  func(float64) bool
		expect string
	}{
		{"etcd_server_id", []string{"server_id", strconv.FormatUint(lead.ID(), 16)}, eq(1), "1"},
		{"etcd_server_version", []string{"server_version", "3.7.0"}, eq(1), "1"},
		{"etcd_cluster_version", []string{"cluster_version", "3.7"}, eq(1), "1"},
		{"etcd_server_is_learner", nil, eq(0), "0"},
		{"etcd_server_quota_backend_bytes", nil, eq(-1), "-1 (no quota)"},
		{"etcd_server_proposals_pending", nil, eq(0), "0"},
		{"etcd_server_proposals_failed_total", nil, eq(0), "0"},
		{"etcd_server_apply_duration_seconds", []string{"op", "Put", "success", "true", "version", "v3"}, atLeast(5), ">= 5"},
		{"etcd_server_apply_duration_seconds", []string{"op", "LeaseGrant", "success", "true"}, eq(1), "1"},
		{"etcd_server_apply_duration_seconds", []string{"op", "ClusterMemberAttrSet"}, atLeast(1), ">= 1"},
		{"etcd_mvcc_put_total", nil, atLeast(5), ">= 5"},
		{"etcd_mvcc_range_total", nil, atLeast(1), ">= 1"},
		{"etcd_debugging_mvcc_keys_total", nil, eq(5), "5"},
		{"etcd_debugging_lease_granted_total", nil, eq(1), "1"},
		{"etcd_debugging_lease_ttl_total", nil, eq(1), "1"},
		{"etcd_debugging_lease_renewed_total", nil, eq(1), "1"},
		{"etcd_debugging_lease_revoked_total", nil, eq(0), "0"},
		{"etcd_disk_backend_commit_duration_seconds", nil, atLeast(1), ">= 1"},
		{"etcd_server_leader_changes_seen_total", nil, atLeast(1), ">= 1"},
	}
	for _, w := range want {
		if v := fams[w.name].value(w.labels...); !w.check(v) {
			t.Errorf("%s%v = %v, want %s", w.name, w.labels, v, w.expect)
		}
	}
}

func eq(want float64) func(float64) bool     { return func(v float64) bool { return v == want } }
func atLeast(min float64) func(float64) bool { return func(v float64) bool { return v >= min } }

// A proposal that cannot commit (no quorum) fails, and is no longer
// pending once it has.
func TestProposalsFailedAndPending(t *testing.T) {
	c := newTestCluster(t, 3, clusterOpts{logger: zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel))})
	leadID := c.waitLeader()
	lead := c.server(leadID)
	c.put(lead, "a", "1")
	reg := prometheus.NewPedanticRegistry()
	lead.RegisterMetrics(reg)
	for _, s := range c.running() {
		if s.ID() != leadID {
			c.stop(s.ID())
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := lead.Put(ctx, &pb.PutRequest{Key: []byte("b"), Value: []byte("2")}); err == nil {
		t.Fatal("a put without a quorum succeeded")
	}
	fams := gather(t, reg)
	if v := fams["etcd_server_proposals_failed_total"].value(); v < 1 {
		t.Errorf("proposals failed = %v, want >= 1", v)
	}
	if v := fams["etcd_server_proposals_pending"].value(); v != 0 {
		t.Errorf("proposals pending = %v once the proposal failed, want 0", v)
	}
}

// recordingTransport is a node.Transport that keeps nothing.
type recordingTransport struct{ n int }

func (r *recordingTransport) Send(msgs []*raftpb.Message) { r.n += len(msgs) }
func (r *recordingTransport) SendSnapshot(_ *raftpb.Message, db node.SnapshotBody) {
	r.n++
	_ = db.Close()
}
func (r *recordingTransport) AddPeer(id uint64, urls []string)    {}
func (r *recordingTransport) RemovePeer(id uint64)                {}
func (r *recordingTransport) UpdatePeer(id uint64, urls []string) {}
func (r *recordingTransport) Close() error                        { return nil }

// The heartbeat watch counts a heartbeat to a peer sent more than two
// heartbeat intervals after the previous one of the same term, as etcd's
// timeout detector; a new term starts afresh. Every message is passed on.
func TestHeartbeatWatchCountsLateHeartbeats(t *testing.T) {
	fc := clock.NewFake(time.Unix(1000, 0))
	inner := &recordingTransport{}
	failures := prometheus.NewCounter(prometheus.CounterOpts{Name: "f", Help: "heartbeat failures"})
	h := &heartbeatWatch{Transport: inner, clock: fc, lg: zap.NewNop(), interval: 100 * time.Millisecond, failures: failures}
	hb := func(to, term uint64) *raftpb.Message {
		return &raftpb.Message{Type: raftpb.MsgHeartbeat.Enum(), To: proto.Uint64(to), Term: proto.Uint64(term)}
	}
	app := &raftpb.Message{Type: raftpb.MsgApp.Enum(), To: proto.Uint64(2), Term: proto.Uint64(5)}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(failures)
	count := func() float64 { return gather(t, reg)["f"].value() }
	steps := []struct {
		advance time.Duration
		msgs    []*raftpb.Message
		want    float64
	}{
		{0, []*raftpb.Message{hb(2, 5), hb(3, 5)}, 0},
		{150 * time.Millisecond, []*raftpb.Message{hb(2, 5), app}, 0},      // within 2 intervals
		{250 * time.Millisecond, []*raftpb.Message{hb(2, 5), hb(3, 5)}, 2}, // both late
		{time.Second, []*raftpb.Message{hb(2, 6)}, 2},                      // a new term: no history
		{100 * time.Millisecond, []*raftpb.Message{hb(2, 6)}, 2},
	}
	sent := 0
	for i, st := range steps {
		fc.Advance(st.advance)
		h.Send(st.msgs)
		sent += len(st.msgs)
		if got := count(); got != st.want {
			t.Fatalf("step %d: failures = %v, want %v", i, got, st.want)
		}
	}
	if inner.n != sent {
		t.Fatalf("passed on %d messages, want %d", inner.n, sent)
	}
}

// applyOp names every request as etcd does, and the apply observer counts
// a slow apply.
func TestObserveApplyNamesOpsAndCountsSlowApplies(t *testing.T) {
	s := &Server{lg: zap.NewNop(), met: newServerMetrics()}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(s.met.apply, s.met.slowApplies, s.met.leaseGranted, s.met.leaseTTL, s.met.leaseRevoked)
	s.observeApply(&pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte("k")}}, node.Result{}, time.Millisecond)
	s.observeApply(&pb.InternalRaftRequest{Txn: &pb.TxnRequest{}}, node.Result{Err: mvcc.ErrCompacted}, 2*defaultWarningApplyDuration)
	s.observeApply(&pb.InternalRaftRequest{Range: &pb.RangeRequest{}}, node.Result{Err: mvcc.ErrFutureRev}, time.Millisecond)
	s.observeApply(&pb.InternalRaftRequest{LeaseGrant: &pb.LeaseGrantRequest{ID: 1, TTL: 1}}, node.Result{Resp: &pb.LeaseGrantResponse{ID: 1, TTL: 5}}, time.Millisecond)
	s.observeApply(&pb.InternalRaftRequest{LeaseRevoke: &pb.LeaseRevokeRequest{ID: 1}}, node.Result{Err: mvcc.ErrClosed}, time.Millisecond)
	fams := gather(t, reg)
	for _, w := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"op", "Put", "success", "true", "version", "v3"}, 1},
		{[]string{"op", "Txn", "success", "true"}, 1}, // a compacted read is a success, as in etcd
		{[]string{"op", "Range", "success", "false"}, 1},
		{[]string{"op", "LeaseGrant", "success", "true"}, 1},
		{[]string{"op", "LeaseRevoke", "success", "false"}, 1},
	} {
		if v := fams["etcd_server_apply_duration_seconds"].value(w.labels...); v != w.want {
			t.Errorf("apply_duration_seconds%v = %v, want %v", w.labels, v, w.want)
		}
	}
	for name, want := range map[string]float64{
		"etcd_server_slow_apply_total":       1,
		"etcd_debugging_lease_granted_total": 1,
		"etcd_debugging_lease_revoked_total": 0, // the revoke failed
	} {
		if v := fams[name].value(); v != want {
			t.Errorf("%s = %v, want %v", name, v, want)
		}
	}
	if ttl := fams["etcd_debugging_lease_ttl_total"]; ttl.value() != 1 {
		t.Errorf("lease TTL histogram has %v samples, want 1", ttl.value())
	}
	for _, r := range []*pb.InternalRaftRequest{
		{DeleteRange: &pb.DeleteRangeRequest{}}, {Compaction: &pb.CompactionRequest{}}, {LeaseCheckpoint: &pb.LeaseCheckpointRequest{}},
		{Alarm: &pb.AlarmRequest{}}, {ClusterMemberAttrSet: nil}, {AuthEnable: &pb.AuthEnableRequest{}},
	} {
		if op := applyOp(r); op == "" {
			t.Errorf("no op name for %v", r)
		}
	}
	if op := applyOp(&pb.InternalRaftRequest{}); op != "unknown" {
		t.Errorf("empty request named %q, want unknown", op)
	}
}

// --warning-apply-duration sets the slow-apply threshold.
func TestWarningApplyDurationSetsTheSlowApplyThreshold(t *testing.T) {
	s := &Server{lg: zap.NewNop(), met: newServerMetrics(), cfg: Config{WarningApplyDuration: time.Second}}
	put := &pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte("k")}}
	s.observeApply(put, node.Result{}, 500*time.Millisecond) // slow by etcd's default, not by this threshold
	if got := counterValue(t, s.met.slowApplies); got != 0 {
		t.Fatalf("slow applies %v after a 500ms apply with a 1s threshold, want 0", got)
	}
	s.observeApply(put, node.Result{}, 2*time.Second)
	if got := counterValue(t, s.met.slowApplies); got != 1 {
		t.Fatalf("slow applies %v after a 2s apply with a 1s threshold, want 1", got)
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// etcd's membership, auth and hash metrics move with what they count:
// etcd_network_known_peers has every member at 1 and a removed one at 0;
// the leader counts the learners it promotes; the auth revision follows
// auth changes; Maintenance.Hash and HashKV are timed.
func TestMembershipAuthAndHashMetrics(t *testing.T) {
	c := newTestCluster(t, 1, clusterOpts{logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))})
	lead := c.server(c.waitLeader())
	reg := prometheus.NewPedanticRegistry()
	lead.RegisterMetrics(reg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	hex := func(id uint64) string { return strconv.FormatUint(id, 16) }
	local := hex(lead.ID())

	fams := gather(t, reg)
	for name, typ := range map[string]string{
		"etcd_network_known_peers":              "GAUGE",
		"etcd_server_learner_promote_successes": "COUNTER",
		"etcd_debugging_auth_revision":          "GAUGE",
		"etcd_mvcc_hash_duration_seconds":       "HISTOGRAM",
		"etcd_mvcc_hash_rev_duration_seconds":   "HISTOGRAM",
	} {
		if got := fams[name].typ; got != typ {
			t.Errorf("%s is a %q, want %s", name, got, typ)
		}
	}
	if v := fams["etcd_network_known_peers"].value("Local", local, "Remote", local); v != 1 {
		t.Errorf("etcd_network_known_peers of itself = %v, want 1", v)
	}
	authRev := fams["etcd_debugging_auth_revision"].value()

	m2 := c.addMember("m2")
	confChange(t, lead, raftpb.ConfChangeAddLearnerNode, m2)
	c.start(m2.ID)
	testutil.Eventually(t, 10*time.Second, "the learner is promoted", func() (bool, string) {
		_, err := lead.MemberPromote(ctx, &pb.MemberPromoteRequest{ID: m2.ID})
		return err == nil, fmt.Sprint(err)
	})
	fams = gather(t, reg)
	if v := fams["etcd_server_learner_promote_successes"].value(); v != 1 {
		t.Errorf("etcd_server_learner_promote_successes = %v, want 1", v)
	}
	if v := fams["etcd_network_known_peers"].value("Local", local, "Remote", hex(m2.ID)); v != 1 {
		t.Errorf("etcd_network_known_peers of the new member = %v, want 1", v)
	}
	if _, err := c.server(c.waitLeader()).MemberRemove(ctx, &pb.MemberRemoveRequest{ID: m2.ID}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "the removed member is known at 0", func() (bool, string) {
		v := gather(t, reg)["etcd_network_known_peers"].value("Local", local, "Remote", hex(m2.ID))
		return v == 0, fmt.Sprintf("etcd_network_known_peers of the removed member = %v", v)
	})

	if _, err := lead.UserAdd(ctx, &pb.AuthUserAddRequest{Name: "root", Password: "rootpw"}); err != nil {
		t.Fatal(err)
	}
	if v := gather(t, reg)["etcd_debugging_auth_revision"].value(); v != authRev+1 {
		t.Errorf("etcd_debugging_auth_revision after adding a user = %v, want %v", v, authRev+1)
	}

	if _, err := lead.Hash(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := lead.HashKV(ctx, 0); err != nil {
		t.Fatal(err)
	}
	fams = gather(t, reg)
	if v := fams["etcd_mvcc_hash_duration_seconds"].value(); v != 1 {
		t.Errorf("etcd_mvcc_hash_duration_seconds count = %v, want 1 (one Hash)", v)
	}
	if v := fams["etcd_mvcc_hash_rev_duration_seconds"].value(); v < 1 {
		t.Errorf("etcd_mvcc_hash_rev_duration_seconds count = %v, want >= 1 (a HashKV)", v)
	}
}

// Each write to the WAL is counted in etcd_disk_wal_write_bytes_total (a
// gauge, as etcd's) and timed in etcd_disk_wal_write_duration_seconds.
func TestWALWriteMetrics(t *testing.T) {
	c := newTestCluster(t, 1, clusterOpts{})
	s := c.server(c.waitLeader())
	reg := prometheus.NewPedanticRegistry()
	s.RegisterMetrics(reg)
	fams := gather(t, reg)
	if fams["etcd_disk_wal_write_bytes_total"].typ != "GAUGE" || fams["etcd_disk_wal_write_duration_seconds"].typ != "HISTOGRAM" {
		t.Fatalf("types: %q, %q", fams["etcd_disk_wal_write_bytes_total"].typ, fams["etcd_disk_wal_write_duration_seconds"].typ)
	}
	bytes0, writes0 := fams["etcd_disk_wal_write_bytes_total"].value(), fams["etcd_disk_wal_write_duration_seconds"].value()
	if bytes0 <= 0 || writes0 <= 0 {
		t.Errorf("after start: %v bytes in %v writes, want some (the first entries)", bytes0, writes0)
	}
	const size = 10000
	c.put(s, "big", string(make([]byte, size)))
	fams = gather(t, reg)
	if b := fams["etcd_disk_wal_write_bytes_total"].value(); b < bytes0+size {
		t.Errorf("etcd_disk_wal_write_bytes_total = %v after a put of %d bytes, want >= %v", b, size, bytes0+size)
	}
	if w := fams["etcd_disk_wal_write_duration_seconds"].value(); w <= writes0 {
		t.Errorf("etcd_disk_wal_write_duration_seconds count = %v after a put, want > %v", w, writes0)
	}
}

// The leader counts the leases it revokes because they expired in
// etcd_debugging_server_lease_expired_total; a client's revoke is not one
// (it is in etcd_debugging_lease_revoked_total only).
func TestLeaseExpiredMetric(t *testing.T) {
	c := newTestCluster(t, 1, clusterOpts{})
	s := c.server(c.waitLeader())
	reg := prometheus.NewPedanticRegistry()
	s.RegisterMetrics(reg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if typ := gather(t, reg)["etcd_debugging_server_lease_expired_total"].typ; typ != "COUNTER" {
		t.Fatalf("etcd_debugging_server_lease_expired_total is a %q", typ)
	}
	revoked := grant(t, s, 60)
	if _, err := s.LeaseRevoke(ctx, &pb.LeaseRevokeRequest{ID: revoked}); err != nil {
		t.Fatal(err)
	}
	grant(t, s, 1) // clamped up to the minimum TTL (1s here)
	testutil.Eventually(t, 10*time.Second, "the lease expires", func() (bool, string) {
		fams := gather(t, reg)
		expired := fams["etcd_debugging_server_lease_expired_total"].value()
		all := fams["etcd_debugging_lease_revoked_total"].value()
		return expired == 1 && all == 2, fmt.Sprintf("expired %v, revoked %v", expired, all)
	})
}

// A compaction is measured as etcd measures it: the index compaction's
// pause, each batch of revisions removed from the database (its pause and
// the revisions), the whole compaction's duration and when it finished.
func TestCompactionMetrics(t *testing.T) {
	c := newTestCluster(t, 1, clusterOpts{})
	s := c.server(c.waitLeader())
	reg := prometheus.NewPedanticRegistry()
	s.RegisterMetrics(reg)
	fams := gather(t, reg)
	for name, typ := range map[string]string{
		"etcd_debugging_mvcc_db_compaction_keys_total":                     "COUNTER",
		"etcd_debugging_mvcc_db_compaction_pause_duration_milliseconds":    "HISTOGRAM",
		"etcd_debugging_mvcc_db_compaction_total_duration_milliseconds":    "HISTOGRAM",
		"etcd_debugging_mvcc_db_compaction_last":                           "GAUGE",
		"etcd_debugging_mvcc_index_compaction_pause_duration_milliseconds": "HISTOGRAM",
	} {
		if got := fams[name].typ; got != typ {
			t.Errorf("%s is a %q, want %s", name, got, typ)
		}
	}
	if v := fams["etcd_debugging_mvcc_db_compaction_last"].value(); v != 0 {
		t.Errorf("etcd_debugging_mvcc_db_compaction_last = %v before any compaction, want 0", v)
	}
	const puts = 10
	var rev int64
	for i := 0; i < puts; i++ {
		rev = c.put(s, "k", fmt.Sprint(i)).GetHeader().GetRevision()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	before := time.Now().Unix()
	if _, err := s.Compact(ctx, &pb.CompactionRequest{Revision: rev}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "the compaction is measured", func() (bool, string) {
		fams := gather(t, reg)
		keys := fams["etcd_debugging_mvcc_db_compaction_keys_total"].value()
		pauses := fams["etcd_debugging_mvcc_db_compaction_pause_duration_milliseconds"].value()
		totals := fams["etcd_debugging_mvcc_db_compaction_total_duration_milliseconds"].value()
		last := fams["etcd_debugging_mvcc_db_compaction_last"].value()
		index := fams["etcd_debugging_mvcc_index_compaction_pause_duration_milliseconds"].value()
		// The puts before the last one are gone from the database.
		ok := keys == puts-1 && pauses >= 1 && totals == 1 && last >= float64(before) && index == 1
		return ok, fmt.Sprintf("keys %v, pauses %v, totals %v, last %v (test started %d), index pauses %v", keys, pauses, totals, last, before, index)
	})
}

// etcd_debugging_mvcc_events_total counts the events watch streams hand
// out; etcd_mvcc_db_open_read_transactions the read transactions open on
// the database, such as a snapshot being streamed.
func TestWatchEventsAndOpenReadTransactionMetrics(t *testing.T) {
	c := newTestCluster(t, 1, clusterOpts{})
	s := c.server(c.waitLeader())
	reg := prometheus.NewPedanticRegistry()
	s.RegisterMetrics(reg)
	fams := gather(t, reg)
	if typ := fams["etcd_debugging_mvcc_events_total"].typ; typ != "COUNTER" {
		t.Errorf("etcd_debugging_mvcc_events_total is a %q", typ)
	}
	if typ := fams["etcd_mvcc_db_open_read_transactions"].typ; typ != "GAUGE" {
		t.Errorf("etcd_mvcc_db_open_read_transactions is a %q", typ)
	}
	if v := fams["etcd_debugging_mvcc_events_total"].value(); v != 0 {
		t.Errorf("etcd_debugging_mvcc_events_total = %v before any watch, want 0", v)
	}

	ws := s.KV().NewWatchStream(0)
	defer ws.Close()
	if _, err := ws.Watch(mvcc.AutoWatchID, []byte("w/"), []byte("w0"), 0, nil, false); err != nil {
		t.Fatal(err)
	}
	const puts = 3
	for i := 0; i < puts; i++ {
		c.put(s, fmt.Sprintf("w/%d", i), "v")
	}
	c.put(s, "other", "v") // not watched
	got := 0
	testutil.Eventually(t, 10*time.Second, "the watch gets the events", func() (bool, string) {
		for {
			resp, ok := ws.Next()
			if !ok {
				break
			}
			got += len(resp.Events)
		}
		return got == puts, fmt.Sprintf("%d events", got)
	})
	if v := gather(t, reg)["etcd_debugging_mvcc_events_total"].value(); v != puts {
		t.Errorf("etcd_debugging_mvcc_events_total = %v after a watch got %d events, want %d", v, puts, puts)
	}

	open := gather(t, reg)["etcd_mvcc_db_open_read_transactions"].value()
	snap, err := s.OpenSnapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if v := gather(t, reg)["etcd_mvcc_db_open_read_transactions"].value(); v != open+1 {
		t.Errorf("etcd_mvcc_db_open_read_transactions = %v with a snapshot open, want %v", v, open+1)
	}
	if err := snap.Close(); err != nil {
		t.Fatal(err)
	}
	if v := gather(t, reg)["etcd_mvcc_db_open_read_transactions"].value(); v != open {
		t.Errorf("etcd_mvcc_db_open_read_transactions = %v once the snapshot closed, want %v", v, open)
	}
}

// A linearizable read on a member that lost its quorum: raft drops the
// read index round, which is asked again each election timeout (each a
// slow read index), until the read times out (a failed read index).
func TestReadIndexMetrics(t *testing.T) {
	c := newTestCluster(t, 3, clusterOpts{})
	c.waitLeader()
	id := c.members[0].ID
	c.stop(id)
	c.startWith(id, func(cfg *Config) { cfg.RequestTimeout = time.Second })
	s := c.server(id)
	reg := prometheus.NewPedanticRegistry()
	s.RegisterMetrics(reg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	testutil.Eventually(t, 10*time.Second, "a linearizable read on the restarted member", func() (bool, string) {
		err := s.LinearizableRead(ctx)
		return err == nil, fmt.Sprint(err)
	})
	fams := gather(t, reg)
	for _, name := range []string{"etcd_server_slow_read_indexes_total", "etcd_server_read_indexes_failed_total"} {
		if f := fams[name]; f.typ != "COUNTER" {
			t.Errorf("%s is a %q", name, f.typ)
		}
	}
	failed0, slow0 := fams["etcd_server_read_indexes_failed_total"].value(), fams["etcd_server_slow_read_indexes_total"].value()
	for _, m := range c.members[1:] {
		c.stop(m.ID)
	}
	if err := s.LinearizableRead(ctx); err == nil {
		t.Fatal("a linearizable read without a quorum succeeded")
	}
	fams = gather(t, reg)
	if v := fams["etcd_server_read_indexes_failed_total"].value(); v != failed0+1 {
		t.Errorf("etcd_server_read_indexes_failed_total = %v after a read timed out, want %v", v, failed0+1)
	}
	if v := fams["etcd_server_slow_read_indexes_total"].value(); v <= slow0 {
		t.Errorf("etcd_server_slow_read_indexes_total = %v after a read index went unanswered for a second, want > %v", v, slow0)
	}
	// A client giving up is not a failed read index.
	short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancelShort()
	if err := s.LinearizableRead(short); err == nil {
		t.Fatal("a linearizable read without a quorum succeeded")
	}
	if v := gather(t, reg)["etcd_server_read_indexes_failed_total"].value(); v != failed0+1 {
		t.Errorf("etcd_server_read_indexes_failed_total = %v after a client gave up, want %v", v, failed0+1)
	}
}

// etcd_server_snapshot_apply_in_progress_total is 1 while the member
// installs a snapshot from the leader, 0 before and after.
func TestSnapshotApplyInProgressMetric(t *testing.T) {
	c := newTestCluster(t, 1, clusterOpts{snapshotCount: 10, catchUp: 2})
	lead := c.server(c.waitLeader())
	for i := 0; i < 30; i++ {
		c.put(lead, fmt.Sprintf("k%02d", i), "v")
	}
	// The log was compacted past its start: a new member catches up
	// through a snapshot.
	m2 := c.addMember("m2")
	confChange(t, lead, raftpb.ConfChangeAddLearnerNode, m2)
	var mu sync.Mutex
	var seen []float64 // the gauge as each call of the core's observer left it
	// The observer may run before startWith has returned the server: it
	// waits for it (on m2's loop, which holds up nothing else).
	srvc := make(chan *Server, 1)
	var once sync.Once
	var srv *Server
	c.startWith(m2.ID, func(cfg *Config) {
		cfg.Core.ObserveSnapshotApply = func(bool) {
			once.Do(func() { srv = <-srvc })
			var m dto.Metric
			if err := srv.met.snapshotApplying.Write(&m); err != nil {
				t.Error(err)
			}
			mu.Lock()
			seen = append(seen, m.GetGauge().GetValue())
			mu.Unlock()
		}
	})
	s := c.server(m2.ID)
	srvc <- s
	reg := prometheus.NewPedanticRegistry()
	s.RegisterMetrics(reg)
	serializableKeys(t, s, map[string]string{"k29": "v"})
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 || seen[0] != 1 || seen[1] != 0 {
		t.Errorf("etcd_server_snapshot_apply_in_progress_total at the start and end of each install: %v, want [1 0]", seen)
	}
	f := gather(t, reg)["etcd_server_snapshot_apply_in_progress_total"]
	if f.typ != "GAUGE" || f.value() != 0 {
		t.Errorf("etcd_server_snapshot_apply_in_progress_total after the install: %q %v, want a gauge at 0", f.typ, f.value())
	}
}

// Every commit of the write batch has bbolt's timings of its phases, as
// etcd's etcd_debugging_disk_backend_commit_*_duration_seconds.
func TestBackendCommitPhaseMetrics(t *testing.T) {
	c := newTestCluster(t, 1, clusterOpts{})
	s := c.server(c.waitLeader())
	reg := prometheus.NewPedanticRegistry()
	s.RegisterMetrics(reg)
	for i := 0; i < 5; i++ {
		c.put(s, fmt.Sprintf("k%d", i), "v")
	}
	phases := []string{
		"etcd_debugging_disk_backend_commit_rebalance_duration_seconds",
		"etcd_debugging_disk_backend_commit_spill_duration_seconds",
		"etcd_debugging_disk_backend_commit_write_duration_seconds",
	}
	testutil.Eventually(t, 10*time.Second, "each commit's phases are timed", func() (bool, string) {
		fams := gather(t, reg)
		commits := fams["etcd_disk_backend_commit_duration_seconds"].value()
		ok := commits >= 1
		detail := fmt.Sprintf("commits %v", commits)
		for _, p := range phases {
			n := fams[p].value()
			ok = ok && fams[p].typ == "HISTOGRAM" && n == commits
			detail += fmt.Sprintf(", %s %s %v", p, fams[p].typ, n)
		}
		return ok, detail
	})
}

// Requests are timed by type as etcd times them: Range and read-only Txn
// served locally, everything else from its proposal to its apply; and the
// store's part of each Range in etcd_server_range_duration_seconds.
func TestRequestAndRangeDurationMetrics(t *testing.T) {
	c := newTestCluster(t, 1, clusterOpts{})
	s := c.server(c.waitLeader())
	reg := prometheus.NewPedanticRegistry()
	s.RegisterMetrics(reg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c.put(s, "k", "v1")
	rev := c.put(s, "k", "v2").GetHeader().GetRevision()
	if _, err := s.Compact(ctx, &pb.CompactionRequest{Revision: rev}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Range(ctx, &pb.RangeRequest{Key: []byte("k")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Range(ctx, &pb.RangeRequest{Key: []byte("k"), Revision: rev - 1, Serializable: true}); err == nil {
		t.Fatal("a range at a compacted revision succeeded")
	}
	get := &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte("k")}}}
	if _, err := s.Txn(ctx, &pb.TxnRequest{Success: []*pb.RequestOp{get}}); err != nil {
		t.Fatal(err)
	}
	fams := gather(t, reg)
	req, rng := fams["etcd_server_request_duration_seconds"], fams["etcd_server_range_duration_seconds"]
	if req.typ != "HISTOGRAM" || rng.typ != "HISTOGRAM" {
		t.Fatalf("types %q, %q", req.typ, rng.typ)
	}
	for _, w := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"type", "Put", "success", "true"}, 2},
		{[]string{"type", "Compaction", "success", "true"}, 1},
		{[]string{"type", "Range", "success", "true"}, 1},
		{[]string{"type", "Range", "success", "false"}, 1},
		{[]string{"type", "ReadonlyTxn", "success", "true"}, 1},
	} {
		if v := req.value(w.labels...); v != w.want {
			t.Errorf("etcd_server_request_duration_seconds%v count = %v, want %v", w.labels, v, w.want)
		}
	}
	if v := rng.value("success", "true"); v != 1 {
		t.Errorf("etcd_server_range_duration_seconds{success=true} count = %v, want 1", v)
	}
	if v := rng.value("success", "false"); v != 1 {
		t.Errorf("etcd_server_range_duration_seconds{success=false} count = %v, want 1 (the compacted revision)", v)
	}
}
