package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/anishathalye/porcupine"

	"github.com/cairnkv/cairn/linearizability"
)

// TestShortRunWithV2: with -v2 the members serve the v2 API and a v2
// workload runs beside the v3 one through kills and partitions; its
// history (final quorum reads on every member included) is linearizable
// under the v2 model, and the leaders expired TTL keys meanwhile.
func TestShortRunWithV2(t *testing.T) {
	code, out, dir := runShort(t, false, "-nodes", "3", "-duration", "20s", "-seed", "17", "-faults", "kill,partition", "-v2")
	if code != 0 {
		t.Fatalf("exit %d, want 0", code)
	}
	wantSummary(t, out,
		`(?m)^faults\s+\d+: .*kill \d+`,
		`(?m)^faults\s+\d+: .*partition/`,
		`(?m)^linearizable\s+PASS`,
		`(?m)^v2-final-reads\s+PASS`,
		`(?m)^v2-linearizable\s+PASS\s+\d{3,} operations on 8 keys`,
	)
	m := regexp.MustCompile(`v2 keys expired by the leaders' SYNCs: (\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Errorf("the run did not report the v2 expirations")
	} else if n, _ := strconv.Atoi(m[1]); n == 0 {
		t.Errorf("no v2 key expired during the run")
	}
	h, err := loadV2History(filepath.Join(dir, "v2-history.jsonl"))
	if err != nil || len(h) < 100 {
		t.Fatalf("v2-history.jsonl: %d operations, %v", len(h), err)
	}
	outcomes := map[string]int{}
	for _, o := range h {
		r := o.Output.(linearizability.V2Response)
		switch {
		case r.Unknown:
			outcomes["unknown"]++
		case r.ErrorCode != 0:
			outcomes[strconv.Itoa(r.ErrorCode)]++
		default:
			outcomes[string(o.Input.(linearizability.V2Op).Kind)]++
		}
	}
	for _, want := range []string{"v2-set", "v2-cas", "v2-get", "100", "101"} {
		if outcomes[want] == 0 {
			t.Errorf("no %s answer in the v2 history: %v", want, outcomes)
		}
	}
	noDataRaces(t, dir, "m0.log", "m1.log", "m2.log")
}

// TestV2CheckFindsACASThatIgnoredPrevIndex: the runner's v2 check fails a
// history in which a compare-and-swap on a stale prevIndex succeeded, and
// draws it.
func TestV2CheckFindsACASThatIgnoredPrevIndex(t *testing.T) {
	op := func(client int, call, ret int64, in linearizability.V2Op, out linearizability.V2Response) porcupine.Operation {
		return porcupine.Operation{ClientId: client, Call: call, Return: ret, Input: in, Output: out}
	}
	h := []porcupine.Operation{
		op(0, 0, 10, linearizability.V2Op{Kind: linearizability.V2Set, Key: "/k", Value: "a"}, linearizability.V2Response{Value: "a", ModifiedIndex: 3, Index: 3}),
		op(1, 20, 30, linearizability.V2Op{Kind: linearizability.V2Set, Key: "/k", Value: "b"}, linearizability.V2Response{Value: "b", ModifiedIndex: 4, Index: 4, HasPrev: true, PrevValue: "a", PrevIndex: 3}),
		op(0, 40, 50, linearizability.V2Op{Kind: linearizability.V2CAS, Key: "/k", Value: "c", PrevIndex: 3}, linearizability.V2Response{Value: "c", ModifiedIndex: 5, Index: 5, HasPrev: true, PrevValue: "b", PrevIndex: 4}),
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "v2-history.jsonl")
	if err := saveV2History(path, h); err != nil {
		t.Fatal(err)
	}
	back, err := loadV2History(path)
	if err != nil || len(back) != len(h) {
		t.Fatalf("history read back: %d operations, %v", len(back), err)
	}
	c := checkV2History(back, dir, 10_000)
	if c.Verdict != Fail || !regexp.MustCompile(`NOT linearizable \(key /k`).MatchString(c.Detail) {
		t.Fatalf("check %+v, want a failure naming /k", c)
	}
	if st, err := os.Stat(filepath.Join(dir, "v2-history.html")); err != nil || st.Size() == 0 {
		t.Fatalf("v2-history.html: %v", err)
	}
	if c := checkV2History(back[:2], dir, 10_000); c.Verdict != Pass {
		t.Fatalf("the history without the bad CAS: %+v", c)
	}
}

// TestDecodeV2Answer: etcd's v2 JSON answers become the model's.
func TestDecodeV2Answer(t *testing.T) {
	cas := linearizability.V2Op{Kind: linearizability.V2CAS, Key: "/k", Value: "new", PrevIndex: 7}
	for _, c := range []struct {
		name   string
		op     linearizability.V2Op
		status int
		index  string
		body   string
		want   *linearizability.V2Response
	}{
		{"cas", cas, 200, "8", `{"action":"compareAndSwap","node":{"key":"/k","value":"new","modifiedIndex":8,"createdIndex":2},"prevNode":{"key":"/k","value":"old","modifiedIndex":7,"createdIndex":2}}`,
			&linearizability.V2Response{Value: "new", ModifiedIndex: 8, Index: 8, HasPrev: true, PrevValue: "old", PrevIndex: 7}},
		{"compare failed", cas, 412, "9", `{"errorCode":101,"message":"Compare failed","cause":"[7 != 8]","index":9}`,
			&linearizability.V2Response{ErrorCode: 101, Index: 9}},
		{"delete", linearizability.V2Op{Kind: linearizability.V2Delete, Key: "/k"}, 200, "10", `{"action":"delete","node":{"key":"/k","modifiedIndex":10,"createdIndex":2},"prevNode":{"key":"/k","value":"x","modifiedIndex":9,"createdIndex":2}}`,
			&linearizability.V2Response{ModifiedIndex: 10, Index: 10, HasPrev: true, PrevValue: "x", PrevIndex: 9}},
		{"quorum get", linearizability.V2Op{Kind: linearizability.V2Get, Key: "/k"}, 200, "12", `{"action":"get","node":{"key":"/k","value":"x","modifiedIndex":9,"createdIndex":2}}`,
			&linearizability.V2Response{Value: "x", ModifiedIndex: 9, Index: 12}},
		{"raft internal error: unknown", cas, 500, "", `{"errorCode":300,"message":"Raft Internal Error","cause":"etcdserver: request timed out","index":0}`, nil},
		{"not JSON: unknown", cas, 502, "", `Bad Gateway`, nil},
	} {
		got := decodeV2Answer(c.op, c.status, c.index, []byte(c.body))
		if (got == nil) != (c.want == nil) || (got != nil && *got != *c.want) {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
}
