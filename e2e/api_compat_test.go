package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// These tests pin API corners to what etcd 3.7.3 does. Each passes against
// etcd itself (CAIRN_E2E_CAIRN=/path/to/etcd go test ./e2e -run TestAPICompat);
// where Cairn deliberately differs, the test says so and checks both.

// putKVs writes n keys prefix/0000... with values of valueLen bytes, in
// txns of up to 100 puts, and returns the revision after the last.
func putKVs(t *testing.T, cli *clientv3.Client, prefix string, n, valueLen int) int64 {
	t.Helper()
	var rev int64
	for i := 0; i < n; {
		var ops []clientv3.Op
		for ; i < n && len(ops) < 100 && (len(ops)+1)*valueLen < 1<<20; i++ {
			ops = append(ops, clientv3.OpPut(fmt.Sprintf("%s/%04d", prefix, i), strings.Repeat("v", valueLen)))
		}
		resp, err := cli.Txn(ctx(t)).Then(ops...).Commit()
		if err != nil {
			t.Fatalf("put %s: %v", prefix, err)
		}
		rev = resp.Header.Revision
	}
	return rev
}

// streamOf runs a RangeStream through clientv3's GetStream.
func streamOf(t *testing.T, cli *clientv3.Client, key string, opts ...clientv3.OpOption) ([]*pb.RangeResponse, error) {
	t.Helper()
	ch, err := cli.GetStream(ctx(t), key, opts...)
	if err != nil {
		return nil, err
	}
	var out []*pb.RangeResponse
	for r := range ch {
		if r.Err() != nil {
			return out, r.Err()
		}
		out = append(out, r.RangeResponse)
	}
	return out, nil
}

// rawStreamOf runs a RangeStream of exactly r, for requests clientv3 rewrites.
func rawStreamOf(t *testing.T, cli *clientv3.Client, r *pb.RangeRequest) ([]*pb.RangeResponse, error) {
	t.Helper()
	st, err := pb.NewKVClient(cli.ActiveConnection()).RangeStream(ctx(t), r)
	if err != nil {
		return nil, err
	}
	var out []*pb.RangeResponse
	for {
		m, err := st.Recv()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, m.RangeResponse)
	}
}

// describeChunks renders each message of a stream as "n=<kvs> <keys>",
// the keys in full when few ("a/0000=v", the value shown when short, "-"
// when empty) else "first..last", followed by " rev=R more=M count=C" on a
// message that has a header. It checks that a header carries the
// cluster, member and term of want, and that a message without one has
// neither more nor count.
func describeChunks(t *testing.T, chunks []*pb.RangeResponse, want *pb.ResponseHeader) []string {
	t.Helper()
	var out []string
	for i, c := range chunks {
		var keys []string
		for _, kv := range c.Kvs {
			v := string(kv.Value)
			switch {
			case v == "":
				v = "-"
			case len(v) > 8:
				v = fmt.Sprintf("<%d>", len(v))
			}
			keys = append(keys, fmt.Sprintf("%s=%s", kv.Key, v))
		}
		s := fmt.Sprintf("n=%d", len(c.Kvs))
		switch {
		case len(keys) > 3:
			s += fmt.Sprintf(" %s..%s", keys[0], keys[len(keys)-1])
		case len(keys) > 0:
			s += " " + strings.Join(keys, " ")
		}
		if h := c.Header; h != nil {
			s += fmt.Sprintf(" rev=%d more=%v count=%d", h.Revision, c.More, c.Count)
			if h.ClusterId != want.ClusterId || h.MemberId != want.MemberId || h.RaftTerm != want.RaftTerm {
				t.Errorf("chunk %d header %v, want cluster, member and term of %v", i, h, want)
			}
		} else if c.More || c.Count != 0 {
			t.Errorf("chunk %d without header has more=%v count=%d", i, c.More, c.Count)
		}
		out = append(out, s)
	}
	return out
}

