package linearizability

import (
	"errors"
	"testing"

	"github.com/anishathalye/porcupine"
)

// o builds one completed operation.
func o(client int, call, ret int64, in Op, out Response) porcupine.Operation {
	return porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret}
}

// u builds one write whose outcome is unknown, as Recorder.History does.
func u(client int, call int64, in Op) porcupine.Operation {
	return porcupine.Operation{ClientId: client, Input: in, Call: call, Output: Response{Unknown: true}, Return: Infinity}
}

func found(v string) Response            { return Response{Found: true, Value: v} }
func foundAt(v string, r int64) Response { return Response{Found: true, Value: v, Revision: r} }

func ok() Response      { return Response{Succeeded: true} }
func failed() Response  { return Response{} }
func absent() Response  { return Response{} }
func written() Response { return Response{} }

func at(r int64) Response { return Response{Revision: r} }

func kvs(pairs ...string) Response {
	var r Response
	for i := 0; i < len(pairs); i += 2 {
		r.KVs = append(r.KVs, KV{pairs[i], pairs[i+1]})
	}
	return r
}

type historyCase struct {
	name    string
	model   Model
	history []porcupine.Operation
	want    porcupine.CheckResult
}

func runCases(t *testing.T, cases []historyCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := Check(c.model, c.history, 0)
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if res.Outcome != c.want {
				t.Fatalf("%s model: got %s, want %s", c.model.Name, res.Outcome, c.want)
			}
		})
	}
}

