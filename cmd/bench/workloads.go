package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// keyPrefix begins the keys of put, range, txn-put and txn-mixed, so a
// range [keyPrefix, keyPrefixEnd) holds all of them.
const (
	keyPrefix    = "b"
	keyPrefixEnd = "c"
)

// keyName returns key number i: prefix then i in decimal, zero-padded so
// the key is size bytes long (longer when i needs more digits).
func keyName(prefix string, size int, i int64) string {
	return fmt.Sprintf("%s%0*d", prefix, max(size-len(prefix), 1), i)
}

// randomValue returns size random bytes: values the server cannot
// compress or share.
func randomValue(size int) string {
	b := make([]byte, size)
	_, _ = rand.Read(b)
	return string(b)
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// keyOptions are etcd's key and value flags.
type keyOptions struct {
	keySize, valSize int
	keySpace         int
	sequential       bool
}

func keyFlags(fs *flag.FlagSet, k *keyOptions, keySize, valSize int) {
	fs.IntVar(&k.keySize, "key-size", keySize, "key size in bytes")
	fs.IntVar(&k.valSize, "val-size", valSize, "value size in bytes")
	fs.IntVar(&k.keySpace, "key-space-size", 1, "number of distinct keys")
	fs.BoolVar(&k.sequential, "sequential-keys", false, "keys in order (n mod key-space-size) rather than at random")
}

func (k *keyOptions) check() error {
	if k.keySize < 2 || k.valSize < 0 || k.keySpace < 1 {
		return fmt.Errorf("-key-size must be at least 2, -val-size not negative, -key-space-size at least 1")
	}
	return nil
}

// index returns the number of the key of operation n.
func (k keyOptions) index(n int64) int64 {
	if !k.sequential {
		return mrand.Int64N(int64(k.keySpace))
	}
	return n % int64(k.keySpace)
}

// name returns key number i.
func (k keyOptions) name(i int64) string {
	return keyName(keyPrefix, k.keySize, i%int64(k.keySpace))
}

// key returns the key of operation n.
func (k keyOptions) key(n int64) string { return k.name(k.index(n)) }

// parse parses args into fs, and checks each check. A check that is a
// method value must have a pointer receiver, so it sees the parsed flags.
func parse(fs *flag.FlagSet, args []string, checks ...func() error) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, c := range checks {
		if err := c(); err != nil {
			return fmt.Errorf("%s: %w", fs.Name(), err)
		}
	}
	return nil
}

// header begins a report: the workload, the clients and connections.
func header(name string, g global) report {
	return report{{"workload", name}, {"clients", g.clients}, {"conns", g.conns}}
}

// prefill writes keys 0..n-1 named by name, each with value val, in
// transactions of up to 100 puts from up to g.clients clients. It is not
// measured.
func prefill(s *session, n int, name func(i int64) string, val string) error {
	if n <= 0 {
		return nil
	}
	const batch = 100
	txns := (n + batch - 1) / batch
	res := runLoad(s.ctx, "prefill", min(s.g.clients, 16), loadOptions{total: txns}, s.g.progress, func(ctx context.Context, c int, t int64) error {
		var ops []clientv3.Op
		for i := t * batch; i < min((t+1)*batch, int64(n)); i++ {
			ops = append(ops, clientv3.OpPut(name(i), val))
		}
		_, err := s.client(c).Txn(ctx).Then(ops...).Commit()
		return err
	})
	if res.errs > 0 {
		return fmt.Errorf("prefill: %d of %d transactions failed: %s", res.errs, txns, res.firstErr)
	}
	return nil
}

// runPut is etcd's `benchmark put`.
func runPut(g global, args []string, stderr io.Writer) (report, error) {
	fs := newFlagSet("put", stderr)
	var o loadOptions
	var k keyOptions
	loadFlags(fs, &o, 10000, "puts")
	keyFlags(fs, &k, 8, 8)
	if err := parse(fs, args, o.check, k.check); err != nil {
		return nil, err
	}
	s, err := open(g)
	if err != nil {
		return nil, err
	}
	s.startMem()
	val := randomValue(k.valSize)
	res := runLoad(s.ctx, "put", g.clients, o, g.progress, func(ctx context.Context, c int, n int64) error {
		_, err := s.client(c).Put(ctx, k.key(n), val)
		return err
	})
	head := append(header("put", g),
		field{"key_size", k.keySize}, field{"val_size", k.valSize}, field{"key_space_size", k.keySpace}, field{"sequential_keys", k.sequential})
	return s.finish(append(head, res.fields()...)), nil
}