func checkChunks(t *testing.T, what string, chunks []*pb.RangeResponse, err error, hdr *pb.ResponseHeader, want ...string) {
	t.Helper()
	if err != nil {
		t.Errorf("%s: %v", what, err)
		return
	}
	got := describeChunks(t, chunks, hdr)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s: chunks\n  %s\nwant\n  %s", what, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// checkStreamErr asserts a stream failed with exactly want's gRPC code
// and message (clientv3 turns etcd's own into rpctypes.EtcdError).
func checkStreamErr(t *testing.T, what string, chunks []*pb.RangeResponse, err, want error) {
	t.Helper()
	code, msg := status.Code(err), status.Convert(err).Message()
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		code, msg = ee.Code(), ee.Error()
	}
	ws := status.Convert(want)
	if err == nil || code != ws.Code() || msg != ws.Message() || len(chunks) != 0 {
		t.Errorf("%s: %d chunks, err %v; want no chunk and code %v %q", what, len(chunks), err, ws.Code(), ws.Message())
	}
}

// checkMergesToGet asserts that merging a stream's messages gives what Get
// with the same options returns, as clientv3.GetStreamToGetResponse
// promises.
func checkMergesToGet(t *testing.T, what string, cli *clientv3.Client, key string, opts ...clientv3.OpOption) {
	t.Helper()
	ch, err := cli.GetStream(ctx(t), key, opts...)
	if err != nil {
		t.Fatal(err)
	}
	merged, err := clientv3.GetStreamToGetResponse(ch)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	get, err := cli.Get(ctx(t), key, opts...)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if g, m := fmt.Sprint(get.Header, get.More, get.Count, kvsString(get.Kvs)), fmt.Sprint(merged.Header, merged.More, merged.Count, kvsString(merged.Kvs)); g != m {
		t.Errorf("%s: merged stream\n  %.300s\nGet\n  %.300s", what, m, g)
	}
}

