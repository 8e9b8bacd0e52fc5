package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/config"
	"github.com/cairnkv/cairn/internal/discovery"
	"github.com/cairnkv/cairn/node"
	"github.com/cairnkv/cairn/node/wal"
	"github.com/cairnkv/cairn/vfs"
)

// bootstrapByDiscovery completes a new member's --initial-cluster through
// etcd's v3 discovery (--discovery-endpoints, --discovery-token): it
// registers the member with the discovery service and waits until the
// cluster's size of members have registered. A member with a WAL ignores
// discovery, as etcd does. ctx ends the wait (a signal).
func bootstrapByDiscovery(ctx context.Context, cfg *config.Config, lg *zap.Logger) error {
	d := cfg.Discovery
	if !d.Enabled() {
		return nil
	}
	walDir := cfg.WALDir
	if walDir == "" {
		walDir = node.WALDir(cfg.DataDir)
	}
	if _, err := os.Stat(walDir); err == nil {
		lg.Warn("discovery token is ignored since cluster already initialized; valid logs are found", zap.String("wal-dir", walDir))
		return nil
	}
	if cfg.InitialClusterState == config.ClusterStateExisting {
		return errors.New("discovery URL should not be set when joining existing initial cluster")
	}
	// config.prepareDiscovery made --initial-cluster this member alone,
	// and the discovery token the cluster token.
	self := cfg.InitialCluster[0]
	id := node.MemberID(self.PeerURLs, cfg.InitialClusterToken)
	lg.Info("Bootstrapping cluster using v3 discovery.")
	spec := clientv3.ConfigSpec{
		Endpoints: d.Endpoints, DialTimeout: d.DialTimeout, RequestTimeout: d.RequestTimeout,
		KeepAliveTime: d.KeepAliveTime, KeepAliveTimeout: d.KeepAliveTimeout,
		Secure: &clientv3.SecureConfig{Cert: d.Cert, Key: d.Key, Cacert: d.CACert,
			InsecureTransport: d.InsecureTransport, InsecureSkipVerify: d.InsecureSkipVerify},
		Auth: &clientv3.AuthConfig{Username: d.User, Password: d.Password},
	}
	cs, err := discovery.JoinCluster(ctx, discovery.Config{ConfigSpec: spec, Token: d.Token, Logger: lg}, id, config.FormatInitialCluster(cfg.InitialCluster))
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("discovery interrupted: %w", err)
		}
		// etcd's two warnings for any discovery failure.
		lg.Warn("failed to bootstrap; discovery token was already used",
			zap.String("discovery-token", d.Token), zap.Strings("discovery-endpoints", d.Endpoints), zap.Error(err))
		lg.Warn("do not reuse discovery token; generate a new one to bootstrap a cluster")
		return &discovery.Error{Op: "join", Err: err}
	}
	members, err := config.ParseInitialCluster(cs)
	if err != nil {
		if strings.Contains(err.Error(), "listed twice") {
			return fmt.Errorf("discovery cluster %s has duplicate url", cs)
		}
		return fmt.Errorf("discovery cluster %s: %w", cs, err)
	}
	cfg.InitialCluster = members
	return nil
}

// discoveredClusterID is the cluster ID recorded in the WAL of a member
// bootstrapped by discovery: its --initial-cluster is no longer known at a
// restart (etcd too reads the ID from the WAL), so it cannot be derived
// again. 0 when discovery is off or there is no WAL.
func discoveredClusterID(cfg *config.Config, walDir string) (uint64, error) {
	if !cfg.Discovery.Enabled() || !wal.Exist(vfs.OS(), walDir) {
		return 0, nil
	}
	checked, err := wal.Verify(vfs.OS(), walDir, nil)
	if err != nil {
		return 0, fmt.Errorf("reading the WAL of a member bootstrapped by discovery: %w", err)
	}
	meta, err := node.ParseWALMetadata(checked.Metadata)
	if err != nil {
		return 0, err
	}
	return meta.ClusterID, nil
}
