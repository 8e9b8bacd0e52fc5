package linearizability

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/anishathalye/porcupine"
)

// everyKind is a history using every op kind and every Response field.
func everyKind() []porcupine.Operation {
	return []porcupine.Operation{
		o(0, 1, 2, Get("x"), Response{Found: true, Value: "v\n\"<>", Revision: 3}),
		o(1, 1, 3, Put("x", "v\n\"<>"), at(3)),
		o(2, 4, 5, Delete("x"), Response{Deleted: 1, Revision: 4}),
		o(0, 6, 7, CAS("x", "a", "b"), failed()),
		o(0, 8, 9, CASAbsent("x", "b"), ok()),
		o(1, 10, 11, Range("a", "\x00"), kvs("x", "b")),
		o(1, 12, 13, RangePrefix("x"), kvs("x", "b")),
		o(2, 14, 15, Txn([]Cmp{{Key: "x", Value: "c"}, {Key: "y", Absent: true}},
			[]Write{{Key: "y", Value: "1"}, {Key: "x", Delete: true}}, []string{"x", "y"}), kvs("x", "b")),
		o(0, 16, 17, LeaseGrant(42), ok()),
		o(0, 18, 19, PutWithLease("z", "1", 42), ok()),
		u(3, 20, LeaseRevoke(42)),
	}
}

func TestHistoryJSONLinesRoundTrip(t *testing.T) {
	h := everyKind()
	var buf bytes.Buffer
	if err := WriteHistory(&buf, h); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(buf.String(), "\n"); n != len(h) {
		t.Fatalf("wrote %d lines for %d operations:\n%s", n, len(h), buf.String())
	}
	got, err := ReadHistory(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, h) {
		t.Fatalf("round trip changed the history:\ngot  %+v\nwant %+v", got, h)
	}
	res, err := Check(KVModel(), got, 0)
	if err != nil || !res.Ok() {
		t.Fatalf("read-back history: outcome %s, err %v; want Ok", res.Outcome, err)
	}
}

func TestHistoryLineFormat(t *testing.T) {
	var buf bytes.Buffer
	h := []porcupine.Operation{o(1, 10, 20, Get("a"), found("1")), u(0, 30, Put("a", "2"))}
	if err := WriteHistory(&buf, h); err != nil {
		t.Fatal(err)
	}
	want := `{"client":1,"call":10,"return":20,"op":{"kind":"get","key":"a"},"resp":{"found":true,"value":"1"}}
{"client":0,"call":30,"return":9223372036854775807,"op":{"kind":"put","key":"a","value":"2"},"resp":{"unknown":true}}
`
	if buf.String() != want {
		t.Fatalf("WriteHistory wrote\n%s\nwant\n%s", buf.String(), want)
	}
}

func TestSaveAndLoadHistoryFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.jsonl")
	h := everyKind()
	if err := SaveHistory(path, h); err != nil {
		t.Fatal(err)
	}
	got, err := LoadHistory(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, h) {
		t.Fatalf("file round trip changed the history")
	}
	if _, err := LoadHistory(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("LoadHistory of a missing file: %v, want os.ErrNotExist", err)
	}
}

func TestReadHistoryRejectsMalformedLines(t *testing.T) {
	cases := map[string]string{
		"not json":      "{\"client\":0}\nnot json\n",
		"unknown field": "{\"client\":0}\n{\"client\":0,\"bogus\":1}\n",
		"trailing data": "{\"client\":0}\n{\"client\":0} {}\n",
		"wrong type":    "{\"client\":0}\n{\"call\":\"soon\"}\n",
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := ReadHistory(strings.NewReader(in))
			if err == nil || !strings.Contains(err.Error(), "line 2") {
				t.Fatalf("ReadHistory error = %v, want one naming line 2", err)
			}
		})
	}
}

func TestWriteHistoryRejectsForeignOperations(t *testing.T) {
	err := WriteHistory(&bytes.Buffer{}, []porcupine.Operation{{Input: 1, Output: Response{}}})
	if !errors.Is(err, ErrInvalidHistory) {
		t.Fatalf("WriteHistory error = %v, want ErrInvalidHistory", err)
	}
}