// TestAPICompatRangeStream pins KV.RangeStream (etcd 3.7) to etcd's
// messages: chunks of 10 keys, then doubling (or halving) with the
// encoded size against --max-request-bytes; kvs alone on every chunk but
// the last, which carries the header (revision: the store's when the
// stream began, also for revision reads), more (true when the limit cut
// the range short) and count (every key of the range). Kubernetes lists
// through RangeStream and takes its continue token and remainingItemCount
// from these.
func TestAPICompatRangeStream(t *testing.T) {
	t.Parallel()
	c := NewCluster(t, 1)
	cli := c.Client(t)
	st, err := cli.Status(ctx(t), c.Members[0].ClientURL)
	if err != nil {
		t.Fatal(err)
	}
	hdr := st.Header

	// Three small keys, written in one txn: revision 2.
	rev := putKVs(t, cli, "a", 3, 1)
	if rev != 2 {
		t.Fatalf("three keys in one txn at revision %d, want 2", rev)
	}
	a := clientv3.WithPrefix()
	t.Run("limit", func(t *testing.T) {
		chunks, err := streamOf(t, cli, "a/", a, clientv3.WithLimit(1))
		checkChunks(t, "limit 1 of 3", chunks, err, hdr, "n=1 a/0000=v rev=2 more=true count=3")
		chunks, err = streamOf(t, cli, "a/", a, clientv3.WithLimit(2), clientv3.WithSerializable())
		checkChunks(t, "limit 2 of 3, serializable", chunks, err, hdr, "n=2 a/0000=v a/0001=v rev=2 more=true count=3")
		for _, l := range []int64{0, 3, 10, -1} {
			chunks, err = streamOf(t, cli, "a/", a, clientv3.WithLimit(l))
			checkChunks(t, fmt.Sprintf("limit %d of 3", l), chunks, err, hdr, "n=3 a/0000=v a/0001=v a/0002=v rev=2 more=false count=3")
		}
		chunks, err = streamOf(t, cli, "a/0001")
		checkChunks(t, "one key", chunks, err, hdr, "n=1 a/0001=v rev=2 more=false count=1")
		chunks, err = streamOf(t, cli, "nothing/", clientv3.WithPrefix(), clientv3.WithLimit(1))
		checkChunks(t, "empty range", chunks, err, hdr, "n=0 rev=2 more=false count=0")
		checkMergesToGet(t, "limit 1", cli, "a/", a, clientv3.WithLimit(1))
	})
	t.Run("count_only", func(t *testing.T) {
		chunks, err := streamOf(t, cli, "a/", a, clientv3.WithCountOnly(), clientv3.WithLimit(1))
		checkChunks(t, "count only, limit 1", chunks, err, hdr, "n=0 rev=2 more=false count=3")
		checkMergesToGet(t, "count only", cli, "a/", a, clientv3.WithCountOnly())
	})
	t.Run("keys_only", func(t *testing.T) {
		chunks, err := streamOf(t, cli, "a/", a, clientv3.WithKeysOnly(), clientv3.WithLimit(2))
		checkChunks(t, "keys only, limit 2", chunks, err, hdr, "n=2 a/0000=- a/0001=- rev=2 more=true count=3")
	})
	t.Run("sort", func(t *testing.T) {
		unimplemented := status.Error(codes.Unimplemented, "RangeStream does not support custom sort orders")
		for _, s := range []clientv3.OpOption{
			clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend),
			clientv3.WithSort(clientv3.SortByModRevision, clientv3.SortAscend),
			clientv3.WithSort(clientv3.SortByValue, clientv3.SortDescend),
		} {
			chunks, err := streamOf(t, cli, "a/", a, s)
			checkStreamErr(t, "custom sort order", chunks, err, unimplemented)
		}
		// Key ascending is the natural order (clientv3 sends it as no order).
		chunks, err := rawStreamOf(t, cli, &pb.RangeRequest{Key: []byte("a/"), RangeEnd: []byte("a0"), Limit: 2,
			SortOrder: pb.RangeRequest_ASCEND, SortTarget: pb.RangeRequest_KEY})
		checkChunks(t, "key ascending", chunks, err, hdr, "n=2 a/0000=v a/0001=v rev=2 more=true count=3")
		chunks, err = rawStreamOf(t, cli, &pb.RangeRequest{Key: []byte("a/"), RangeEnd: []byte("a0"), SortOrder: 9})
		checkStreamErr(t, "unknown sort order", chunks, err, rpctypes.ErrGRPCInvalidSortOption)

		// A target with no order sorts the chunk ascending by the target.
		// Five keys written in reverse key order: r/0004 first.
		var rrev int64
		for i := 4; i >= 0; i-- {
			resp, err := cli.Put(ctx(t), fmt.Sprintf("r/%04d", i), fmt.Sprint(i))
			if err != nil {
				t.Fatal(err)
			}
			rrev = resp.Header.Revision
		}
		byMod := clientv3.WithSort(clientv3.SortByModRevision, clientv3.SortNone)
		chunks, err = streamOf(t, cli, "r/", clientv3.WithPrefix(), byMod)
		checkChunks(t, "by mod revision", chunks, err, hdr,
			fmt.Sprintf("n=5 r/0004=4..r/0000=0 rev=%d more=false count=5", rrev))
		if err == nil && len(chunks) == 1 && string(chunks[0].Kvs[1].Key) != "r/0003" {
			t.Errorf("by mod revision: %v", chunks[0].Kvs)
		}
		// With a limit, the limit first by target of limit+1 keys.
		chunks, err = streamOf(t, cli, "r/", clientv3.WithPrefix(), byMod, clientv3.WithLimit(2))
		checkChunks(t, "by mod revision, limit 2", chunks, err, hdr,
			fmt.Sprintf("n=2 r/0002=2 r/0001=1 rev=%d more=true count=5", rrev))

		// Across chunks Cairn differs on purpose. etcd 3.7.3 goes on after
		// the last kv of the sorted chunk, so it sends keys twice (25 keys
		// written in reverse order give chunks of 10, 20 and 21 kvs and
		// count 51); Cairn goes on after the chunk's last key.
		for i := 24; i >= 0; i-- {
			resp, err := cli.Put(ctx(t), fmt.Sprintf("s/%04d", i), fmt.Sprint(i))
			if err != nil {
				t.Fatal(err)
			}
			rrev = resp.Header.Revision
		}
		chunks, err = streamOf(t, cli, "s/", clientv3.WithPrefix(), byMod)
		if !isCairn(t, c.Members[0]) {
			seen, sent := map[string]bool{}, 0
			for _, ch := range chunks {
				for _, kv := range ch.Kvs {
					seen[string(kv.Key)] = true
					sent++
				}
			}
			if err != nil || sent == len(seen) {
				t.Errorf("etcd: by mod revision across chunks sent %d kvs of %d keys (%v): no longer repeats keys?", sent, len(seen), err)
			}
			return
		}
		checkChunks(t, "by mod revision across chunks", chunks, err, hdr,
			"n=10 s/0009=9..s/0000=0",
			fmt.Sprintf("n=15 s/0024=24..s/0010=10 rev=%d more=false count=25", rrev))
	})
	t.Run("revision filters", func(t *testing.T) {
		unimplemented := status.Error(codes.Unimplemented, "RangeStream does not support revision filters")
		for _, f := range []clientv3.OpOption{clientv3.WithMinModRev(2), clientv3.WithMaxModRev(9), clientv3.WithMinCreateRev(2), clientv3.WithMaxCreateRev(9)} {
			chunks, err := streamOf(t, cli, "a/", a, f)
			checkStreamErr(t, "revision filter", chunks, err, unimplemented)
		}
	})

	// 1000 keys of 100 bytes: 10, 20, 40, 80, 160, 320, then the 370 left.
	putKVs(t, cli, "m", 1000, 100)
	now := func() int64 {
		resp, err := cli.Get(ctx(t), "a/0000")
		if err != nil {
			t.Fatal(err)
		}
		return resp.Header.Revision
	}
	m := clientv3.WithPrefix()
	t.Run("chunks", func(t *testing.T) {
		r := now()
		chunks, err := streamOf(t, cli, "m/", m)
		checkChunks(t, "1000 keys", chunks, err, hdr,
			"n=10 m/0000=<100>..m/0009=<100>",
			"n=20 m/0010=<100>..m/0029=<100>",
			"n=40 m/0030=<100>..m/0069=<100>",
			"n=80 m/0070=<100>..m/0149=<100>",
			"n=160 m/0150=<100>..m/0309=<100>",
			"n=320 m/0310=<100>..m/0629=<100>",
			fmt.Sprintf("n=370 m/0630=<100>..m/0999=<100> rev=%d more=false count=1000", r))
		checkMergesToGet(t, "1000 keys", cli, "m/", m)

		chunks, err = streamOf(t, cli, "m/", m, clientv3.WithKeysOnly())
		checkChunks(t, "1000 keys, keys only", chunks, err, hdr,
			"n=10 m/0000=-..m/0009=-",
			"n=20 m/0010=-..m/0029=-",
			"n=40 m/0030=-..m/0069=-",
			"n=80 m/0070=-..m/0149=-",
			"n=160 m/0150=-..m/0309=-",
			"n=320 m/0310=-..m/0629=-",
			fmt.Sprintf("n=370 m/0630=-..m/0999=- rev=%d more=false count=1000", r))
		checkMergesToGet(t, "1000 keys, keys only", cli, "m/", m, clientv3.WithKeysOnly())

		chunks, err = streamOf(t, cli, "m/", m, clientv3.WithLimit(25))
		checkChunks(t, "limit 25 of 1000", chunks, err, hdr,
			"n=10 m/0000=<100>..m/0009=<100>",
			fmt.Sprintf("n=15 m/0010=<100>..m/0024=<100> rev=%d more=true count=1000", r))
		checkMergesToGet(t, "limit 25 of 1000", cli, "m/", m, clientv3.WithLimit(25))

		chunks, err = streamOf(t, cli, "m/", m, clientv3.WithLimit(1000))
		checkChunks(t, "limit 1000 of 1000", chunks, err, hdr,
			"n=10 m/0000=<100>..m/0009=<100>",
			"n=20 m/0010=<100>..m/0029=<100>",
			"n=40 m/0030=<100>..m/0069=<100>",
			"n=80 m/0070=<100>..m/0149=<100>",
			"n=160 m/0150=<100>..m/0309=<100>",
			"n=320 m/0310=<100>..m/0629=<100>",
			fmt.Sprintf("n=370 m/0630=<100>..m/0999=<100> rev=%d more=false count=1000", r))

		chunks, err = streamOf(t, cli, "m/", m, clientv3.WithLimit(-1))
		checkChunks(t, "negative limit", chunks, err, hdr,
			fmt.Sprintf("n=1000 m/0000=<100>..m/0999=<100> rev=%d more=false count=1000", r))

		chunks, err = streamOf(t, cli, "m/0500", clientv3.WithRange("m0"), clientv3.WithLimit(35))
		checkChunks(t, "from m/0500, limit 35", chunks, err, hdr,
			"n=10 m/0500=<100>..m/0509=<100>",
			"n=20 m/0510=<100>..m/0529=<100>",
			fmt.Sprintf("n=5 m/0530=<100>..m/0534=<100> rev=%d more=true count=500", r))
		fromKey, err := cli.Get(ctx(t), "m/0990", clientv3.WithFromKey(), clientv3.WithCountOnly())
		if err != nil {
			t.Fatal(err)
		}
		chunks, err = streamOf(t, cli, "m/0990", clientv3.WithFromKey(), clientv3.WithLimit(5))
		checkChunks(t, "from key, limit 5", chunks, err, hdr,
			fmt.Sprintf("n=5 m/0990=<100>..m/0994=<100> rev=%d more=true count=%d", r, fromKey.Count))
	})

	// 30 keys of 400 kB: 10 (4 MB, over twice the 1.5 MiB target), then 5s.
	big := putKVs(t, cli, "b", 30, 400_000)
	t.Run("large values", func(t *testing.T) {
		chunks, err := streamOf(t, cli, "b/", clientv3.WithPrefix())
		checkChunks(t, "30 keys of 400 kB", chunks, err, hdr,
			"n=10 b/0000=<400000>..b/0009=<400000>",
			"n=5 b/0010=<400000>..b/0014=<400000>",
			"n=5 b/0015=<400000>..b/0019=<400000>",
			"n=5 b/0020=<400000>..b/0024=<400000>",
			fmt.Sprintf("n=5 b/0025=<400000>..b/0029=<400000> rev=%d more=false count=30", big))
		chunks, err = streamOf(t, cli, "b/", clientv3.WithPrefix(), clientv3.WithLimit(22))
		checkChunks(t, "limit 22 of 30 large", chunks, err, hdr,
			"n=10 b/0000=<400000>..b/0009=<400000>",
			"n=5 b/0010=<400000>..b/0014=<400000>",
			"n=5 b/0015=<400000>..b/0019=<400000>",
			fmt.Sprintf("n=2 b/0020=<400000> b/0021=<400000> rev=%d more=true count=30", big))
	})

	// Revision reads see the range as of the revision; the header still
	// has the store's revision.
	t.Run("revision", func(t *testing.T) {
		// 25 keys, then all deleted and one rewritten.
		at := putKVs(t, cli, "h", 25, 1)
		if _, err := cli.Delete(ctx(t), "h/", clientv3.WithPrefix()); err != nil {
			t.Fatal(err)
		}
		resp, err := cli.Put(ctx(t), "h/0003", "new")
		if err != nil {
			t.Fatal(err)
		}
		cur := resp.Header.Revision
		h := clientv3.WithPrefix()
		chunks, err := streamOf(t, cli, "h/", h, clientv3.WithRev(at))
		checkChunks(t, "25 keys at an old revision", chunks, err, hdr,
			"n=10 h/0000=v..h/0009=v",
			fmt.Sprintf("n=15 h/0010=v..h/0024=v rev=%d more=false count=25", cur))
		chunks, err = streamOf(t, cli, "h/", h, clientv3.WithRev(at), clientv3.WithLimit(12))
		checkChunks(t, "limit 12 at an old revision", chunks, err, hdr,
			"n=10 h/0000=v..h/0009=v",
			fmt.Sprintf("n=2 h/0010=v h/0011=v rev=%d more=true count=25", cur))
		chunks, err = streamOf(t, cli, "h/", h, clientv3.WithRev(at), clientv3.WithCountOnly())
		checkChunks(t, "count only at an old revision", chunks, err, hdr, fmt.Sprintf("n=0 rev=%d more=false count=25", cur))
		chunks, err = streamOf(t, cli, "h/", h, clientv3.WithRev(at-1))
		checkChunks(t, "before the keys", chunks, err, hdr, fmt.Sprintf("n=0 rev=%d more=false count=0", cur))
		chunks, err = streamOf(t, cli, "h/", h)
		checkChunks(t, "now", chunks, err, hdr, fmt.Sprintf("n=1 h/0003=new rev=%d more=false count=1", cur))
		checkMergesToGet(t, "old revision", cli, "h/", h, clientv3.WithRev(at))

		chunks, err = streamOf(t, cli, "h/", h, clientv3.WithRev(cur+1))
		checkStreamErr(t, "future revision", chunks, err, rpctypes.ErrGRPCFutureRev)
		compactE(t, cli, cur)
		chunks, err = streamOf(t, cli, "h/", h, clientv3.WithRev(at))
		checkStreamErr(t, "compacted revision", chunks, err, rpctypes.ErrGRPCCompacted)
	})

	chunks, err := streamOf(t, cli, "")
	checkStreamErr(t, "empty key", chunks, err, rpctypes.ErrGRPCEmptyKey)
}

