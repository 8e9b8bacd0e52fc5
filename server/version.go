package server

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/coreos/go-semver/semver"
	"github.com/prometheus/client_golang/prometheus"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/membershippb"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/node"
	"github.com/cairnkv/cairn/version"
)

// The cluster version, the downgrade job and the storage version, as etcd
// 3.7 keeps them:
//
//   - the cluster version and the downgrade job are replicated (the core
//     applies etcd's ClusterVersionSet and DowngradeInfoSet requests into
//     the "cluster" bucket, node/version.go);
//   - Maintenance.Downgrade validates, enables (a DowngradeInfoSet through
//     raft) and cancels a downgrade job;
//   - every VersionCheckInterval (etcd's monitorVersionInterval, 4s) the
//     leader moves the cluster version towards the downgrade target, or
//     back up to its own version once no job is in progress, and every
//     member sets the storage version recorded in its database to the
//     cluster version's major.minor (etcd's monitors).
//
// etcd's leader asks each member's peer listener for its server version,
// and leaves the cluster version alone while any member does not answer.
// Every Cairn member speaks the same etcd version (version.Etcd), so the
// smallest server version is this member's own once every member is
// reachable: the leader changes the cluster version only while its
// transport has a working stream to every other member, learners included.

// DefaultVersionCheckInterval is etcd's monitorVersionInterval
// (rafthttp.ConnWriteTimeout - 1s).
const DefaultVersionCheckInterval = 4 * time.Second

// minClusterVersion is etcd's version.MinClusterVersion: a cluster version
// storage never follows.
const minClusterVersion = "3.0.0"

// clusterVersionOf parses a downgrade target as etcd's
// convertToClusterVersion does: "X.Y.Z" or "X.Y", keeping major.minor.
func clusterVersionOf(v string) (*semver.Version, error) {
	ver, err := semver.NewVersion(v)
	if err != nil {
		ver, err = semver.NewVersion(v + ".0")
		if err != nil {
			return nil, ErrWrongDowngradeVersionFormat
		}
	}
	return &semver.Version{Major: ver.Major, Minor: ver.Minor}, nil
}

// parseVersion is a stored version ("3.7.0"), nil when empty or malformed.
func parseVersion(v string) *semver.Version {
	if v == "" {
		return nil
	}
	ver, err := semver.NewVersion(v)
	if err != nil {
		return nil
	}
	return ver
}

// serverVersion is this member's etcd version, major.minor.
func serverVersion() *semver.Version {
	v := semver.Must(semver.NewVersion(version.Etcd))
	return &semver.Version{Major: v.Major, Minor: v.Minor}
}

// allowedDowngrade is the one version a cluster at v may downgrade to: the
// previous minor, as etcd allows.
func allowedDowngrade(v *semver.Version) *semver.Version {
	return &semver.Version{Major: v.Major, Minor: v.Minor - 1}
}

// versionState is what the core holds about versions, read on the loop.
type versionState struct {
	cluster   string
	storage   string
	downgrade node.DowngradeInfo
	members   []node.Member
}

func (s *Server) versionState(ctx context.Context) (versionState, error) {
	var st versionState
	err := s.onLoop(ctx, func() {
		st = versionState{cluster: s.core.ClusterVersion(), storage: s.core.StorageVersion(), downgrade: s.core.Downgrade(), members: s.core.Members()}
	})
	return st, err
}

// Versions is the cluster version ("3.7.0") and this member's storage
// version, as /version reports them (api.VersionReporter).
func (s *Server) Versions(ctx context.Context) (cluster, storage string, err error) {
	st, err := s.versionState(ctx)
	return st.cluster, st.storage, err
}

// Downgrade serves Maintenance.Downgrade as etcd 3.7 does.
func (s *Server) Downgrade(ctx context.Context, r *pb.DowngradeRequest) (*pb.DowngradeResponse, error) {
	var (
		resp *pb.DowngradeResponse
		err  error
	)
	switch r.GetAction() {
	case pb.DowngradeRequest_VALIDATE:
		resp, err = s.downgradeValidate(ctx, r.GetVersion())
	case pb.DowngradeRequest_ENABLE:
		resp, err = s.downgradeEnable(ctx, r.GetVersion())
	case pb.DowngradeRequest_CANCEL:
		resp, err = s.downgradeCancel(ctx)
	default:
		err = ErrUnknownMethod
	}
	if err != nil {
		return nil, err
	}
	resp.Header = s.header(s.kv.Rev())
	return resp, nil
}

