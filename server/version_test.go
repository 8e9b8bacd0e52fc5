package server

import (
	"context"
	"errors"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cairnkv/cairn/clock"
	"github.com/cairnkv/cairn/internal/testutil"
)

// startVersioned restarts every member of a 3-member cluster with the
// version monitor on, each member on its own fake clock.
func startVersioned(t *testing.T) (*testCluster, map[uint64]*clock.Fake) {
	t.Helper()
	c := newTestCluster(t, 3, clusterOpts{})
	c.waitLeader()
	clocks := map[uint64]*clock.Fake{}
	for _, m := range c.members {
		c.stop(m.ID)
	}
	for _, m := range c.members {
		fake := clock.NewFake(time.Unix(1_000_000, 0))
		clocks[m.ID] = fake
		c.startWith(m.ID, func(cfg *Config) {
			cfg.Core.Clock = fake
			cfg.CompactHashCheckTime = -1
			cfg.VersionCheckInterval = time.Second
		})
	}
	c.waitLeader()
	return c, clocks
}

// advanceUntil moves the members' fake clocks a monitor interval at a time
// until cond holds.
func advanceUntil(t *testing.T, clocks map[uint64]*clock.Fake, what string, cond func() (bool, string)) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, what, func() (bool, string) {
		if ok, detail := cond(); ok {
			return true, detail
		}
		for _, f := range clocks {
			if f.Waiters() > 0 {
				f.Advance(time.Second)
			}
		}
		return cond()
	})
}

func downgrade(s *Server, action pb.DowngradeRequest_DowngradeAction, v string) (*pb.DowngradeResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.Downgrade(ctx, &pb.DowngradeRequest{Action: action, Version: v})
}

// allVersions is true when every member reports cluster and storage
// versions cv and sv.
func allVersions(c *testCluster, cv, sv string) (bool, string) {
	detail := ""
	ok := true
	for _, s := range c.running() {
		gotCV, gotSV, err := s.Versions(context.Background())
		detail += s.cfg.Core.Name + ":" + gotCV + "/" + gotSV + " "
		ok = ok && err == nil && gotCV == cv && gotSV == sv
	}
	return ok, detail
}