// settledStatus returns m's Status once it reports a storage version: a
// fresh etcd decides it a moment after it reports healthy (till then
// /version says "storage":"unknown" and Status has no storageVersion);
// Cairn has it from the start.
func settledStatus(t *testing.T, cli *clientv3.Client, m *Member) *clientv3.StatusResponse {
	t.Helper()
	var st *clientv3.StatusResponse
	eventually(t, readyTimeout, "a storage version in Status", func() (bool, string) {
		var err error
		if st, err = cli.Status(ctx(t), m.ClientURL); err != nil {
			t.Fatal(err)
		}
		return st.StorageVersion != "", fmt.Sprint(st)
	})
	return st
}

// getVersion returns GET /version's body and its keys in order.
func getVersion(t *testing.T, m *Member) (string, []string, map[string]string) {
	t.Helper()
	resp, err := http.Get(m.ClientURL + "/version")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /version: %s %q: %s", resp.Status, resp.Header.Get("Content-Type"), b)
	}
	keys, obj := jsonObjectKeys(t, string(b))
	vals := make(map[string]string)
	for _, k := range keys {
		var s string
		if err := json.Unmarshal(obj[k], &s); err != nil {
			t.Fatalf("/version %s: %v: %s", k, err, b)
		}
		vals[k] = s
	}
	return string(b), keys, vals
}

