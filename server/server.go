package server

import (
	"context"
	"net/http"

	"errors"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"io"
	"sync"
	"sync/atomic"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/membershippb"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/cairnkv/cairn/auth"
	"github.com/cairnkv/cairn/clock"
	"github.com/cairnkv/cairn/mvcc"
	"github.com/cairnkv/cairn/node"
	"github.com/cairnkv/cairn/transport"
)

// Config configures the production shell around a Core.
type Config struct {
	Core node.Config
	// RequestTimeout bounds a proposal or linearizable read on the server side
	// (default 5s + 2 election timeouts, as etcd).
	RequestTimeout time.Duration
	// ClientURLs are published to the cluster as this member's client URLs.
	ClientURLs []string
	// AutoCompaction is etcd's --auto-compaction-mode/-retention.
	AutoCompaction AutoCompaction
	// QuotaBackendBytes is the database size past which writes that add
	// data raise the NOSPACE alarm and fail (etcd's --quota-backend-bytes);
	// 0 means no quota.
	QuotaBackendBytes int64
	// MaxLearners is how many learners the cluster may hold at once
	// (etcd's --max-learners); 0 means etcd's default, 1.
	MaxLearners int
	// StrictReconfigCheck is etcd's --strict-reconfig-check: membership
	// changes that would break the active quorum are refused
	// (reconfig.go). The zero value turns it off; the daemon's default is
	// on, as etcd's.
	StrictReconfigCheck bool
	// healthInterval overrides HealthInterval (tests).
	healthInterval time.Duration
	// WarningApplyDuration is etcd's --warning-apply-duration: an apply
	// slower than this is logged and counted as slow; 0 means etcd's
	// default, 100ms.
	WarningApplyDuration time.Duration
	// CompactHashCheckTime is how often the leader compares the members'
	// hashes at the latest compacted revision (etcd's
	// --compact-hash-check-time; see hashcheck.go). 0 means the default,
	// 1 minute; negative disables the check.
	CompactHashCheckTime time.Duration
	// AuthToken is etcd's --auth-token ("simple", the default, or
	// "jwt,..."), AuthTokenTTL its --auth-token-ttl for simple tokens and
	// BcryptCost its --bcrypt-cost (auth.go, tokens.go).
	AuthToken    string
	AuthTokenTTL time.Duration
	BcryptCost   int
	// ClientCertAuth is etcd's --client-cert-auth: a verified client
	// certificate's Common Name is the user of a request without a token.
	ClientCertAuth bool
	// PeerClient fetches from the peers' listeners (the hash check); nil
	// means a plain HTTP client.
	PeerClient *http.Client
	// ClientCreds dial the leader's https client URL (forwarded
	// keep-alives, time-to-live and promote): the client side's TLS, with
	// its certificate, as etcd does. Plain http URLs are dialed in
	// plaintext; https ones never are (tls.go).
	ClientCreds ClientCredentials
	// VersionCheckInterval is how often the cluster and storage versions
	// are brought in line with the downgrade job (version.go); the daemon
	// uses DefaultVersionCheckInterval, 0 turns the monitor off.
	VersionCheckInterval time.Duration
}

// Server runs a Core on one goroutine (the loop) and gives the API layer
// blocking, context-aware calls. Transport deliveries and every core call go
// through the loop; MVCC reads run on the callers' goroutines.
type Server struct {
	cfg  Config
	lg   *zap.Logger
	core *node.Core
	kv   *mvcc.Store
	tr   transport.Transport

	actc  chan func()
	stopc chan struct{}
	donec chan struct{}

	stopOnce      sync.Once
	started       atomic.Bool
	crashing      atomic.Bool // shutdown abandons state as a power cut would (tests)
	term          atomic.Uint64
	lead          atomic.Uint64
	applied       atomic.Uint64
	committed     atomic.Uint64
	walSave       prometheus.Histogram
	met           *serverMetrics // see metrics_core.go
	leaderc       leaderClients
	leaderChanges atomic.Uint64
	learner       atomic.Bool // this member is a learner, as last seen by the loop
	fatal         atomic.Pointer[error]
	// removed are the members the cluster removed, as last seen by the
	// loop: Process refuses their messages without waiting for the loop.
	removed    atomic.Pointer[map[uint64]bool]
	numRemoved int // loop only
	// corruptionsFound counts members the compact hash check found
	// diverging (hashcheck.go).
	corruptionsFound atomic.Uint64
	// leaderMoved is closed, and replaced, whenever the leader changes.
	leaderMoved atomic.Pointer[chan struct{}]
	// tokens makes and reads auth tokens (tokens.go).
	tokens tokenProvider
	// clock times the shell's periodic work (auto-compaction, retries):
	// Core.Clock, so tests can run it under fake time.
	clock clock.Clock
	// clusterVersionMetric is etcd_cluster_version (version.go).
	clusterVersionMetric clusterVersionMetric
}

