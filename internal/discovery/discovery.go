// Package discovery is etcd 3.7's v3 discovery protocol, client side: the
// members of a new cluster find each other through an existing etcd-API
// cluster (etcd or Cairn), the discovery service.
//
// The operator writes the cluster's size under the token:
//
//	/_etcd/registry/<token>/_config/size = "3"
//
// Each new member registers itself under
//
//	/_etcd/registry/<token>/members/<member ID in hex> = "<name>=<peer URL>[,<name>=<peer URL>...]"
//
// and watches the members' prefix until size members are registered. The
// members, ordered by the revision that created their key, make the new
// cluster's --initial-cluster; only the first size are members, so a
// member registered after them finds the cluster full. Every member
// derives the same list, and with the token as the cluster token the same
// member and cluster IDs as etcd's.
package discovery

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// registryPrefix is etcd's discoveryPrefix.
const registryPrefix = "/_etcd/registry"

// etcd's errors, with its texts.
var (
	ErrInvalidURL   = errors.New("discovery: invalid peer URL")
	ErrBadSizeKey   = errors.New("discovery: size key is bad")
	ErrSizeNotFound = errors.New("discovery: size key not found")
	ErrFullCluster  = errors.New("discovery: cluster is full")
)

// Error is etcd's DiscoveryError: the step that failed and why.
type Error struct {
	Op  string
	Err error
}