// jsonObjectKeys returns the keys of a JSON object in document order, and
// their raw values.
func jsonObjectKeys(t *testing.T, doc string) ([]string, map[string]json.RawMessage) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(doc))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not a JSON object: %s", doc)
	}
	var keys []string
	vals := make(map[string]json.RawMessage)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("%v: %s", err, doc)
		}
		k := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("%v: %s", err, doc)
		}
		keys = append(keys, k)
		vals[k] = v
	}
	return keys, vals
}

// isCairn tells Cairn from etcd by the "cairn" field of /version.
func isCairn(t *testing.T, m *Member) bool {
	_, _, v := getVersion(t, m)
	_, ok := v["cairn"]
	return ok
}

// majorMinor0 is "3.7.0" for "3.7.3".
func majorMinor0(v string) string {
	p := strings.SplitN(v, ".", 3)
	if len(p) < 2 {
		return v
	}
	return p[0] + "." + p[1] + ".0"
}

// TestAPICompatVersion: /version is etcd's {"etcdserver","etcdcluster",
// "storage"} in that order (etcd 3.7.3: {"etcdserver":"3.7.3",
// "etcdcluster":"3.7.0","storage":"3.7.0"}); Cairn adds "cairn" and
// "git" after them. storage is the storage version Status and snapshots report.
func TestAPICompatVersion(t *testing.T) {
	t.Parallel()
	c := NewCluster(t, 1)
	m := c.Members[0]
	st := settledStatus(t, c.Client(t), m)
	body, keys, v := getVersion(t, m)
	want := fmt.Sprintf(`{"etcdserver":%q,"etcdcluster":%q,"storage":%q`, st.Version, majorMinor0(st.Version), st.StorageVersion)
	if cairn, ok := v["cairn"]; ok {
		want += fmt.Sprintf(`,"cairn":%q`, cairn)
	}
	if git, ok := v["git"]; ok { // the build's git version, when it knows it
		want += fmt.Sprintf(`,"git":%q`, git)
	}
	want += "}"
	if body != want {
		t.Errorf("/version = %s, want %s (keys %v)", body, want, keys)
	}
	if st.StorageVersion != majorMinor0(st.Version) {
		t.Errorf("Status: storage version %q for server version %q, want %q", st.StorageVersion, st.Version, majorMinor0(st.Version))
	}
}