func TestLinearizableHistoriesAreAccepted(t *testing.T) {
	runCases(t, []historyCase{
		{"overlapping writes and reads", RegisterModel(), []porcupine.Operation{
			o(0, 0, 10, Put("x", "1"), written()),
			o(1, 5, 15, Put("x", "2"), written()),
			o(2, 6, 8, Get("x"), found("2")),
			o(3, 12, 20, Get("x"), found("1")),
			o(2, 9, 11, Get("y"), absent()),
		}, porcupine.Ok},
		{"unknown write that took effect", RegisterModel(), []porcupine.Operation{
			o(0, 0, 5, Put("x", "1"), written()),
			u(1, 10, Put("x", "2")),
			o(2, 20, 30, Get("x"), found("2")),
			o(2, 40, 50, Get("x"), found("2")),
		}, porcupine.Ok},
		{"unknown write that never took effect", RegisterModel(), []porcupine.Operation{
			o(0, 0, 5, Put("x", "1"), written()),
			u(1, 10, Put("x", "2")),
			o(2, 20, 30, Get("x"), found("1")),
			o(2, 40, 50, Get("x"), found("1")),
		}, porcupine.Ok},
		{"unknown delete taking effect late", RegisterModel(), []porcupine.Operation{
			o(0, 0, 5, Put("x", "1"), written()),
			u(1, 6, Delete("x")),
			o(2, 20, 30, Get("x"), found("1")),
			o(2, 40, 50, Get("x"), absent()),
		}, porcupine.Ok},
		{"concurrent CAS, one wins", RegisterModel(), []porcupine.Operation{
			o(0, 0, 1, Put("x", "0"), written()),
			o(1, 2, 10, CAS("x", "0", "a"), ok()),
			o(2, 3, 9, CAS("x", "0", "b"), failed()),
			o(3, 11, 12, Get("x"), found("a")),
			o(3, 13, 14, CASAbsent("y", "new"), ok()),
			o(3, 15, 16, CASAbsent("y", "again"), failed()),
			o(3, 17, 18, Delete("y"), Response{Deleted: 1}),
			o(3, 19, 20, Delete("y"), Response{Deleted: 0}),
		}, porcupine.Ok},
		{"range sees a txn whole", KVModel(), []porcupine.Operation{
			o(0, 0, 10, Txn(nil, []Write{{Key: "a", Value: "1"}, {Key: "b", Value: "1"}}, nil), ok()),
			o(1, 1, 3, Range("a", "c"), kvs()),
			o(1, 5, 15, Range("a", "c"), kvs("a", "1", "b", "1")),
			o(1, 16, 17, RangePrefix("b"), kvs("b", "1")),
			o(1, 18, 19, Range("a", "\x00"), kvs("a", "1", "b", "1")),
			o(1, 20, 21, Range("b", ""), kvs("b", "1")),
		}, porcupine.Ok},
		{"txn compare, failure branch reads", KVModel(), []porcupine.Operation{
			o(0, 0, 1, Put("a", "1"), written()),
			o(0, 2, 3, Txn([]Cmp{{Key: "a", Value: "2"}}, []Write{{Key: "b", Value: "x"}}, []string{"a", "b"}), kvs("a", "1")),
			o(0, 4, 5, Txn([]Cmp{{Key: "a", Value: "1"}, {Key: "b", Absent: true}}, []Write{{Key: "b", Value: "x"}, {Key: "a", Delete: true}}, nil), ok()),
			o(0, 6, 7, Range("a", "\x00"), kvs("b", "x")),
			o(0, 8, 9, Txn([]Cmp{{Key: "a", Value: ""}}, nil, []string{"b"}), kvs("b", "x")),
		}, porcupine.Ok},
		{"exact revisions", KVModel(), []porcupine.Operation{
			o(0, 0, 1, Get("a"), Response{Revision: 1}),
			o(0, 2, 3, Put("a", "1"), at(2)),
			o(0, 4, 5, Put("b", "1"), at(3)),
			o(0, 6, 7, Get("a"), foundAt("1", 3)),
			o(0, 8, 9, Delete("c"), at(3)),
			o(0, 10, 11, Delete("a"), Response{Deleted: 1, Revision: 4}),
			o(0, 12, 13, CAS("b", "2", "3"), at(4)),
			o(0, 14, 15, Put("b", "2"), written()), // revision not recorded: still counted
			o(0, 16, 17, CAS("b", "2", "3"), Response{Succeeded: true, Revision: 6}),
			o(0, 18, 19, LeaseGrant(7), Response{Succeeded: true, Revision: 6}),
			o(0, 20, 21, LeaseRevoke(7), Response{Succeeded: true, Revision: 6}),
		}, porcupine.Ok},
		{"exact revisions with an unknown write that took effect", KVModel(), []porcupine.Operation{
			o(0, 0, 1, Put("a", "1"), at(2)),
			u(1, 2, Put("b", "1")),
			o(0, 3, 4, Put("a", "2"), at(4)),
		}, porcupine.Ok},
		{"monotone revisions per key", RegisterModel(), []porcupine.Operation{
			o(0, 0, 1, Put("x", "1"), at(5)),
			o(1, 0, 1, Put("y", "1"), at(6)),
			o(0, 2, 3, Get("x"), foundAt("1", 6)),
			o(0, 4, 5, Put("x", "2"), at(9)),
			o(0, 6, 7, Get("x"), foundAt("2", 9)),
		}, porcupine.Ok},
		{"lease revoke deletes attached keys only", LeaseModel(), []porcupine.Operation{
			o(0, 0, 1, LeaseGrant(5), ok()),
			o(0, 2, 3, PutWithLease("k", "v", 5), ok()),
			o(0, 4, 5, PutWithLease("j", "v", 5), ok()),
			o(0, 6, 7, Put("j", "w"), written()), // detaches j from lease 5
			o(1, 8, 9, Get("k"), found("v")),
			o(0, 10, 11, LeaseRevoke(5), ok()),
			o(1, 12, 13, Get("k"), absent()),
			o(1, 14, 15, Get("j"), found("w")),
			o(0, 16, 17, LeaseRevoke(5), failed()),
			o(0, 18, 19, PutWithLease("k", "v", 5), failed()),
			o(0, 20, 21, LeaseGrant(6), ok()),
			o(0, 22, 23, LeaseGrant(6), failed()),
		}, porcupine.Ok},
		{"lease expiry as an unknown revoke", LeaseModel(), []porcupine.Operation{
			o(0, 0, 1, LeaseGrant(5), ok()),
			o(0, 2, 3, PutWithLease("k", "v", 5), ok()),
			u(1, 4, LeaseRevoke(5)),
			o(2, 5, 6, Get("k"), found("v")),
			o(2, 7, 8, Get("k"), absent()),
		}, porcupine.Ok},
	})
}