// New opens the member's state. newTransport builds the transport that
// delivers inbound messages to the returned server (a transport.Handler).
// Start begins serving.
func New(cfg Config, newTransport func(h transport.Handler) transport.Transport) (*Server, error) {
	if cfg.Core.TickInterval == 0 { // the loop's ticker: etcd's --heartbeat-interval
		cfg.Core.TickInterval = node.DefaultTickInterval
	}
	elect := cfg.Core.ElectionTicks
	if elect == 0 {
		elect = node.DefaultElectionTicks
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 5*time.Second + 2*time.Duration(elect)*cfg.Core.TickInterval
	}
	if cfg.Core.Clock == nil {
		cfg.Core.Clock = clock.Real{}
	}
	s := &Server{
		clock: cfg.Core.Clock,
		cfg:   cfg,
		actc:  make(chan func(), 1024),
		stopc: make(chan struct{}),
		donec: make(chan struct{}),
	}
	s.lg = cfg.Core.Logger
	if s.lg == nil {
		s.lg = zap.NewNop()
	}
	s.walSave = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "etcd", Subsystem: "disk", Name: "wal_fsync_duration_seconds",
		Help:    "The latency distributions of fsync called by WAL.", // etcd's help; in Cairn each save's write and its one fsync (docs/monitoring.md)
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
	})
	if cfg.Core.ObserveWALSave == nil {
		cfg.Core.ObserveWALSave = func(d time.Duration) { s.walSave.Observe(d.Seconds()) }
	}
	s.met = newServerMetrics()
	tokens, err := newTokenProvider(cfg.AuthToken, cfg.AuthTokenTTL, cfg.Core.Clock)
	if err != nil {
		return nil, err
	}
	s.tokens = tokens
	if st, ok := tokens.(*simpleTokens); ok {
		cfg.Core.AuthTokens = st
	}
	s.tr = newTransport(s)
	cfg.Core.Transport = s.tr
	s.observeCore(&cfg.Core)
	core, err := node.NewCore(cfg.Core)
	if err != nil {
		_ = s.tr.Close()
		return nil, err
	}
	s.core, s.kv = core, core.KV()
	s.observeCommits(s.kv)
	s.applied.Store(core.Applied())
	s.learner.Store(core.IsLearner())
	s.publishRemoved()
	moved := make(chan struct{})
	s.leaderMoved.Store(&moved)
	return s, nil
}

// Start runs the loop, and publishes this member's name and client URLs.
func (s *Server) Start() {
	s.started.Store(true)
	go s.run()
	go s.publish()
	go s.advanceTicks()
	if s.cfg.AutoCompaction.enabled() {
		go s.compactor()
	}
	if s.cfg.CompactHashCheckTime >= 0 {
		go s.hashChecker()
	}
	if s.cfg.VersionCheckInterval > 0 {
		go s.versionMonitor(s.cfg.VersionCheckInterval)
	}
}

// ID is this member's ID.
func (s *Server) ID() uint64 { return s.core.ID() }

// ClusterID is the cluster's ID.
func (s *Server) ClusterID() uint64 { return s.core.ClusterID() }

// KV is the member's MVCC store, for reads.
func (s *Server) KV() *mvcc.Store { return s.kv }

// Leader is the leader as last seen by the loop (0 = none).
func (s *Server) Leader() uint64 { return s.lead.Load() }