// consistency returns the read options of etcd's -consistency flag.
func consistency(c string) ([]clientv3.OpOption, error) {
	switch strings.ToLower(c) {
	case "l", "linearizable":
		return nil, nil
	case "s", "serializable":
		return []clientv3.OpOption{clientv3.WithSerializable()}, nil
	}
	return nil, fmt.Errorf("-consistency %q: want l (linearizable) or s (serializable)", c)
}

// runRange is etcd's `benchmark range`, with the keys it reads written
// first (-prefill).
func runRange(g global, args []string, stderr io.Writer) (report, error) {
	fs := newFlagSet("range", stderr)
	var o loadOptions
	loadFlags(fs, &o, 10000, "range requests")
	cons := fs.String("consistency", "l", "linearizable (l) or serializable (s)")
	keysOnly := fs.Bool("keys-only", false, "return only the keys")
	countOnly := fs.Bool("count-only", false, "return only the count of keys")
	limit := fs.Int64("limit", 0, "at most this many keys per request (0: no limit)")
	key := fs.String("key", "", "the key, or the start of the range (default: key 0 of -prefill)")
	end := fs.String("end", "", "the end of the range (default: the single key)")
	prefix := fs.Bool("prefix", false, "range over every key that begins with -key")
	fill := fs.Int("prefill", 1, "first write this many keys ("+keyPrefix+"0000000, ...), not measured")
	keySize := fs.Int("key-size", 8, "key size of the -prefill keys")
	valSize := fs.Int("val-size", 8, "value size of the -prefill keys")
	if err := parse(fs, args, o.check); err != nil {
		return nil, err
	}
	// etcd's positional form: range key [end].
	if fs.NArg() > 0 {
		*key = fs.Arg(0)
	}
	if fs.NArg() > 1 {
		*end = fs.Arg(1)
	}
	if *key == "" {
		*key = keyName(keyPrefix, *keySize, 0)
	}
	opts, err := consistency(*cons)
	if err != nil {
		return nil, err
	}
	switch {
	case *prefix:
		opts = append(opts, clientv3.WithPrefix())
	case *end != "":
		opts = append(opts, clientv3.WithRange(*end))
	}
	if *keysOnly {
		opts = append(opts, clientv3.WithKeysOnly())
	}
	if *countOnly {
		opts = append(opts, clientv3.WithCountOnly())
	}
	if *limit > 0 {
		opts = append(opts, clientv3.WithLimit(*limit))
	}
	s, err := open(g)
	if err != nil {
		return nil, err
	}
	if err := prefill(s, *fill, func(i int64) string { return keyName(keyPrefix, *keySize, i) }, randomValue(*valSize)); err != nil {
		s.close()
		return nil, err
	}
	s.startMem()
	var count, kvs atomic.Int64
	res := runLoad(s.ctx, "range", g.clients, o, g.progress, func(ctx context.Context, c int, n int64) error {
		r, err := s.client(c).Get(ctx, *key, opts...)
		if err == nil && n == 0 {
			count.Store(r.Count)
			kvs.Store(int64(len(r.Kvs)))
		}
		return err
	})
	head := append(header("range", g),
		field{"consistency", *cons}, field{"keys_only", *keysOnly}, field{"count_only", *countOnly}, field{"limit", *limit},
		field{"prefill", *fill}, field{"range_count", count.Load()}, field{"range_kvs", kvs.Load()})
	return s.finish(append(head, res.fields()...)), nil
}