func TestNonLinearizableHistoriesAreRejected(t *testing.T) {
	runCases(t, []historyCase{
		{"stale read after a completed write", RegisterModel(), []porcupine.Operation{
			o(0, 0, 1, Put("x", "1"), written()),
			o(0, 2, 3, Put("x", "2"), written()),
			o(1, 4, 5, Get("x"), found("1")),
		}, porcupine.Illegal},
		{"read of a value never written", RegisterModel(), []porcupine.Operation{
			o(0, 0, 10, Put("x", "1"), written()),
			o(1, 0, 10, Get("x"), found("zzz")),
		}, porcupine.Illegal},
		{"read of a deleted key", RegisterModel(), []porcupine.Operation{
			o(0, 0, 1, Put("x", "1"), written()),
			o(0, 2, 3, Delete("x"), Response{Deleted: 1}),
			o(1, 4, 5, Get("x"), found("1")),
		}, porcupine.Illegal},
		{"delete reporting a key that was absent", RegisterModel(), []porcupine.Operation{
			o(0, 0, 1, Delete("x"), Response{Deleted: 1}),
		}, porcupine.Illegal},
		{"lost CAS", RegisterModel(), []porcupine.Operation{
			o(0, 0, 1, Put("x", "0"), written()),
			o(1, 2, 5, CAS("x", "0", "a"), ok()),
			o(2, 3, 6, CAS("x", "0", "b"), ok()),
		}, porcupine.Illegal},
		{"CAS failing although it held", RegisterModel(), []porcupine.Operation{
			o(0, 0, 1, Put("x", "0"), written()),
			o(1, 2, 5, CAS("x", "0", "a"), failed()),
		}, porcupine.Illegal},
		{"range sees a partial txn", KVModel(), []porcupine.Operation{
			o(0, 0, 10, Txn(nil, []Write{{Key: "a", Value: "1"}, {Key: "b", Value: "1"}}, nil), ok()),
			o(1, 2, 8, Range("a", "c"), kvs("a", "1")),
		}, porcupine.Illegal},
		{"range misses a key outside its end", KVModel(), []porcupine.Operation{
			o(0, 0, 1, Put("a", "1"), written()),
			o(0, 0, 1, Put("c", "1"), written()),
			o(1, 2, 3, Range("a", "c"), kvs("a", "1", "c", "1")),
		}, porcupine.Illegal},
		{"txn failure branch reads a wrong value", KVModel(), []porcupine.Operation{
			o(0, 0, 1, Put("a", "1"), written()),
			o(0, 2, 3, Txn([]Cmp{{Key: "a", Value: "2"}}, []Write{{Key: "b", Value: "x"}}, []string{"a"}), kvs("a", "2")),
		}, porcupine.Illegal},
		{"txn value compare on a missing key succeeds", KVModel(), []porcupine.Operation{
			o(0, 0, 1, Txn([]Cmp{{Key: "a", Value: ""}}, []Write{{Key: "b", Value: "x"}}, nil), ok()),
		}, porcupine.Illegal},
		{"write revision skips one", KVModel(), []porcupine.Operation{
			o(0, 0, 1, Put("a", "1"), at(2)),
			o(0, 2, 3, Put("b", "1"), at(4)),
		}, porcupine.Illegal},
		{"read revision ahead of the writes", KVModel(), []porcupine.Operation{
			o(0, 0, 1, Put("a", "1"), at(2)),
			o(0, 2, 3, Get("a"), foundAt("1", 3)),
		}, porcupine.Illegal},
		{"no-op delete bumps the revision", KVModel(), []porcupine.Operation{
			o(0, 0, 1, Put("a", "1"), at(2)),
			o(0, 2, 3, Delete("b"), at(3)),
		}, porcupine.Illegal},
		{"revision goes backwards on a key", RegisterModel(), []porcupine.Operation{
			o(0, 0, 1, Put("x", "1"), at(5)),
			o(0, 2, 3, Get("x"), foundAt("1", 4)),
		}, porcupine.Illegal},
		{"two writes to a key with one revision", RegisterModel(), []porcupine.Operation{
			o(0, 0, 1, Put("x", "1"), at(5)),
			o(0, 2, 3, Put("x", "2"), at(5)),
		}, porcupine.Illegal},
		{"key visible after its lease was revoked", LeaseModel(), []porcupine.Operation{
			o(0, 0, 1, LeaseGrant(5), ok()),
			o(0, 2, 3, PutWithLease("k", "v", 5), ok()),
			o(0, 4, 5, LeaseRevoke(5), ok()),
			o(1, 6, 7, Get("k"), found("v")),
		}, porcupine.Illegal},
		{"put with a revoked lease succeeds", LeaseModel(), []porcupine.Operation{
			o(0, 0, 1, LeaseGrant(5), ok()),
			o(0, 2, 3, LeaseRevoke(5), ok()),
			o(0, 4, 5, PutWithLease("k", "v", 5), ok()),
		}, porcupine.Illegal},
		{"detached key deleted by revoke", LeaseModel(), []porcupine.Operation{
			o(0, 0, 1, LeaseGrant(5), ok()),
			o(0, 2, 3, PutWithLease("k", "v", 5), ok()),
			o(0, 4, 5, Put("k", "w"), written()),
			o(0, 6, 7, LeaseRevoke(5), ok()),
			o(1, 8, 9, Get("k"), absent()),
		}, porcupine.Illegal},
		{"violation in one of two lease groups", LeaseModel(), []porcupine.Operation{
			o(0, 0, 1, LeaseGrant(5), ok()),
			o(1, 0, 1, LeaseGrant(6), ok()),
			o(0, 2, 3, PutWithLease("a", "v", 5), ok()),
			o(1, 2, 3, PutWithLease("b", "v", 6), ok()),
			o(0, 4, 5, LeaseRevoke(5), ok()),
			o(0, 6, 7, Get("a"), absent()),
			o(1, 6, 7, Get("b"), absent()),
		}, porcupine.Illegal},
		{"old value read after another read saw the unknown write", RegisterModel(), []porcupine.Operation{
			o(0, 0, 5, Put("x", "1"), written()),
			u(1, 10, Put("x", "2")),
			o(2, 20, 30, Get("x"), found("2")),
			o(3, 40, 50, Get("x"), found("1")),
		}, porcupine.Illegal},
		{"read of an unknown write before it was invoked", RegisterModel(), []porcupine.Operation{
			o(0, 0, 5, Put("x", "1"), written()),
			o(2, 6, 8, Get("x"), found("2")),
			u(1, 10, Put("x", "2")),
		}, porcupine.Illegal},
	})
}