func (e *Error) Error() string {
	return fmt.Sprintf("failed to %s discovery cluster (%v)", e.Op, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Config is the discovery service and the token of the cluster to form.
type Config struct {
	// ConfigSpec is the client of the discovery service, as etcd's
	// --discovery-* flags describe it (endpoints, timeouts, TLS, user).
	clientv3.ConfigSpec
	Token  string
	Logger *zap.Logger
	// backoff is the wait before the n-th retry of a failed request (1,
	// 2, ...); nil means etcd's: 2^n seconds, at most 256.
	backoff func(n int) time.Duration
}

func sizeKey(token string) string       { return path.Join(registryPrefix, token, "_config/size") }
func membersPrefix(token string) string { return path.Join(registryPrefix, token, "members") }
func memberKey(token string, id uint64) string {
	return path.Join(membersPrefix(token), strconv.FormatUint(id, 16))
}

// JoinCluster registers this member (id, and self: its "name=URL" pairs)
// and waits until the cluster's size of members have registered; it
// returns their "name=URL,..." list, this member among them. It fails at
// once when the size key is missing or bad, or when the cluster already
// has its members without this one; it retries other failures for ever,
// as etcd does, until ctx ends.
func JoinCluster(ctx context.Context, cfg Config, id uint64, self string) (string, error) {
	lg := cfg.Logger
	if lg == nil {
		lg = zap.NewNop()
	}
	lg = lg.With(zap.String("discovery-token", cfg.Token), zap.String("discovery-endpoints", strings.Join(cfg.Endpoints, ",")))
	ccfg, err := clientv3.NewClientConfig(&cfg.ConfigSpec, lg)
	if err != nil {
		return "", err
	}
	ccfg.Context = ctx
	ccfg.Logger = lg.Named("client")
	cli, err := clientv3.New(*ccfg)
	if err != nil {
		return "", err
	}
	defer cli.Close()
	d := &discovery{cfg: cfg, lg: lg, cli: cli, id: id}
	cs, err := d.join(ctx, self)
	if err != nil {
		if ctx.Err() != nil {
			lg.Info("discovery interrupted", zap.Error(err))
		} else {
			lg.Error("discovery failed to join cluster", zap.String("cluster", cs), zap.Error(err))
		}
		return cs, err
	}
	lg.Info("discovery joined cluster successfully", zap.String("cluster", cs))
	return cs, nil
}

type discovery struct {
	cfg     Config
	lg      *zap.Logger
	cli     *clientv3.Client
	id      uint64
	retries int
}

// member is one registration.
type member struct {
	key, peers string
	createRev  int64
}

// registry is what the discovery service holds for the token, by creation.
type registry struct {
	prefix  string
	members []member
}

// add records a registration, refusing what etcd refuses.
func (r *registry) add(key, value string, createRev int64) error {
	key, value = strings.TrimSpace(key), strings.TrimSpace(value)
	if !strings.HasPrefix(key, r.prefix) {
		return errors.New("invalid peer registry key")
	}
	if !strings.ContainsRune(value, '=') {
		return errors.New("invalid peer info returned from discovery service")
	}
	if slices.ContainsFunc(r.members, func(m member) bool { return m.key == key }) {
		return errors.New("found duplicate peer from discovery service")
	}
	r.members = append(r.members, member{key: key, peers: value, createRev: createRev})
	slices.SortFunc(r.members, func(a, b member) int { return cmp.Compare(a.createRev, b.createRev) })
	return nil
}

// initialCluster is the first size registrations' "name=URL" pairs.
func (r *registry) initialCluster(size int) (string, error) {
	var parts []string
	for i, m := range r.members {
		if i == size {
			break
		}
		parts = append(parts, m.peers)
	}
	s := strings.Join(parts, ",")
	for _, p := range strings.Split(s, ",") {
		name, u, ok := strings.Cut(p, "=")
		if !ok || name == "" || !(strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://")) {
			return s, ErrInvalidURL
		}
	}
	return s, nil
}

func (d *discovery) join(ctx context.Context, self string) (string, error) {
	if _, _, _, err := d.check(ctx); err != nil {
		return "", err
	}
	if err := d.register(ctx, self); err != nil {
		return "", err
	}
	reg, size, rev, err := d.check(ctx)
	if err != nil {
		return "", err
	}
	for len(reg.members) < size {
		if rev, err = d.waitPeers(ctx, reg, size, rev); err != nil {
			return "", err
		}
	}
	return reg.initialCluster(size)
}

// retry waits before the next attempt of a failed step.
func (d *discovery) retry(ctx context.Context, step string) error {
	d.retries++
	wait := time.Duration(1<<min(d.retries, 8)) * time.Second
	if d.cfg.backoff != nil {
		wait = d.cfg.backoff(d.retries)
	}
	d.lg.Warn("retry connecting to discovery service", zap.String("reason", step), zap.Duration("backoff", wait))
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (d *discovery) request(ctx context.Context) (context.Context, context.CancelFunc) {
	if d.cfg.RequestTimeout > 0 {
		return context.WithTimeout(ctx, d.cfg.RequestTimeout)
	}
	return context.WithCancel(ctx)
}

// size reads the cluster's size.
func (d *discovery) size(ctx context.Context) (int, error) {
	rctx, cancel := d.request(ctx)
	defer cancel()
	key := sizeKey(d.cfg.Token)
	resp, err := d.cli.Get(rctx, key)
	if err != nil {
		d.lg.Warn("failed to get cluster size from discovery service", zap.String("clusterSizeKey", key), zap.Error(err))
		return 0, err
	}
	if len(resp.Kvs) == 0 {
		return 0, ErrSizeNotFound
	}
	n, err := strconv.ParseInt(string(resp.Kvs[0].Value), 10, 0)
	if err != nil || n <= 0 {
		return 0, ErrBadSizeKey
	}
	return int(n), nil
}

// members reads every registration and the revision it was read at.
func (d *discovery) members(ctx context.Context) (*registry, int64, error) {
	rctx, cancel := d.request(ctx)
	defer cancel()
	prefix := membersPrefix(d.cfg.Token)
	resp, err := d.cli.Get(rctx, prefix, clientv3.WithPrefix())
	if err != nil {
		d.lg.Warn("failed to get cluster members from discovery service", zap.String("membersKeyPrefix", prefix), zap.Error(err))
		return nil, 0, err
	}
	reg := &registry{prefix: prefix}
	for _, kv := range resp.Kvs {
		d.note(reg.add(string(kv.Key), string(kv.Value), kv.CreateRevision), kv.Key, kv.Value)
	}
	return reg, resp.Header.Revision, nil
}

func (d *discovery) note(err error, key, value []byte) {
	if err != nil {
		d.lg.Warn(err.Error(), zap.ByteString("memberKey", key), zap.ByteString("memberInfo", value))
		return
	}
	d.lg.Info("found peer from discovery service", zap.ByteString("memberKey", key), zap.ByteString("memberInfo", value))
}

// check reads the size and the registrations; the cluster is full when
// size members registered before this one (or without it).
func (d *discovery) check(ctx context.Context) (*registry, int, int64, error) {
	for {
		size, err := d.size(ctx)
		if errors.Is(err, ErrSizeNotFound) || errors.Is(err, ErrBadSizeKey) {
			return nil, 0, 0, err
		}
		var reg *registry
		var rev int64
		if err == nil {
			reg, rev, err = d.members(ctx)
		}
		if err != nil {
			if err := d.retry(ctx, "cluster status check"); err != nil {
				return nil, 0, 0, err
			}
			continue
		}
		d.retries = 0
		self := memberKey(d.cfg.Token, d.id)
		for i, m := range reg.members {
			if m.key == self {
				break
			}
			if i >= size-1 {
				return reg, size, rev, ErrFullCluster
			}
		}
		return reg, size, rev, nil
	}
}

func (d *discovery) register(ctx context.Context, self string) error {
	key := memberKey(d.cfg.Token, d.id)
	for {
		rctx, cancel := d.request(ctx)
		_, err := d.cli.Put(rctx, key, self)
		cancel()
		if err == nil {
			d.retries = 0
			d.lg.Info("register member itself successfully", zap.String("memberKey", key), zap.String("memberInfo", self))
			return nil
		}
		d.lg.Warn("failed to register members itself to the discovery service", zap.String("memberKey", key), zap.Error(err))
		if err := d.retry(ctx, "register member itself"); err != nil {
			return err
		}
	}
}

// waitPeers watches the registrations after rev until size members are
// known, and returns the last revision seen (to watch again from if the
// watch ends early).
func (d *discovery) waitPeers(ctx context.Context, reg *registry, size int, rev int64) (int64, error) {
	d.lg.Info("waiting for peers from discovery service", zap.Int("clusterSize", size), zap.Int("found-peers", len(reg.members)))
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	for wresp := range d.cli.Watch(wctx, reg.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1)) {
		if err := wresp.Err(); err != nil {
			d.lg.Warn("watching the discovery service", zap.Error(err))
			break
		}
		for _, ev := range wresp.Events {
			d.note(reg.add(string(ev.Kv.Key), string(ev.Kv.Value), ev.Kv.CreateRevision), ev.Kv.Key, ev.Kv.Value)
			rev = max(rev, ev.Kv.ModRevision)
		}
		if len(reg.members) >= size {
			d.lg.Info("found all needed peers from discovery service", zap.Int("clusterSize", size), zap.Int("found-peers", len(reg.members)))
			return rev, nil
		}
	}
	if err := ctx.Err(); err != nil {
		return rev, err
	}
	return rev, d.retry(ctx, "watch peers")
}