// Term is the raft term as last seen by the loop.
func (s *Server) Term() uint64 { return s.term.Load() }

// Done is closed when the loop has stopped.
func (s *Server) Done() <-chan struct{} { return s.donec }

// Err is the fatal error that stopped the member, if any.
func (s *Server) Err() error {
	if p := s.fatal.Load(); p != nil {
		return *p
	}
	return nil
}

func (s *Server) run() {
	defer close(s.donec)
	ticker := time.NewTicker(s.cfg.Core.TickInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ticker.C:
			s.core.Tick()
		case f := <-s.actc:
			f()
			// Take whatever else is queued so one Ready covers it all.
			for i := 0; i < 256; i++ {
				select {
				case f := <-s.actc:
					f()
					continue
				default:
				}
				break
			}
		case <-s.stopc:
			s.shutdown()
			return
		}
		if err := s.core.Process(); err != nil {
			s.fatal.Store(&err)
			s.lg.Error("member stopped", zap.Error(err))
			s.shutdown()
			return
		}
		s.term.Store(s.core.Term())
		if l := s.core.Leader(); l != s.lead.Load() {
			if l != 0 {
				s.leaderChanges.Add(1)
			}
			s.lead.Store(l)
			next := make(chan struct{})
			close(*s.leaderMoved.Swap(&next))
		}
		s.applied.Store(s.core.Applied())
		s.committed.Store(s.core.Committed())
		s.learner.Store(s.core.IsLearner())
		if n := s.core.NumRemoved(); n != s.numRemoved {
			s.publishRemoved()
		}
	}
}

// publishRemoved copies the core's removed members for Process (loop only).
func (s *Server) publishRemoved() {
	ids := s.core.RemovedIDs()
	m := make(map[uint64]bool, len(ids))
	for _, id := range ids {
		m[id] = true
	}
	s.removed.Store(&m)
	s.numRemoved = len(ids)
}

func (s *Server) shutdown() {
	if s.crashing.Load() {
		s.core.Crash()
	} else if err := s.core.Close(); err != nil {
		s.lg.Warn("closing member state", zap.Error(err))
	}
	// Fail callers still queued behind the loop.
	for {
		select {
		case f := <-s.actc:
			f()
		default:
			return
		}
	}
}

// Stop stops the loop gracefully: in-flight proposals and reads end with
// "etcdserver: server stopped", the database is committed and closed.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		close(s.stopc)
		if !s.started.Load() { // never started: no loop to close the core
			s.shutdown()
			close(s.donec)
		}
	})
	<-s.donec
	_ = s.tr.Close()
	s.closeLeaderConn()
}

// crash stops the member as a power cut would: no final commit, no WAL
// writes after the last fsync. For tests.
func (s *Server) crash() {
	s.crashing.Store(true)
	s.Stop()
}

// do runs f on the loop. It fails when the loop has stopped.
func (s *Server) do(ctx context.Context, f func()) error {
	select {
	case <-s.stopc:
		return node.ErrStopped
	default:
	}
	select {
	case s.actc <- f:
		return nil
	case <-s.donec:
		return node.ErrStopped
	case <-s.stopc:
		return node.ErrStopped
	case <-ctx.Done():
		return ctxError(ctx.Err())
	}
}

// Process implements transport.Handler. A message from a removed member is
// refused with transport.ErrSenderRemoved, so that its sender learns it.
func (s *Server) Process(ctx context.Context, m *raftpb.Message) error {
	if r := s.removed.Load(); r != nil && (*r)[m.GetFrom()] {
		return transport.ErrSenderRemoved
	}
	return s.do(ctx, func() {
		if err := s.core.Step(m); err != nil && !errors.Is(err, raft.ErrStepPeerNotFound) {
			s.lg.Debug("stepping message", zap.Error(err))
		}
	})
}