func TestCheckRejectsInvalidHistories(t *testing.T) {
	cases := []struct {
		name    string
		model   Model
		history []porcupine.Operation
	}{
		{"range in the register model", RegisterModel(), []porcupine.Operation{o(0, 0, 1, Range("a", "b"), kvs())}},
		{"txn in the lease model", LeaseModel(), []porcupine.Operation{o(0, 0, 1, Txn(nil, nil, nil), ok())}},
		{"lease op in the register model", RegisterModel(), []porcupine.Operation{o(0, 0, 1, LeaseGrant(1), ok())}},
		{"foreign input", KVModel(), []porcupine.Operation{{Input: "get x", Output: Response{}}}},
		{"foreign output", KVModel(), []porcupine.Operation{{Input: Get("x"), Output: "1"}}},
		{"empty key", KVModel(), []porcupine.Operation{o(0, 0, 1, Get(""), absent())}},
		{"lease zero", KVModel(), []porcupine.Operation{o(0, 0, 1, PutWithLease("k", "v", 0), ok())}},
		{"unknown kind", KVModel(), []porcupine.Operation{o(0, 0, 1, Op{Kind: "watch", Key: "k"}, ok())}},
		{"return before call", KVModel(), []porcupine.Operation{o(0, 5, 4, Get("k"), absent())}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Check(c.model, c.history, 0)
			if !errors.Is(err, ErrInvalidHistory) {
				t.Fatalf("Check error = %v, want ErrInvalidHistory", err)
			}
		})
	}
}