// statusJSON posts {} to /v3/maintenance/status and returns the body's
// keys in order and raw values.
func statusJSON(t *testing.T, m *Member) ([]string, map[string]json.RawMessage) {
	t.Helper()
	code, body := httpDo(t, m, http.MethodPost, "/v3/maintenance/status", `{}`)
	if code != http.StatusOK {
		t.Fatalf("POST /v3/maintenance/status: %d %s", code, body)
	}
	return jsonObjectKeys(t, body)
}

func jsonString(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("%s is not a JSON string: %v", raw, err)
	}
	return s
}

// TestAPICompatMaintenanceStatusJSON: the gateway's Status has etcd's
// fields, in etcd's order, with their meaning. etcd 3.7.3 on one fresh
// member answers
//
//	{"header":{...},"version":"3.7.3","dbSize":"20480","leader":"…",
//	 "raftIndex":"4","raftTerm":"2","raftAppliedIndex":"4",
//	 "dbSizeInUse":"16384","storageVersion":"3.7.0",
//	 "dbSizeQuota":"2147483648","downgradeInfo":{}}
//
// (isLearner false and no errors: omitted as zero values; downgradeInfo
// present and empty: no downgrade in progress).
func TestAPICompatMaintenanceStatusJSON(t *testing.T) {
	t.Parallel()
	c := NewCluster(t, 1)
	m := c.Members[0]
	st := settledStatus(t, c.Client(t), m)
	if st.DowngradeInfo == nil || st.DowngradeInfo.Enabled || st.DowngradeInfo.TargetVersion != "" {
		t.Errorf("gRPC Status downgrade info %v, want present and empty", st.DowngradeInfo)
	}
	_, _, versions := getVersion(t, m)

	keys, v := statusJSON(t, m)
	wantKeys := []string{"header", "version", "dbSize", "leader", "raftIndex", "raftTerm", "raftAppliedIndex",
		"dbSizeInUse", "storageVersion", "dbSizeQuota", "downgradeInfo"}
	if strings.Join(keys, " ") != strings.Join(wantKeys, " ") {
		t.Fatalf("status fields %v, want %v", keys, wantKeys)
	}
	hk, h := jsonObjectKeys(t, string(v["header"]))
	if strings.Join(hk, " ") != "cluster_id member_id revision raft_term" {
		t.Errorf("status header fields %v", hk)
	}
	num := func(raw json.RawMessage) int64 {
		n, err := strconv.ParseInt(jsonString(t, raw), 10, 64)
		if err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		return n
	}
	member := jsonString(t, h["member_id"])
	for _, check := range []struct {
		what string
		ok   bool
	}{
		{"header.cluster_id is the cluster's", jsonString(t, h["cluster_id"]) == fmt.Sprint(st.Header.ClusterId)},
		{"header.member_id is the member's", member == fmt.Sprint(st.Header.MemberId)},
		{"header.raft_term is raftTerm", jsonString(t, h["raft_term"]) == jsonString(t, v["raftTerm"])},
		{"header.revision is the store's", num(h["revision"]) >= 1},
		{"version is /version's etcdserver", jsonString(t, v["version"]) == versions["etcdserver"]},
		{"storageVersion is /version's storage", jsonString(t, v["storageVersion"]) == versions["storage"]},
		{"leader is the only member", jsonString(t, v["leader"]) == member},
		// Read one after the other: either may be ahead for a moment.
		{"raftIndex, raftAppliedIndex are indexes", num(v["raftIndex"]) > 0 && num(v["raftAppliedIndex"]) > 0},
		{"raftTerm is a term", num(v["raftTerm"]) > 0},
		{"dbSizeInUse fits in dbSize", num(v["dbSizeInUse"]) > 0 && num(v["dbSizeInUse"]) <= num(v["dbSize"])},
		{"dbSizeQuota is the 2 GiB default", num(v["dbSizeQuota"]) == 2<<30},
		{"downgradeInfo is empty", string(v["downgradeInfo"]) == "{}"},
	} {
		if !check.ok {
			t.Errorf("%s: %s", check.what, strings.Join(keysValues(keys, v), " "))
		}
	}
}