// runTxnPut is etcd's `benchmark txn-put`: transactions of -txn-ops puts.
func runTxnPut(g global, args []string, stderr io.Writer) (report, error) {
	fs := newFlagSet("txn-put", stderr)
	var o loadOptions
	var k keyOptions
	loadFlags(fs, &o, 10000, "transactions")
	keyFlags(fs, &k, 8, 8)
	txnOps := fs.Int("txn-ops", 1, "puts per transaction")
	if err := parse(fs, args, o.check, k.check); err != nil {
		return nil, err
	}
	if *txnOps < 1 || *txnOps > k.keySpace {
		return nil, fmt.Errorf("txn-put: -txn-ops must be at least 1 and at most -key-space-size (a transaction puts distinct keys)")
	}
	s, err := open(g)
	if err != nil {
		return nil, err
	}
	s.startMem()
	val := randomValue(k.valSize)
	res := runLoad(s.ctx, "txn-put", g.clients, o, g.progress, func(ctx context.Context, c int, n int64) error {
		ops := make([]clientv3.Op, *txnOps)
		first := k.index(n * int64(*txnOps))
		for i := range ops {
			ops[i] = clientv3.OpPut(k.name(first+int64(i)), val)
		}
		_, err := s.client(c).Txn(ctx).Then(ops...).Commit()
		return err
	})
	head := append(header("txn-put", g),
		field{"key_size", k.keySize}, field{"val_size", k.valSize}, field{"key_space_size", k.keySpace}, field{"txn_ops", *txnOps})
	return s.finish(append(head, res.fields()...)), nil
}

// isWrite says whether operation n of a mix of ratio reads to each write
// is a write: exactly one in every ratio+1 (on average, for a fractional
// ratio), spread evenly.
func isWrite(n int64, ratio float64) bool {
	p := ratio + 1
	return int64(float64(n+1)/p) > int64(float64(n)/p)
}

// runTxnMixed is etcd's `benchmark txn-mixed`: reads (a range with a
// limit) and writes (a transaction with one put) in -rw-ratio.
func runTxnMixed(g global, args []string, stderr io.Writer) (report, error) {
	fs := newFlagSet("txn-mixed", stderr)
	var o loadOptions
	var k keyOptions
	loadFlags(fs, &o, 10000, "operations")
	keyFlags(fs, &k, 8, 8)
	cons := fs.String("consistency", "l", "reads linearizable (l) or serializable (s)")
	rw := fs.Float64("rw-ratio", 1, "reads per write")
	limit := fs.Int64("limit", 1000, "at most this many keys per read")
	key := fs.String("key", keyPrefix, "start of the range read")
	end := fs.String("end-key", keyPrefixEnd, "end of the range read")
	fill := fs.Int("prefill", 0, "first write this many keys of the key space, not measured")
	if err := parse(fs, args, o.check, k.check); err != nil {
		return nil, err
	}
	if *rw < 0 {
		return nil, fmt.Errorf("txn-mixed: -rw-ratio must not be negative")
	}
	opts, err := consistency(*cons)
	if err != nil {
		return nil, err
	}
	opts = append(opts, clientv3.WithRange(*end), clientv3.WithLimit(*limit))
	s, err := open(g)
	if err != nil {
		return nil, err
	}
	val := randomValue(k.valSize)
	if err := prefill(s, min(*fill, k.keySpace), func(i int64) string { return keyName(keyPrefix, k.keySize, i) }, val); err != nil {
		s.close()
		return nil, err
	}
	s.startMem()
	var reads, writes atomic.Int64
	res := runLoad(s.ctx, "txn-mixed", g.clients, o, g.progress, func(ctx context.Context, c int, n int64) error {
		if isWrite(n, *rw) {
			writes.Add(1)
			_, err := s.client(c).Txn(ctx).Then(clientv3.OpPut(k.key(n), val)).Commit()
			return err
		}
		reads.Add(1)
		_, err := s.client(c).Get(ctx, *key, opts...)
		return err
	})
	head := append(header("txn-mixed", g),
		field{"key_size", k.keySize}, field{"val_size", k.valSize}, field{"key_space_size", k.keySpace},
		field{"rw_ratio", *rw}, field{"consistency", *cons}, field{"limit", *limit}, field{"prefill", *fill},
		field{"reads", reads.Load()}, field{"writes", writes.Load()})
	return s.finish(append(head, res.fields()...)), nil
}