func (s *Server) downgradeValidate(ctx context.Context, v string) (*pb.DowngradeResponse, error) {
	target, err := clusterVersionOf(v)
	if err != nil {
		return nil, err
	}
	st, err := s.versionState(ctx)
	if err != nil {
		return nil, err
	}
	cv := parseVersion(st.cluster)
	if cv == nil {
		return nil, ErrClusterVersionUnavailable
	}
	resp := &pb.DowngradeResponse{Version: majorMinor(cv.String())}
	if err := s.checkDowngrade(ctx, target); err != nil {
		return nil, err
	}
	return resp, nil
}

// checkDowngrade is etcd's DowngradeValidate: after a linearizable read,
// target must be the minor below the cluster version, and no job may be in
// progress.
func (s *Server) checkDowngrade(ctx context.Context, target *semver.Version) error {
	if err := s.LinearizableRead(ctx); err != nil {
		return err
	}
	st, err := s.versionState(ctx)
	if err != nil {
		return err
	}
	cv := parseVersion(st.cluster)
	if cv == nil {
		return ErrClusterVersionUnavailable
	}
	if !target.Equal(*allowedDowngrade(cv)) {
		return ErrInvalidDowngradeTargetVersion
	}
	if st.downgrade.Enabled {
		return ErrDowngradeInProcess
	}
	return nil
}

func (s *Server) downgradeEnable(ctx context.Context, v string) (*pb.DowngradeResponse, error) {
	target, err := clusterVersionOf(v)
	if err == nil {
		err = s.checkDowngrade(ctx, target)
	}
	if err == nil {
		_, err = s.propose(ctx, &pb.InternalRaftRequest{DowngradeInfoSet: &membershippb.DowngradeInfoSetRequest{Enabled: true, Ver: target.String()}})
	}
	if err != nil {
		s.lg.Warn("reject downgrade request", zap.Error(err))
		return nil, err
	}
	st, err := s.versionState(ctx)
	if err != nil {
		return nil, err
	}
	return &pb.DowngradeResponse{Version: majorMinor(st.cluster)}, nil
}

// downgradeCancel cancels the job in progress. As etcd's, it answers
// success whatever happened, logging why nothing was cancelled.
func (s *Server) downgradeCancel(ctx context.Context) (*pb.DowngradeResponse, error) {
	err := s.LinearizableRead(ctx)
	var st versionState
	if err == nil {
		st, err = s.versionState(ctx)
	}
	if err == nil && !st.downgrade.Enabled {
		err = ErrNoInflightDowngrade
	}
	if err == nil {
		_, err = s.propose(ctx, &pb.InternalRaftRequest{DowngradeInfoSet: &membershippb.DowngradeInfoSetRequest{Enabled: false}})
	}
	if err != nil {
		s.lg.Warn("failed to cancel downgrade", zap.Error(err))
	}
	st, err = s.versionState(ctx)
	if err != nil {
		return nil, err
	}
	return &pb.DowngradeResponse{Version: majorMinor(st.cluster)}, nil
}

// versionMonitor runs etcd's cluster and storage version monitors every
// VersionCheckInterval: a timer re-armed after each check, so a test on a
// fake clock knows, once it is armed again, that the check is done.
func (s *Server) versionMonitor(every time.Duration) {
	t := s.clock.NewTimer(every)
	defer t.Stop()
	for {
		select {
		case <-s.stopc:
			return
		case <-s.donec:
			return
		case <-t.C():
			ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout)
			s.checkVersions(ctx)
			cancel()
		}
		t.Reset(every)
	}
}