func keysValues(keys []string, v map[string]json.RawMessage) []string {
	var out []string
	for _, k := range keys {
		out = append(out, k+"="+string(v[k]))
	}
	return out
}

// TestAPICompatMaintenanceStatusJSONWithoutQuota: with
// --quota-backend-bytes=-1 (no quota) etcd reports dbSizeQuota "-1".
func TestAPICompatMaintenanceStatusJSONWithoutQuota(t *testing.T) {
	t.Parallel()
	c := NewClusterArgs(t, 1, "--quota-backend-bytes=-1")
	settledStatus(t, c.Client(t), c.Members[0])
	_, v := statusJSON(t, c.Members[0])
	if q := string(v["dbSizeQuota"]); q != `"-1"` {
		t.Errorf("dbSizeQuota = %s, want \"-1\"", q)
	}
}

// postAsCurl posts body to path as curl -d does (form content type).
func postAsCurl(t *testing.T, m *Member, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx(t), http.MethodPost, m.ClientURL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestAPICompatGatewayPrefixes: /v3beta/ is served as /v3/ by etcd 3.7.3
// and Cairn. /v3alpha/, which the handbook's curl examples use, gets 404
// "404 page not found" from etcd 3.7.3; Cairn serves it as /v3/.
func TestAPICompatGatewayPrefixes(t *testing.T) {
	t.Parallel()
	c := NewCluster(t, 1)
	m := c.Members[0]
	cli := c.Client(t)
	cairn := isCairn(t, m)

	// The handbook's example, as curl sends it: foo=bar.
	for i, prefix := range []string{"/v3", "/v3beta", "/v3alpha"} {
		code, body := postAsCurl(t, m, prefix+"/kv/put", fmt.Sprintf(`{"key":"Zm9v","value":"%s"}`, []string{"YmFy", "YmF6", "cXV4"}[i]))
		if prefix == "/v3alpha" && !cairn {
			if code != http.StatusNotFound || body != "404 page not found\n" {
				t.Errorf("etcd: POST %s/kv/put: %d %q, want 404", prefix, code, body)
			}
			continue
		}
		if code != http.StatusOK {
			t.Errorf("POST %s/kv/put: %d %s", prefix, code, body)
			continue
		}
		keys, _ := jsonObjectKeys(t, body)
		if strings.Join(keys, " ") != "header" {
			t.Errorf("POST %s/kv/put: %s", prefix, body)
		}
		get, err := cli.Get(ctx(t), "foo")
		if err != nil {
			t.Fatal(err)
		}
		if len(get.Kvs) != 1 || string(get.Kvs[0].Value) != []string{"bar", "baz", "qux"}[i] {
			t.Errorf("after POST %s/kv/put: %s", prefix, kvsString(get.Kvs))
		}
		code, body = postAsCurl(t, m, prefix+"/kv/range", `{"key":"Zm9v"}`)
		if _, v := jsonObjectKeys(t, body); code != http.StatusOK || jsonString(t, v["count"]) != "1" {
			t.Errorf("POST %s/kv/range: %d %s", prefix, code, body)
		}
	}
	if cairn {
		// Every service, not only KV, is under the alias.
		code, body := postAsCurl(t, m, "/v3alpha/maintenance/status", `{}`)
		if _, v := jsonObjectKeys(t, body); code != http.StatusOK || v["storageVersion"] == nil {
			t.Errorf("POST /v3alpha/maintenance/status: %d %s", code, body)
		}
	}
}

// A keys-only range carries neither the value nor the lease, in Range,
// in a Txn's range and in RangeStream, as etcd 3.7.3's.
func TestAPICompatKeysOnlyOmitsLease(t *testing.T) {
	c := NewCluster(t, 1)
	cli := c.Client(t)
	lease, err := cli.Grant(ctx(t), 100)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx(t), "ko", "v", clientv3.WithLease(lease.ID)); err != nil {
		t.Fatal(err)
	}
	check := func(what string, kvs []*mvccpb.KeyValue) {
		t.Helper()
		if len(kvs) != 1 || string(kvs[0].Key) != "ko" || kvs[0].Value != nil || kvs[0].Lease != 0 || kvs[0].Version != 1 {
			t.Fatalf("%s: %v; want key ko, version 1, no value, no lease", what, kvs)
		}
	}
	g, err := cli.Get(ctx(t), "ko", clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	check("Range", g.Kvs)
	tr, err := cli.Txn(ctx(t)).Then(clientv3.OpGet("ko", clientv3.WithKeysOnly())).Commit()
	if err != nil {
		t.Fatal(err)
	}
	check("Txn range", tr.Responses[0].GetResponseRange().Kvs)
	chunks, err := streamOf(t, cli, "ko", clientv3.WithKeysOnly())
	if err != nil || len(chunks) != 1 {
		t.Fatalf("RangeStream: %d chunks, %v", len(chunks), err)
	}
	check("RangeStream", chunks[0].Kvs)
	// Without keys-only the lease is there.
	if g, err := cli.Get(ctx(t), "ko"); err != nil || len(g.Kvs) != 1 || g.Kvs[0].Lease != int64(lease.ID) {
		t.Fatalf("plain Get: %v %v", g, err)
	}
}