// runLeaseKeepAlive is etcd's `benchmark lease-keepalive`: each client
// grants a lease and renews it over its own keep-alive stream.
func runLeaseKeepAlive(g global, args []string, stderr io.Writer) (report, error) {
	fs := newFlagSet("lease-keepalive", stderr)
	var o loadOptions
	loadFlags(fs, &o, 10000, "keep-alive requests")
	if err := parse(fs, args, o.check); err != nil {
		return nil, err
	}
	s, err := open(g)
	if err != nil {
		return nil, err
	}
	streams := make([]pb.Lease_LeaseKeepAliveClient, g.clients)
	ids := make([]int64, g.clients)
	for c := range streams {
		l, err := s.client(c).Grant(s.ctx, 60)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("lease-keepalive: grant: %w", err)
		}
		ids[c] = int64(l.ID)
		st, err := pb.NewLeaseClient(s.client(c).ActiveConnection()).LeaseKeepAlive(s.ctx)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("lease-keepalive: stream: %w", err)
		}
		streams[c] = st
	}
	s.startMem()
	res := runLoad(s.ctx, "lease-keepalive", g.clients, o, g.progress, func(ctx context.Context, c int, n int64) error {
		if err := streams[c].Send(&pb.LeaseKeepAliveRequest{ID: ids[c]}); err != nil {
			return err
		}
		r, err := streams[c].Recv()
		if err != nil {
			return err
		}
		if r.TTL <= 0 {
			return fmt.Errorf("lease %x: keep-alive answered TTL %d", ids[c], r.TTL)
		}
		return nil
	})
	for c, st := range streams {
		_ = st.CloseSend()
		_, _ = s.client(c).Revoke(s.ctx, clientv3.LeaseID(ids[c]))
	}
	return s.finish(append(header("lease-keepalive", g), res.fields()...)), nil
}

// runList is the apiserver's paged list: the keys under a prefix in pages
// of -limit, the first page read at the current revision (linearizable
// unless -consistency s), the next ones at the first page's revision from
// the key after the last one returned, until the server says no more.
func runList(g global, args []string, stderr io.Writer) (report, error) {
	fs := newFlagSet("list", stderr)
	var o loadOptions
	loadFlags(fs, &o, 100, "lists")
	keys := fs.Int("keys", 10000, "keys under the prefix, written first (not measured)")
	prefix := fs.String("prefix", "/registry/pods/bench/", "the prefix listed")
	valSize := fs.Int("val-size", 1024, "value size in bytes")
	limit := fs.Int64("limit", 500, "keys per page (0: one page)")
	cons := fs.String("consistency", "l", "first page linearizable (l) or serializable (s)")
	if err := parse(fs, args, o.check); err != nil {
		return nil, err
	}
	if *keys < 0 || *limit < 0 || *prefix == "" {
		return nil, fmt.Errorf("list: -keys and -limit must not be negative, -prefix not empty")
	}
	first, err := consistency(*cons)
	if err != nil {
		return nil, err
	}
	s, err := open(g)
	if err != nil {
		return nil, err
	}
	name := func(i int64) string { return fmt.Sprintf("%sobj-%08d", *prefix, i) }
	if err := prefill(s, *keys, name, randomValue(*valSize)); err != nil {
		s.close()
		return nil, err
	}
	s.startMem()
	end := clientv3.GetPrefixRangeEnd(*prefix)
	var pages atomic.Int64
	res := runLoad(s.ctx, "list", g.clients, o, g.progress, func(ctx context.Context, c int, n int64) error {
		kv := s.client(c)
		from, rev, got := *prefix, int64(0), 0
		for {
			opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(*limit)}
			if rev == 0 {
				opts = append(opts, first...)
			} else {
				opts = append(opts, clientv3.WithRev(rev))
			}
			r, err := kv.Get(ctx, from, opts...)
			if err != nil {
				return err
			}
			pages.Add(1)
			if rev == 0 {
				rev = r.Header.Revision
			}
			got += len(r.Kvs)
			if !r.More || len(r.Kvs) == 0 {
				break
			}
			from = string(r.Kvs[len(r.Kvs)-1].Key) + "\x00"
		}
		if got < *keys {
			return fmt.Errorf("list: %d keys listed, want at least %d", got, *keys)
		}
		return nil
	})
	perList := 0.0
	if res.ops+res.errs > 0 {
		perList = round(float64(pages.Load())/float64(res.ops+res.errs), 2)
	}
	head := append(header("list", g),
		field{"keys", *keys}, field{"val_size", *valSize}, field{"limit", *limit}, field{"consistency", *cons}, field{"pages_per_list", perList})
	rep := append(head, res.fields()...)
	rep = append(rep, field{"keys_per_second", round(float64(res.ops)*float64(*keys)/res.elapsed.Seconds(), 1)})
	return s.finish(rep), nil
}