// ProcessSnapshot implements transport.Handler: the database streams to
// disk as it arrives (node.StageSnapshot, never whole in memory), then the
// message is stepped with its data naming the staged file.
func (s *Server) ProcessSnapshot(ctx context.Context, m *raftpb.Message, db io.Reader) error {
	if r := s.removed.Load(); r != nil && (*r)[m.GetFrom()] {
		return transport.ErrSenderRemoved
	}
	index := m.GetSnapshot().GetMetadata().GetIndex()
	start := s.clock.Now()
	n, fsync, err := node.StageSnapshotTimed(s.cfg.Core.DataDir, index, db, s.clock)
	if err != nil {
		return err
	}
	// As etcd times saving a received snapshot's database (.snap.db).
	s.met.snapDBFsync.Observe(fsync.Seconds())
	s.met.snapDBSave.Observe(s.clock.Now().Sub(start).Seconds())
	s.lg.Info("saved snapshot database", zap.Uint64("snapshot-index", index), zap.Int64("size-bytes", n))
	m.Snapshot.Data = node.StagedSnapshotData
	return s.Process(ctx, m)
}

// ReportUnreachable implements transport.Handler.
func (s *Server) ReportUnreachable(id uint64) {
	_ = s.do(context.Background(), func() { s.core.ReportUnreachable(id) })
}

// ReportRemoved implements transport.Handler: peer id refused a message
// because the cluster removed this member, which therefore stops.
func (s *Server) ReportRemoved(id uint64) {
	_ = s.do(context.Background(), func() { s.core.RemovedByPeer(id) })
}

// ReportSnapshot implements transport.Handler.
func (s *Server) ReportSnapshot(id uint64, st raft.SnapshotStatus) {
	_ = s.do(context.Background(), func() { s.core.ReportSnapshot(id, st) })
}

// checkQuota refuses a request that would grow the database past the quota,
// raising the cluster's NOSPACE alarm as etcd does.
func (s *Server) checkQuota(r *pb.InternalRaftRequest) error {
	q := s.cfg.QuotaBackendBytes
	if q <= 0 || !node.AddsData(r) || s.kv.Size()+int64(proto.Size(r)) <= q {
		return nil
	}
	s.lg.Warn("database space exceeded: raising the NOSPACE alarm", zap.Int64("db-size", s.kv.Size()), zap.Int64("quota", q))
	// As etcd's: the alarm is raised before the client hears NOSPACE, so an
	// alarm list that follows the refusal shows it.
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout)
	defer cancel()
	if _, err := s.propose(ctx, &pb.InternalRaftRequest{Alarm: &pb.AlarmRequest{Action: pb.AlarmRequest_ACTIVATE, MemberID: s.ID(), Alarm: pb.AlarmType_NOSPACE}}); err != nil {
		s.lg.Warn("raising the NOSPACE alarm", zap.Error(err))
	}
	return node.ErrNoSpace
}