// checkVersions is one round of the monitors: on the leader, the cluster
// version follows the downgrade job (or this version once none is in
// progress); on every member, the storage version follows the cluster
// version.
func (s *Server) checkVersions(ctx context.Context) {
	st, err := s.versionState(ctx)
	if err != nil {
		return
	}
	if s.Leader() == s.ID() && s.allMembersReachable(st.members) {
		if next := s.decideClusterVersion(st); next != nil {
			ver := next.String()
			s.lg.Info("updating cluster version using v3 API", zap.String("from", majorMinor(st.cluster)), zap.String("to", majorMinor(ver)))
			if _, err := s.propose(ctx, &pb.InternalRaftRequest{ClusterVersionSet: &membershippb.ClusterVersionSetRequest{Ver: ver}}); err != nil {
				s.lg.Warn("failed to update cluster version", zap.Error(err))
				return
			}
			s.lg.Info("cluster version is updated", zap.String("cluster-version", majorMinor(ver)))
			st.cluster = ver
		}
	}
	s.clusterVersionMetric.set(st.cluster)
	cv := parseVersion(st.cluster)
	if cv == nil || cv.String() == minClusterVersion {
		return
	}
	sv := parseVersion(st.storage)
	if sv != nil && sv.Major == cv.Major && sv.Minor == cv.Minor {
		return
	}
	want := (&semver.Version{Major: cv.Major, Minor: cv.Minor}).String()
	if sv != nil {
		s.lg.Info("cluster version differs from storage version.", zap.String("cluster-version", cv.String()), zap.String("storage-version", sv.String()))
	}
	if err := s.onLoop(ctx, func() { s.core.SetStorageVersion(want) }); err != nil {
		s.lg.Error("failed to update storage version", zap.String("cluster-version", cv.String()), zap.Error(err))
		return
	}
	s.lg.Info("updated storage version", zap.String("new-storage-version", want))
	if st.downgrade.Enabled {
		s.lg.Info("The server is ready to downgrade", zap.String("target-version", st.downgrade.TargetVersion), zap.String("server-version", version.Etcd))
	}
}

// allMembersReachable reports whether the transport has a working stream
// to every other member: etcd's leader knows every member's version only
// then.
func (s *Server) allMembersReachable(ms []node.Member) bool {
	for _, m := range ms {
		if m.ID != s.ID() && s.activeSince(m.ID).IsZero() {
			s.lg.Debug("cluster version left alone: a member is unreachable", zap.String("remote-member-id", fmt.Sprintf("%x", m.ID)))
			return false
		}
	}
	return true
}

// decideClusterVersion is etcd's: the next cluster version, or nil to
// leave it.
func (s *Server) decideClusterVersion(st versionState) *semver.Version {
	local := serverVersion()
	cv := parseVersion(st.cluster)
	if cv == nil {
		return local
	}
	cv = &semver.Version{Major: cv.Major, Minor: cv.Minor}
	if d := st.downgrade; d.Enabled {
		target := parseVersion(d.TargetVersion)
		if target == nil || target.Equal(*cv) {
			return nil
		}
		if !target.Equal(*allowedDowngrade(cv)) {
			s.lg.Error("Cannot downgrade from cluster-version to downgrade-target",
				zap.String("downgrade-target", d.TargetVersion), zap.String("cluster-version", cv.String()))
			return nil
		}
		if !target.Equal(*allowedDowngrade(local)) {
			s.lg.Error("Cannot downgrade from minimal-server-version to downgrade-target",
				zap.String("downgrade-target", d.TargetVersion), zap.String("minimal-server-version", local.String()))
			return nil
		}
		return target
	}
	if cv.LessThan(*local) && cv.Major == local.Major {
		return local
	}
	return nil
}

// clusterVersionMetric is etcd_cluster_version: 1 for the label of the
// cluster version as this member's monitor last saw it, 0 for the ones
// before, as etcd's.
type clusterVersionMetric struct {
	once sync.Once
	mu   sync.Mutex
	g    *prometheus.GaugeVec
	cur  string
}

func (m *clusterVersionMetric) gauge() *prometheus.GaugeVec {
	m.once.Do(func() {
		m.g = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "etcd_cluster_version",
			Help: "Which version is running. 1 for 'cluster_version' label with current cluster version"}, []string{"cluster_version"})
		m.cur = majorMinor(version.EtcdCluster)
		m.g.WithLabelValues(m.cur).Set(1)
	})
	return m.g
}

// set records the cluster version v ("3.6.0").
func (m *clusterVersionMetric) set(v string) {
	g := m.gauge()
	m.mu.Lock()
	defer m.mu.Unlock()
	if v = majorMinor(v); v == "" || v == m.cur {
		return
	}
	g.WithLabelValues(m.cur).Set(0)
	g.WithLabelValues(v).Set(1)
	m.cur = v
}
