// Package lease implements etcd v3 leases: a TTL bound to a lease ID,
// keys attached to the lease, and expiry decided by the raft leader only.
//
// A Lessor has two faces. Its replicated methods (Grant, Revoke, Attach,
// Detach, Checkpoint) are called from entries applied from the raft log,
// identically on every member, and give identical results everywhere; they
// persist through a Backend in the same batch as the KV writes. Its
// leader-local methods (Promote, Demote, Renew, Expired, DueCheckpoints)
// are never replicated: only the primary (the lessor of the raft leader)
// keeps expiry times, and it expires leases by having the node propose
// revokes through raft, so every member deletes the same keys at the same
// revision. A follower never expires anything on its own.
//
// Remaining-TTL checkpoints keep a leader change from restarting long
// leases from their full TTL: the primary periodically reports each long
// lease's remaining TTL (DueCheckpoints), the node replicates it
// (Checkpoint), and a newly promoted primary restarts every lease's
// countdown from its checkpointed remaining TTL, else its granted TTL,
// plus the extension given to Promote. A leader change therefore never
// cuts a lease, and extends it by at most CheckpointInterval plus that
// extension.
//
// A Lessor starts no goroutines and reads time only from its Clock
// (the core's rules: docs/architecture.md). It is not safe for concurrent use: node.Core owns it.
package lease

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"go.uber.org/zap"

	"github.com/cairnkv/cairn/clock"
)

const (
	// MaxLeaseTTL is the largest TTL Grant accepts, in seconds (etcd's).
	MaxLeaseTTL = 9000000000
	// DefaultMinTTL is the MinTTL used when Config.MinTTL is 0: etcd's
	// minimum for its default 100 ms heartbeat and 10-tick election.
	DefaultMinTTL = 2
	// DefaultCheckpointInterval is etcd's remaining-TTL checkpoint period.
	DefaultCheckpointInterval = 5 * time.Minute
	// ExpiredRetryInterval is how long a lease Expired returned is held
	// back before Expired returns it again, in case its revoke proposal
	// was lost (etcd's expiredLeaseRetryInterval).
	ExpiredRetryInterval = 3 * time.Second
	// DefaultRevokeRate is how many expired leases the leader revokes per
	// second at most (etcd's --experimental-lease-revoke-rate default).
	// A burst of expiries (e.g. 100k leases granted together) is then
	// revoked over a hundred seconds, one raft entry per lease, while
	// client writes keep the rest of raft's throughput: a revoke may
	// delete many keys and costs a full write, so an unbounded burst
	// would stall the cluster. Followers never apply more than the
	// leader proposes, so the limit holds on every member.
	DefaultRevokeRate = 1000
	// MaxCheckpointBatch bounds the checkpoints the node should put in
	// one proposal (etcd's maxLeaseCheckpointBatchSize).
	MaxCheckpointBatch = 1000
)

// RevokesPerTick is the max to pass to Expired on each tick of length
// tick so that at most rate leases are revoked per second; never less
// than 1. For example rate 1000 and 100 ms ticks give 100.
func RevokesPerTick(rate int, tick time.Duration) int {
	n := int(int64(rate) * int64(tick) / int64(time.Second))
	return max(n, 1)
}

// MinTTLFor is etcd's minimum lease TTL for an election timeout: 1.5
// election timeouts rounded up to whole seconds, so that a lease outlives
// the leader election that may follow its grant.
func MinTTLFor(electionTimeout time.Duration) int64 {
	d := electionTimeout * 3 / 2
	s := int64(d / time.Second)
	if d%time.Second != 0 {
		s++
	}
	return max(s, 1)
}

// Config configures a Lessor. Its zero value is usable.
type Config struct {
	// Clock is the only time source; nil means clock.Real{}.
	Clock clock.Clock
	// MinTTL is the smallest TTL a lease gets, in seconds: Grant clamps
	// smaller TTLs up to it. Every member must use the same value (it
	// decides replicated state). 0 means DefaultMinTTL; see MinTTLFor.
	MinTTL int64
	// CheckpointInterval is the remaining-TTL checkpoint period: a lease
	// whose TTL is longer than it has its remaining TTL checkpointed this
	// often. 0 means DefaultCheckpointInterval.
	CheckpointInterval time.Duration
	// Logger; nil means no logging.
	Logger *zap.Logger
}