func TestPartitionGroupsConnectedKeysAndLeases(t *testing.T) {
	h := []porcupine.Operation{
		o(0, 0, 1, Put("a", "1"), written()),            // group a
		o(0, 0, 1, LeaseGrant(5), ok()),                 // group 5
		o(0, 0, 1, Get("b"), absent()),                  // group b
		o(0, 0, 1, PutWithLease("c", "1", 5), ok()),     // joins c to 5
		o(0, 0, 1, PutWithLease("a", "2", 5), ok()),     // joins a to 5, c
		o(0, 0, 1, Delete("b"), Response{}),             // group b
		o(0, 0, 1, Get("c"), found("1")),                // group a
		o(0, 0, 1, LeaseRevoke(6), Response{}),          // group 6
		o(0, 0, 1, CAS("b", "x", "y"), Response{}),      // group b
		o(0, 0, 1, Get("a"), found("2")),                // group a
		o(0, 0, 1, LeaseRevoke(5), Response{}),          // group a
		o(0, 0, 1, Put("d", "1"), Response{}),           // group d
		o(0, 0, 1, LeaseGrant(6), Response{}),           // group 6
		o(0, 0, 1, Get("d"), Response{}),                // group d
		o(0, 0, 1, PutWithLease("e", "1", 7), ok()),     // group e
		o(0, 0, 1, PutWithLease("e", "1", 6), failed()), // joins e, 7 and 6
	}
	want := [][]int{{0, 1, 3, 4, 6, 9, 10}, {2, 5, 8}, {7, 12, 14, 15}, {11, 13}}
	got := partitionByFootprint(h)
	if len(got) != len(want) {
		t.Fatalf("got %d groups, want %d", len(got), len(want))
	}
	for g := range want {
		if len(got[g]) != len(want[g]) {
			t.Fatalf("group %d has %d ops, want %v", g, len(got[g]), want[g])
		}
		for i, idx := range want[g] {
			if got[g][i].Input.(Op).String() != h[idx].Input.(Op).String() {
				t.Fatalf("group %d op %d = %s, want %s", g, i, got[g][i].Input, h[idx].Input)
			}
		}
	}
}

func TestDescriptionsAreReadable(t *testing.T) {
	m := KVModel().Porcupine
	cases := []struct {
		in   Op
		out  Response
		want string
	}{
		{Get("x"), found("1"), `get("x") → "1"`},
		{Get("x"), Response{Revision: 3}, `get("x") → absent @rev 3`},
		{CAS("x", "1", "2"), ok(), `cas("x", "1"→"2") → ok`},
		{CASAbsent("x", "2"), failed(), `cas("x", absent→"2") → failed`},
		{RangePrefix("a"), kvs("ab", "1"), `range(prefix "a") → {"ab":"1"}`},
		{Put("x", "1"), Response{Unknown: true}, `put("x", "1") → unknown`},
		{Txn([]Cmp{{Key: "a", Value: "1"}, {Key: "b", Absent: true}}, []Write{{Key: "a", Delete: true}}, []string{"a"}), kvs("a", "2"),
			`txn(if "a"=="1" && "b" absent then delete("a") else get "a") → failed {"a":"2"}`},
		{PutWithLease("k", "v", 5), ok(), `put("k", "v", lease 5) → ok`},
	}
	for _, c := range cases {
		if got := m.DescribeOperation(c.in, c.out); got != c.want {
			t.Errorf("DescribeOperation = %s, want %s", got, c.want)
		}
	}
	s := state{kvs: []entry{{"a", "1", 0}, {"b", "2", 5}}, leases: []int64{5, 9}, rev: 7}
	if got, want := m.DescribeState(s), `{"a":"1" "b":"2"(lease 5)} leases[5 9] rev 7`; got != want {
		t.Errorf("DescribeState = %s, want %s", got, want)
	}
}
