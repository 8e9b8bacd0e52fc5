package node

import (
	"encoding/json"
	"fmt"

	"go.etcd.io/etcd/api/v3/membershippb"
	"go.uber.org/zap"
)

// The cluster version and the downgrade job are replicated state, kept in
// the "cluster" bucket under etcd 3.7's keys and values: "clusterVersion"
// holds a version such as "3.7.0", "downgrade" the JSON of DowngradeInfo.
// Both change only through raft (etcd's ClusterVersionSet and
// DowngradeInfoSet requests); the shell decides when to propose them
// (server/version.go). The core reads them from the database when asked, so
// a restart or an installed snapshot needs no reload.
var downgradeKey = []byte("downgrade")

// DowngradeInfo is the cluster's downgrade job, as etcd stores it.
type DowngradeInfo struct {
	// TargetVersion is the version the cluster is downgrading to ("3.6.0"),
	// empty when no job is in progress.
	TargetVersion string `json:"target-version"`
	// Enabled is whether a downgrade job is in progress.
	Enabled bool `json:"enabled"`
}

// ClusterVersion is the replicated cluster version ("3.7.0"), or "" before
// the first conf change recorded one. Loop only.
func (c *Core) ClusterVersion() string {
	v, _ := c.kv.AuxGet(clusterBucket, clusterVersionKey)
	return string(v)
}

// Downgrade is the cluster's downgrade job. A value that does not decode
// reads as no job (etcd refuses to start on one; it cannot come from
// Cairn). Loop only.
func (c *Core) Downgrade() DowngradeInfo {
	var d DowngradeInfo
	if b, ok := c.kv.AuxGet(clusterBucket, downgradeKey); ok {
		if err := json.Unmarshal(b, &d); err != nil {
			c.lg.Warn("ignoring an undecodable downgrade record", zap.ByteString("value", b), zap.Error(err))
			return DowngradeInfo{}
		}
	}
	return d
}

// StorageVersion is the storage version recorded in this member's
// database ("3.7.0"). Loop only.
func (c *Core) StorageVersion() string { return c.kv.StorageVersion() }

// SetStorageVersion records v as this member's storage version, in the
// open batch. It is local to the member, as etcd's: each member follows
// the cluster version on its own (server/version.go). Loop only.
func (c *Core) SetStorageVersion(v string) { c.kv.SetStorageVersion(v) }

func (c *Core) applyClusterVersionSet(r *membershippb.ClusterVersionSetRequest) error {
	ver := r.GetVer()
	if ver == "" {
		return fmt.Errorf("node: cluster version set to an empty version")
	}
	old := c.ClusterVersion()
	if old != ver {
		c.lg.Info("updated cluster version", zap.String("from", old), zap.String("to", ver))
	}
	c.kv.AuxPut(clusterBucket, clusterVersionKey, []byte(ver))
	return nil
}

func (c *Core) applyDowngradeInfoSet(r *membershippb.DowngradeInfoSetRequest) error {
	d := DowngradeInfo{}
	if r.GetEnabled() {
		d = DowngradeInfo{TargetVersion: r.GetVer(), Enabled: true}
	}
	b, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("node: encoding downgrade info: %w", err)
	}
	c.kv.AuxPut(clusterBucket, downgradeKey, b)
	if d.Enabled {
		c.lg.Info("cluster downgrade enabled", zap.String("target-version", d.TargetVersion))
	} else {
		c.lg.Info("cluster downgrade cancelled")
	}
	return nil
}