// counterValue is the value of an update's key: the number of updates
// made to it, then padding to size bytes.
func counterValue(n int64, size int) string {
	v := strconv.FormatInt(n, 10) + "|"
	if len(v) < size {
		v += strings.Repeat("x", size-len(v))
	}
	return v
}

// parseCounter reads a counterValue.
func parseCounter(v []byte) (int64, error) {
	s, _, ok := strings.Cut(string(v), "|")
	if !ok {
		return 0, fmt.Errorf("value %.20q is not a counter", v)
	}
	return strconv.ParseInt(s, 10, 64)
}

// runUpdate is the apiserver's optimistic-concurrency update (its
// GuaranteedUpdate): read a key, then write the new value in a
// transaction that succeeds only if the key's mod revision is still the
// one read, and otherwise takes the current value from the transaction's
// else branch and tries again. Each key's value counts its updates, so
// the sum over the keys is the number of updates.
func runUpdate(g global, args []string, stderr io.Writer) (report, error) {
	fs := newFlagSet("update", stderr)
	var o loadOptions
	loadFlags(fs, &o, 10000, "updates")
	keys := fs.Int("keys", 100, "keys updated, chosen at random (fewer keys: more conflicts)")
	prefix := fs.String("prefix", "/registry/configmaps/bench/", "prefix of the keys")
	valSize := fs.Int("val-size", 256, "value size in bytes")
	if err := parse(fs, args, o.check); err != nil {
		return nil, err
	}
	if *keys < 1 {
		return nil, fmt.Errorf("update: -keys must be at least 1")
	}
	s, err := open(g)
	if err != nil {
		return nil, err
	}
	name := func(i int64) string { return fmt.Sprintf("%scm-%06d", *prefix, i) }
	if err := prefill(s, *keys, name, counterValue(0, *valSize)); err != nil {
		s.close()
		return nil, err
	}
	s.startMem()
	var conflicts atomic.Int64
	res := runLoad(s.ctx, "update", g.clients, o, g.progress, func(ctx context.Context, c int, n int64) error {
		kv := s.client(c)
		key := name(mrand.Int64N(int64(*keys)))
		r, err := kv.Get(ctx, key)
		if err != nil {
			return err
		}
		if len(r.Kvs) == 0 {
			return fmt.Errorf("update: %s is missing", key)
		}
		cur := r.Kvs[0]
		for {
			cnt, err := parseCounter(cur.Value)
			if err != nil {
				return err
			}
			t, err := kv.Txn(ctx).
				If(clientv3.Compare(clientv3.ModRevision(key), "=", cur.ModRevision)).
				Then(clientv3.OpPut(key, counterValue(cnt+1, *valSize))).
				Else(clientv3.OpGet(key)).Commit()
			if err != nil {
				return err
			}
			if t.Succeeded {
				return nil
			}
			conflicts.Add(1)
			rr := t.Responses[0].GetResponseRange()
			if rr == nil || len(rr.Kvs) == 0 {
				return fmt.Errorf("update: %s vanished", key)
			}
			cur = rr.Kvs[0]
		}
	})
	head := append(header("update", g), field{"keys", *keys}, field{"val_size", *valSize})
	rep := append(head, res.fields()...)
	rep = append(rep, field{"conflicts", conflicts.Load()})
	return s.finish(rep), nil
}