func (c Config) withDefaults() (Config, error) {
	if c.MinTTL < 0 || c.MinTTL > MaxLeaseTTL {
		return c, fmt.Errorf("lease: MinTTL %d out of range [0, %d]", c.MinTTL, int64(MaxLeaseTTL))
	}
	if c.CheckpointInterval < 0 {
		return c, fmt.Errorf("lease: negative CheckpointInterval %v", c.CheckpointInterval)
	}
	if c.Clock == nil {
		c.Clock = clock.Real{}
	}
	if c.MinTTL == 0 {
		c.MinTTL = DefaultMinTTL
	}
	if c.CheckpointInterval == 0 {
		c.CheckpointInterval = DefaultCheckpointInterval
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c, nil
}

// Lease is a snapshot of one lease's replicated state.
type Lease struct {
	ID int64
	// TTL is the granted TTL in seconds, after clamping to MinTTL.
	TTL int64
	// RemainingTTL is the last checkpointed remaining TTL in seconds; 0
	// means none (a new primary then restarts from TTL).
	RemainingTTL int64
}

// lease is the lessor's record of one lease.
type lease struct {
	id        int64
	ttl       int64
	remaining int64 // checkpointed remaining TTL; 0: none
	keys      map[string]struct{}

	// Primary only.
	expiry     time.Time // the lease expires when the clock reaches it
	exp        slot      // place in the expiry heap; at is expiry or a revoke retry time
	cp         slot      // place in the checkpoint heap
	clearCheck bool      // renewed since its checkpoint: the next checkpoint clears it
}

func (le *lease) snapshot() *Lease {
	return &Lease{ID: le.id, TTL: le.ttl, RemainingTTL: le.remaining}
}

// Lessor is the lease state machine of one member. See the package
// documentation for the replicated and leader-local halves. It is not
// safe for concurrent use.
type Lessor struct {
	cfg    Config
	b      Backend
	leases map[int64]*lease
	owner  map[string]int64 // attached key -> its lease

	primary bool
	expiry  timeHeap // primary only: every lease, by exp.at
	checks  timeHeap // primary only: leases with TTL > CheckpointInterval, by cp.at
}

// New returns a follower (non-primary) Lessor holding the leases persisted
// in b: their IDs, granted TTLs and checkpointed remaining TTLs. Attached
// keys are not persisted by the lessor: call RebuildAttachments with the
// store's keys after New. A malformed record in b is an error.
func New(cfg Config, b Backend) (*Lessor, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if b == nil {
		return nil, errors.New("lease: nil Backend")
	}
	l := &Lessor{
		cfg:    c,
		b:      b,
		leases: make(map[int64]*lease),
		owner:  make(map[string]int64),
	}
	l.expiry.slot = func(le *lease) *slot { return &le.exp }
	l.checks.slot = func(le *lease) *slot { return &le.cp }
	err = b.AuxForEach([]byte(BucketName), func(k, v []byte) error {
		id, ttl, remaining, err := decodeRecord(k, v)
		if err != nil {
			return err
		}
		l.leases[id] = newLease(id, ttl, remaining)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("lease: loading leases: %w", err)
	}
	return l, nil
}

func newLease(id, ttl, remaining int64) *lease {
	return &lease{id: id, ttl: ttl, remaining: remaining, exp: slot{idx: -1}, cp: slot{idx: -1}}
}

// Grant creates lease id with ttl seconds, clamped up to MinTTL, and
// persists it. It fails with ErrLeaseNotFound for id 0 (etcd's NoLease;
// the node picks an ID before proposing), ErrLeaseTTLTooLarge above
// MaxLeaseTTL and ErrLeaseExists for a granted ID; failures change
// nothing. On the primary the lease expires ttl seconds from now.
func (l *Lessor) Grant(id, ttl int64) (*Lease, error) {
	if id == 0 {
		return nil, ErrLeaseNotFound
	}
	if ttl > MaxLeaseTTL {
		return nil, ErrLeaseTTLTooLarge
	}
	if _, ok := l.leases[id]; ok {
		return nil, ErrLeaseExists
	}
	ttl = max(ttl, l.cfg.MinTTL)
	le := newLease(id, ttl, 0)
	l.leases[id] = le
	l.persist(le)
	if l.primary {
		now := l.cfg.Clock.Now()
		l.startCountdown(le, now, seconds(ttl))
		l.scheduleCheckpoint(le, now)
	}
	return le.snapshot(), nil
}

// Revoke deletes lease id and returns its attached keys in ascending
// byte order, for the node to delete in one txn (one revision) together
// with the revoke; the keys are detached. ErrLeaseNotFound if id is not
// granted.
func (l *Lessor) Revoke(id int64) (keys [][]byte, err error) {
	le, ok := l.leases[id]
	if !ok {
		return nil, ErrLeaseNotFound
	}
	keys = sortedKeys(le)
	for k := range le.keys {
		delete(l.owner, k)
	}
	delete(l.leases, id)
	l.b.AuxDelete([]byte(BucketName), leaseKey(id))
	l.expiry.remove(le)
	l.checks.remove(le)
	return keys, nil
}

// Attach attaches key to lease id, detaching it from any other lease it
// was attached to (a put that changes a key's lease). Attaching a key
// twice is harmless. ErrLeaseNotFound (and no change) if id is not granted.
func (l *Lessor) Attach(id int64, key []byte) error {
	le, ok := l.leases[id]
	if !ok {
		return ErrLeaseNotFound
	}
	k := string(key)
	if old, ok := l.owner[k]; ok && old != id {
		if ol := l.leases[old]; ol != nil {
			delete(ol.keys, k)
		}
	}
	if le.keys == nil {
		le.keys = make(map[string]struct{})
	}
	le.keys[k] = struct{}{}
	l.owner[k] = id
	return nil
}

// Detach detaches key from lease id (a delete of the key, or a put that
// drops its lease). It does nothing if the key is not attached to id.
func (l *Lessor) Detach(id int64, key []byte) {
	k := string(key)
	if owner, ok := l.owner[k]; !ok || owner != id {
		return
	}
	delete(l.owner, k)
	if le := l.leases[id]; le != nil {
		delete(le.keys, k)
	}
}

// Checkpoint records remainingTTL (seconds; <= 0 clears it) as lease id's
// remaining TTL and persists it; a lessor promoted later restarts the
// lease's countdown from it. It does not move the current primary's
// expiry. ErrLeaseNotFound if id is not granted (a checkpoint that raced
// a revoke): the node should ignore that error.
func (l *Lessor) Checkpoint(id, remainingTTL int64) error {
	le, ok := l.leases[id]
	if !ok {
		return ErrLeaseNotFound
	}
	le.remaining = max(remainingTTL, 0)
	if le.remaining == 0 {
		le.clearCheck = false
	}
	l.persist(le)
	return nil
}

// Lookup returns a snapshot of lease id.
func (l *Lessor) Lookup(id int64) (*Lease, bool) {
	le, ok := l.leases[id]
	if !ok {
		return nil, false
	}
	return le.snapshot(), true
}

// RebuildAttachments attaches the keys the store holds to their leases,
// after New or after the store was replaced by a snapshot: forEach must
// call fn once for each live key with its lease (0 for none, skipped).
// It first drops every attachment. A key whose lease is unknown is
// logged and skipped.
func (l *Lessor) RebuildAttachments(forEach func(fn func(key []byte, lease int64))) {
	clear(l.owner)
	for _, le := range l.leases {
		le.keys = nil
	}
	forEach(func(key []byte, id int64) {
		if id == 0 {
			return
		}
		if err := l.Attach(id, key); err != nil {
			l.cfg.Logger.Warn("key attached to an unknown lease", zap.ByteString("key", key), zap.Int64("lease-id", id))
		}
	})
}

// Leases returns snapshots of every lease, sorted by ID.
func (l *Lessor) Leases() []*Lease {
	out := make([]*Lease, 0, len(l.leases))
	for _, le := range l.leases {
		out = append(out, le.snapshot())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// sortedKeys returns copies of le's keys in ascending byte order.
func sortedKeys(le *lease) [][]byte {
	ks := make([]string, 0, len(le.keys))
	for k := range le.keys {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	out := make([][]byte, len(ks))
	for i, k := range ks {
		out[i] = []byte(k)
	}
	return out
}

func seconds(n int64) time.Duration { return time.Duration(n) * time.Second }

// DetachKey detaches key from whichever lease holds it, if any. The node
// calls it for every key a write deletes or puts without a lease.
func (l *Lessor) DetachKey(key []byte) {
	if id, ok := l.owner[string(key)]; ok {
		l.Detach(id, key)
	}
}
