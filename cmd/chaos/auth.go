package main

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// With -auth the run turns etcd's auth on once the cluster serves, and
// every client works as root: logins go through raft, simple tokens are
// lost when a member restarts (clientv3 logs in again), and every write is
// checked again at apply, all under the run's faults.
const (
	chaosRootUser     = "root"
	chaosRootPassword = "chaos-root"
)

// enableAuth makes the root user and turns auth on, through cli.
func enableAuth(cli *clientv3.Client) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := cli.UserAdd(ctx, chaosRootUser, chaosRootPassword); err != nil {
		return fmt.Errorf("auth: adding %s: %w", chaosRootUser, err)
	}
	if _, err := cli.UserGrantRole(ctx, chaosRootUser, "root"); err != nil {
		return fmt.Errorf("auth: granting the root role: %w", err)
	}
	if _, err := cli.AuthEnable(ctx); err != nil {
		return fmt.Errorf("auth: enabling: %w", err)
	}
	return nil
}