// propose replicates r and waits for its apply.
func (s *Server) propose(ctx context.Context, r *pb.InternalRaftRequest) (res node.Result, err error) {
	defer func(start time.Time) { s.observeRequest(applyOp(r), start, err == nil || res.Err != nil) }(s.clock.Now())
	if err := s.withAuthHeader(ctx, r); err != nil {
		return node.Result{}, err
	}
	if err := s.checkQuota(r); err != nil {
		return node.Result{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	resc := make(chan node.Result, 1)
	errc := make(chan error, 1)
	var id uint64
	err = s.do(ctx, func() {
		var err error
		id, err = s.core.Propose(r, func(res node.Result) { resc <- res })
		errc <- err
	})
	if err != nil {
		return node.Result{}, err
	}
	select {
	case err := <-errc:
		if err != nil {
			s.met.proposalsFailed.Inc()
			return node.Result{}, s.proposeError(err)
		}
	case <-s.donec: // stopped before the loop took the proposal
		return node.Result{}, node.ErrStopped
	}
	s.met.proposalsPending.Inc()
	defer s.met.proposalsPending.Dec()
	select {
	case res := <-resc:
		if res.Err != nil {
			return res, res.Err
		}
		return res, nil
	case <-ctx.Done():
		s.met.proposalsFailed.Inc()
		_ = s.do(context.Background(), func() { s.core.Forget(id) })
		return node.Result{}, s.timeoutError(ctx)
	case <-s.donec:
		return node.Result{}, node.ErrStopped
	}
}

func (s *Server) proposeError(err error) error {
	if errors.Is(err, node.ErrProposalDropped) {
		if s.Leader() == 0 {
			return ErrNoLeader
		}
		return ErrLeaderChanged
	}
	return err
}

// timeoutError tells a client's own cancellation from the server's deadline.
func (s *Server) timeoutError(ctx context.Context) error {
	if errors.Is(context.Cause(ctx), context.Canceled) {
		return ErrCanceled
	}
	if s.Leader() == 0 {
		return ErrNoLeader
	}
	return ErrTimeout
}

// LinearizableRead returns once this member has applied everything
// committed when it was called.
func (s *Server) LinearizableRead(ctx context.Context) error {
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	errc := make(chan error, 1)
	if err := s.do(ctx, func() { s.core.ReadIndex(func(err error) { errc <- err }) }); err != nil {
		return err
	}
	select {
	case err := <-errc:
		if err != nil {
			s.met.readIndexFailures.Inc()
		}
		return err
	case <-ctx.Done():
		// The read index timed out (not the client, who gave up: etcd
		// does not count that either).
		if parent.Err() == nil {
			s.met.readIndexFailures.Inc()
		}
		return s.timeoutError(ctx)
	case <-s.donec:
		s.met.readIndexFailures.Inc()
		return node.ErrStopped
	}
}

func (s *Server) header(rev int64) *pb.ResponseHeader {
	return &pb.ResponseHeader{ClusterId: s.core.ClusterID(), MemberId: s.core.ID(), Revision: rev, RaftTerm: s.Term()}
}

// Range serves KV.Range: linearizable unless r.Serializable.
func (s *Server) Range(ctx context.Context, r *pb.RangeRequest) (_ *pb.RangeResponse, err error) {
	defer func(start time.Time) { s.observeRequest("Range", start, err == nil) }(s.clock.Now())
	if !r.GetSerializable() {
		if err := s.LinearizableRead(ctx); err != nil {
			return nil, err
		}
	}
	var resp *pb.RangeResponse
	err = s.doSerialize(ctx, func(ai *auth.Info) error {
		return s.authStore().IsRangePermitted(ai, r.GetKey(), r.GetRangeEnd())
	}, func() (err error) {
		start := s.clock.Now()
		resp, err = s.kv.Range(r)
		s.met.rangeSeconds.WithLabelValues(boolLabel(err == nil)).Observe(s.clock.Now().Sub(start).Seconds())
		return err
	})
	if err != nil {
		return nil, err
	}
	resp.Header = s.header(resp.GetHeader().GetRevision())
	return resp, nil
}

// Put serves KV.Put through raft.
func (s *Server) Put(ctx context.Context, r *pb.PutRequest) (*pb.PutResponse, error) {
	res, err := s.propose(ctx, &pb.InternalRaftRequest{Put: r})
	if err != nil {
		return nil, err
	}
	return res.Resp.(*pb.PutResponse), nil
}

// DeleteRange serves KV.DeleteRange through raft.
func (s *Server) DeleteRange(ctx context.Context, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	res, err := s.propose(ctx, &pb.InternalRaftRequest{DeleteRange: r})
	if err != nil {
		return nil, err
	}
	return res.Resp.(*pb.DeleteRangeResponse), nil
}

// Txn serves KV.Txn: through raft when it writes, as a linearizable (or
// serializable) read when every operation in it reads.
func (s *Server) Txn(ctx context.Context, r *pb.TxnRequest) (_ *pb.TxnResponse, err error) {
	if mvcc.TxnReadOnly(r) {
		defer func(start time.Time) { s.observeRequest("ReadonlyTxn", start, err == nil) }(s.clock.Now())
		if !isTxnSerializable(r) {
			if err := s.LinearizableRead(ctx); err != nil {
				return nil, err
			}
		}
		var resp *pb.TxnResponse
		err := s.doSerialize(ctx, func(ai *auth.Info) error {
			return s.core.CheckTxnAuth(ai, r) // reads only: no lease to look up
		}, func() (err error) {
			resp, err = s.kv.Txn(r)
			return err
		})
		if err != nil {
			return nil, err
		}
		resp.Header = s.header(resp.GetHeader().GetRevision())
		return resp, nil
	}
	res, err := s.propose(ctx, &pb.InternalRaftRequest{Txn: r})
	if err != nil {
		return nil, err
	}
	return res.Resp.(*pb.TxnResponse), nil
}

func isTxnSerializable(r *pb.TxnRequest) bool {
	for _, ops := range [][]*pb.RequestOp{r.GetSuccess(), r.GetFailure()} {
		for _, op := range ops {
			if rr := op.GetRequestRange(); rr != nil && !rr.GetSerializable() {
				return false
			}
			if t := op.GetRequestTxn(); t != nil && !isTxnSerializable(t) {
				return false
			}
		}
	}
	return true
}

// Compact serves KV.Compact through raft.
//
// With r.Physical it answers once the compacted revisions are gone from
// the database, waiting for that as long as the caller does (etcd waits
// with no deadline of its own): only the proposal has the request
// timeout. A compaction of millions of revisions takes longer than that.
func (s *Server) Compact(ctx context.Context, r *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	res, err := s.propose(ctx, &pb.InternalRaftRequest{Compaction: r})
	if err != nil {
		return nil, err
	}
	if r.GetPhysical() {
		done := make(chan struct{})
		if err := s.do(ctx, func() { s.core.WhenCompacted(func() { close(done) }) }); err != nil {
			return nil, err
		}
		select {
		case <-done:
		case <-ctx.Done():
			return nil, s.timeoutError(ctx)
		case <-s.donec:
			return nil, node.ErrStopped
		}
	}
	return res.Resp.(*pb.CompactionResponse), nil
}

// Status serves Maintenance.Status with this member's storage version and
// the downgrade job (the API layer fills the server version).
func (s *Server) Status(ctx context.Context) (*pb.StatusResponse, error) {
	var st raft.Status
	var isLearner bool
	var alarms []*pb.AlarmMember
	var storageVersion string
	var downgrade node.DowngradeInfo
	done := make(chan struct{})
	if err := s.do(ctx, func() {
		st = s.core.Status()
		alarms = s.core.Alarms()
		storageVersion, downgrade = s.core.StorageVersion(), s.core.Downgrade()
		for _, m := range s.core.Members() {
			if m.ID == s.core.ID() {
				isLearner = m.IsLearner
			}
		}
		close(done)
	}); err != nil {
		return nil, err
	}
	select {
	case <-done:
	case <-ctx.Done():
		return nil, ctxError(ctx.Err())
	case <-s.donec:
		return nil, node.ErrStopped
	}
	resp := &pb.StatusResponse{
		Header:           s.header(s.kv.Rev()),
		DbSize:           s.kv.Size(),
		DbSizeInUse:      s.kv.SizeInUse(),
		Leader:           st.Lead,
		RaftIndex:        st.HardState.GetCommit(),
		RaftTerm:         st.HardState.GetTerm(),
		RaftAppliedIndex: s.applied.Load(),
		IsLearner:        isLearner,
		StorageVersion:   storageVersion,
		DowngradeInfo:    &pb.DowngradeInfo{Enabled: downgrade.Enabled, TargetVersion: downgrade.TargetVersion},
	}
	if st.Lead == 0 {
		resp.Errors = append(resp.Errors, ErrNoLeader.Error())
	}
	for _, a := range alarms {
		resp.Errors = append(resp.Errors, fmt.Sprintf("memberID:%d alarm:%s", a.GetMemberID(), a.GetAlarm()))
	}
	resp.DbSizeQuota = s.cfg.QuotaBackendBytes
	if resp.DbSizeQuota == 0 {
		resp.DbSizeQuota = -1 // no quota: what etcd reports for --quota-backend-bytes=-1
	}
	return resp, nil
}

// Hash serves Maintenance.Hash.
func (s *Server) Hash(ctx context.Context) (*pb.HashResponse, error) {
	h, err := s.hashAll()
	if err != nil {
		return nil, err
	}
	return &pb.HashResponse{Header: s.header(s.kv.Rev()), Hash: h}, nil
}

// HashKV serves Maintenance.HashKV.
func (s *Server) HashKV(ctx context.Context, rev int64) (*pb.HashKVResponse, error) {
	h, hashRev, compactRev, err := s.hashKV(rev)
	if err != nil {
		return nil, err
	}
	if compactRev == 0 {
		compactRev = -1 // etcd's answer before any compaction
	}
	return &pb.HashKVResponse{Header: s.header(s.kv.Rev()), Hash: h, HashRevision: hashRev, CompactRevision: compactRev}, nil
}

// OpenSnapshot is Maintenance.Snapshot's view of the database
// (api.SnapshotOpener): a read transaction streamed as the client takes it,
// with no copy on disk or in memory.
func (s *Server) OpenSnapshot(context.Context) (node.SnapshotBody, error) {
	return s.kv.OpenSnapshot()
}

// Snapshot writes a consistent copy of the database to w.
func (s *Server) Snapshot(ctx context.Context, w io.Writer) (int64, error) {
	n, err := s.kv.Snapshot(w)
	if err != nil {
		return n, ctxError(err)
	}
	return n, nil
}

// Defragment defragments the database online, logging progress.
func (s *Server) Defragment(ctx context.Context) error {
	start := time.Now()
	before := s.kv.Size()
	lastLog := time.Now()
	err := s.kv.Defrag(func(done, total int64) {
		if time.Since(lastLog) > time.Second || done == total {
			lastLog = time.Now()
			s.lg.Info("defragmenting", zap.Int64("done", done), zap.Int64("total", total))
		}
	})
	if err != nil {
		return err
	}
	s.lg.Info("defragmented", zap.Int64("size-before", before), zap.Int64("size-after", s.kv.Size()), zap.Duration("took", time.Since(start)))
	return nil
}

// Alarm serves Maintenance.Alarm: GET lists the raised alarms; ACTIVATE
// and DEACTIVATE go through raft.
func (s *Server) Alarm(ctx context.Context, r *pb.AlarmRequest) (*pb.AlarmResponse, error) {
	if r.GetAction() == pb.AlarmRequest_GET {
		if err := s.LinearizableRead(ctx); err != nil {
			return nil, err
		}
		var alarms []*pb.AlarmMember
		if err := s.onLoop(ctx, func() { alarms = s.core.Alarms() }); err != nil {
			return nil, err
		}
		return &pb.AlarmResponse{Header: s.header(s.kv.Rev()), Alarms: alarms}, nil
	}
	res, err := s.propose(ctx, &pb.InternalRaftRequest{Alarm: &pb.AlarmRequest{Action: r.GetAction(), MemberID: r.GetMemberID(), Alarm: r.GetAlarm()}})
	if err != nil {
		return nil, err
	}
	return res.Resp.(*pb.AlarmResponse), nil
}

// MoveLeader transfers leadership to target and waits for it to take over.
func (s *Server) MoveLeader(ctx context.Context, target uint64) (*pb.MoveLeaderResponse, error) {
	if s.Leader() != s.ID() {
		return nil, ErrNotLeader
	}
	known := make(chan bool, 1)
	if err := s.do(ctx, func() {
		ok := false
		for _, m := range s.core.Members() {
			ok = ok || (m.ID == target && !m.IsLearner)
		}
		if ok {
			s.core.TransferLeadership(target)
		}
		known <- ok
	}); err != nil {
		return nil, err
	}
	select {
	case ok := <-known:
		if !ok {
			return nil, ErrBadLeaderTransferee
		}
	case <-s.donec:
		return nil, node.ErrStopped
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	for {
		moved := s.leaderChange()
		if s.Leader() == target {
			break
		}
		select {
		case <-moved:
		case <-ctx.Done():
			return nil, ErrTimeoutDueToLeaderFail
		}
	}
	return &pb.MoveLeaderResponse{Header: s.header(s.kv.Rev())}, nil
}

// MemberList lists the members, after a linearizable read if asked.
func (s *Server) MemberList(ctx context.Context, linearizable bool) (*pb.MemberListResponse, error) {
	if linearizable {
		if err := s.LinearizableRead(ctx); err != nil {
			return nil, err
		}
	}
	msc := make(chan []node.Member, 1)
	if err := s.do(ctx, func() { msc <- s.core.Members() }); err != nil {
		return nil, err
	}
	var ms []node.Member
	select {
	case ms = <-msc:
	case <-s.donec:
		return nil, node.ErrStopped
	}
	// etcd's Cluster responses carry no revision in their header.
	resp := &pb.MemberListResponse{Header: &pb.ResponseHeader{ClusterId: s.ClusterID(), MemberId: s.ID(), RaftTerm: s.Term()}}
	for _, m := range ms {
		resp.Members = append(resp.Members, &pb.Member{ID: m.ID, Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs, IsLearner: m.IsLearner})
	}
	return resp, nil
}

// Alarms lists the alarms raised in the cluster, ordered by member and
// type, as etcd's /health and /readyz see them.
func (s *Server) Alarms(ctx context.Context) ([]*pb.AlarmMember, error) {
	var alarms []*pb.AlarmMember
	if err := s.onLoop(ctx, func() { alarms = s.core.Alarms() }); err != nil {
		return nil, err
	}
	return alarms, nil
}

// Learner reports whether this member is a learner as last seen by the
// loop (api.LearnerGate).
func (s *Server) Learner() bool { return s.learner.Load() }

// IsLearner reports whether this member is a raft learner.
func (s *Server) IsLearner(ctx context.Context) (bool, error) {
	var learner bool
	err := s.onLoop(ctx, func() {
		for _, m := range s.core.Members() {
			if m.ID == s.core.ID() {
				learner = m.IsLearner
			}
		}
	})
	return learner, err
}

// HealthRead is the read of etcd's health checks: a keys-only range of
// one key, linearizable unless serializable, bounded by the request
// timeout. As etcd's, a linearizable read with no leader is not refused
// at once: it waits out the timeout and fails with ErrGRPCTimeout
// ("etcdserver: request timed out"), which /readyz reports.
func (s *Server) HealthRead(ctx context.Context, serializable bool) error {
	if s.Err() != nil {
		return node.ErrStopped
	}
	_, err := s.Range(ctx, &pb.RangeRequest{Key: []byte{0}, KeysOnly: true, Limit: 1, Serializable: serializable})
	if errors.Is(err, ErrNoLeader) {
		return ErrTimeout
	}
	if errors.Is(err, auth.ErrUserEmpty) || errors.Is(err, auth.ErrPermissionDenied) {
		return nil // the read went through; etcd's health check takes these as healthy
	}
	return err
}

// leaderChange returns a channel closed at the next change of leader.
func (s *Server) leaderChange() <-chan struct{} { return *s.leaderMoved.Load() }

// publish records this member's name and client URLs in the replicated
// member list, retrying until it is applied or the server stops.
func (s *Server) publish() {
	req := &pb.InternalRaftRequest{ClusterMemberAttrSet: &membershippb.ClusterMemberAttrSetRequest{
		Member_ID:        s.ID(),
		MemberAttributes: &membershippb.Attributes{Name: s.cfg.Core.Name, ClientUrls: s.cfg.ClientURLs},
	}}
	for {
		moved := s.leaderChange()
		// Without a leader raft would drop the proposal, and
		// etcd_server_proposals_failed_total would count every retry.
		err := ErrNoLeader
		if s.Leader() != 0 {
			ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout)
			_, err = s.propose(ctx, req)
			cancel()
		}
		if err == nil {
			s.lg.Info("published member attributes", zap.Strings("client-urls", s.cfg.ClientURLs))
			return
		}
		// Again when a leader appears, or after a tick.
		t := s.clock.NewTimer(s.cfg.Core.TickInterval)
		select {
		case <-s.stopc:
		case <-s.donec:
		case <-moved:
		case <-t.C():
		}
		t.Stop()
		select {
		case <-s.stopc:
			return
		case <-s.donec:
			return
		default:
		}
	}
}

// The transports satisfy the core's view of them.
var (
	_ node.Transport = (*transport.HTTP)(nil)
	_ node.Transport = transport.Transport(nil)
)