// etcd 3.7's downgrade: validate and enable only to the previous minor,
// one job at a time, the leader's monitor lowers the cluster version, every
// member's lowers its storage version, and a cancel brings both back up.
func TestDowngradeValidateEnableCancel(t *testing.T) {
	c, clocks := startVersioned(t)
	lead := c.server(c.waitLeader())
	f := c.follower(lead.ID())
	if ok, detail := allVersions(c, "3.7.0", "3.7.0"); !ok {
		t.Fatalf("versions of a new cluster: %s", detail)
	}

	for _, tc := range []struct {
		v    string
		want error
	}{
		{"3.6", nil}, {"3.6.0", nil}, {"3.6.9", nil},
		{"3.5", ErrInvalidDowngradeTargetVersion}, {"3.7", ErrInvalidDowngradeTargetVersion}, {"4.0", ErrInvalidDowngradeTargetVersion},
		{"abc", ErrWrongDowngradeVersionFormat}, {"3", ErrWrongDowngradeVersionFormat}, {"", ErrWrongDowngradeVersionFormat}, {"v3.6", ErrWrongDowngradeVersionFormat},
	} {
		resp, err := downgrade(f, pb.DowngradeRequest_VALIDATE, tc.v)
		if !errors.Is(err, tc.want) {
			t.Fatalf("validate %q: %v, want %v", tc.v, err, tc.want)
		}
		if err == nil && resp.GetVersion() != "3.7" {
			t.Fatalf("validate %q answered cluster version %q, want 3.7", tc.v, resp.GetVersion())
		}
	}
	if _, err := downgrade(f, pb.DowngradeRequest_ENABLE, "3.5"); !errors.Is(err, ErrInvalidDowngradeTargetVersion) {
		t.Fatalf("enable 3.5: %v", err)
	}
	if resp, err := downgrade(f, pb.DowngradeRequest_CANCEL, ""); err != nil || resp.GetVersion() != "3.7" {
		t.Fatalf("cancel with no job: %v %v, want success as etcd", resp, err)
	}

	resp, err := downgrade(f, pb.DowngradeRequest_ENABLE, "3.6")
	if err != nil || resp.GetVersion() != "3.7" || resp.GetHeader().GetClusterId() != f.ClusterID() {
		t.Fatalf("enable 3.6: %v %v", resp, err)
	}
	st, err := lead.Status(context.Background())
	if err != nil || !st.GetDowngradeInfo().GetEnabled() || st.GetDowngradeInfo().GetTargetVersion() != "3.6.0" || st.GetStorageVersion() != "3.7.0" {
		t.Fatalf("status after enable: %v %v", st, err)
	}
	if _, err := downgrade(lead, pb.DowngradeRequest_ENABLE, "3.6"); !errors.Is(err, ErrDowngradeInProcess) {
		t.Fatalf("a second enable: %v, want %v", err, ErrDowngradeInProcess)
	}

	advanceUntil(t, clocks, "the cluster downgraded to 3.6", func() (bool, string) { return allVersions(c, "3.6.0", "3.6.0") })
	for _, s := range c.running() {
		g := s.clusterVersionMetric.gauge()
		value := func(label string) float64 {
			var m dto.Metric
			if err := g.WithLabelValues(label).Write(&m); err != nil {
				t.Fatal(err)
			}
			return m.GetGauge().GetValue()
		}
		if v36, v37 := value("3.6"), value("3.7"); v36 != 1 || v37 != 0 {
			t.Fatalf("%s: etcd_cluster_version 3.6=%v 3.7=%v, want 1 and 0", s.cfg.Core.Name, v36, v37)
		}
	}
	if _, err := downgrade(f, pb.DowngradeRequest_VALIDATE, "3.6"); !errors.Is(err, ErrInvalidDowngradeTargetVersion) {
		t.Fatalf("validate 3.6 at cluster version 3.6: %v", err)
	}
	if _, err := downgrade(f, pb.DowngradeRequest_VALIDATE, "3.5"); !errors.Is(err, ErrDowngradeInProcess) {
		t.Fatalf("validate 3.5 during the job: %v", err)
	}
	// A restarted member keeps what it recorded.
	c.stop(f.ID())
	c.startWith(f.ID(), func(cfg *Config) {
		cfg.Core.Clock = clocks[f.ID()]
		cfg.CompactHashCheckTime = -1
		cfg.VersionCheckInterval = time.Second
	})
	f = c.server(f.ID())
	if ok, detail := allVersions(c, "3.6.0", "3.6.0"); !ok {
		t.Fatalf("versions after a restart: %s", detail)
	}

	if resp, err := downgrade(f, pb.DowngradeRequest_CANCEL, ""); err != nil || resp.GetVersion() != "3.6" {
		t.Fatalf("cancel: %v %v", resp, err)
	}
	advanceUntil(t, clocks, "the cluster back at 3.7", func() (bool, string) { return allVersions(c, "3.7.0", "3.7.0") })
	st, err = f.Status(context.Background())
	if err != nil || st.GetDowngradeInfo().GetEnabled() || st.GetDowngradeInfo().GetTargetVersion() != "" {
		t.Fatalf("status after cancel: %v %v", st, err)
	}
}

func TestDowngradeUnknownAction(t *testing.T) {
	c := newTestCluster(t, 1, clusterOpts{})
	s := c.server(c.waitLeader())
	if _, err := downgrade(s, pb.DowngradeRequest_DowngradeAction(9), "3.6"); !errors.Is(err, ErrUnknownMethod) {
		t.Fatalf("unknown action: %v", err)
	}
}

// As etcd's leader, which needs every member's version, the monitor leaves
// the cluster version alone while a member is down.
func TestDowngradeWaitsForEveryMember(t *testing.T) {
	c, clocks := startVersioned(t)
	lead := c.server(c.waitLeader())
	down := c.follower(lead.ID())
	c.stop(down.ID())
	if _, err := downgrade(lead, pb.DowngradeRequest_ENABLE, "3.6"); err != nil {
		t.Fatalf("enable with a member down: %v", err)
	}
	// Three rounds of the leader's monitor (tick waits until each is done).
	for i := 0; i < 3; i++ {
		tick(t, clocks[lead.ID()], time.Second)
	}
	if cv, sv, err := lead.Versions(context.Background()); err != nil || cv != "3.7.0" || sv != "3.7.0" {
		t.Fatalf("versions with a member down: %s/%s %v, want 3.7.0 until it is back", cv, sv, err)
	}
	c.startWith(down.ID(), func(cfg *Config) {
		cfg.Core.Clock = clocks[down.ID()]
		cfg.CompactHashCheckTime = -1
		cfg.VersionCheckInterval = time.Second
	})
	advanceUntil(t, clocks, "the cluster downgraded once every member is back", func() (bool, string) { return allVersions(c, "3.6.0", "3.6.0") })
}
