package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseGlobal(t *testing.T) {
	var stderr bytes.Buffer
	g, rest, err := parseGlobal([]string{"-endpoints", "a:1, b:2", "-clients", "100", "-conns", "10",
		"-server-pid", "12,34", "-settle", "1s", "-json", "-progress=false", "put", "-total", "5"}, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(g.endpoints, []string{"a:1", "b:2"}) || g.clients != 100 || g.conns != 10 ||
		!slices.Equal(g.serverPIDs, []int{12, 34}) || g.settle != time.Second || !g.json {
		t.Fatalf("global %+v", g)
	}
	if !slices.Equal(rest, []string{"put", "-total", "5"}) {
		t.Fatalf("rest %v", rest)
	}
	if g.progress == &stderr {
		t.Fatal("-progress=false still writes progress")
	}
	for _, bad := range [][]string{
		{},                           // no workload
		{"-clients", "0", "put"},     // no clients
		{"-server-pid", "x", "put"},  // not a pid
		{"-endpoints", " , ", "put"}, // no endpoints
		{"-no-such-flag", "put"},     // unknown flag
	} {
		if _, _, err := parseGlobal(bad, &stderr); err == nil {
			t.Errorf("parseGlobal(%q) accepted", bad)
		}
	}
}

func TestRunRejectsBadWorkloadsAndFlags(t *testing.T) {
	for _, args := range [][]string{
		{"nosuch"},
		{"put", "-total", "0"},
		{"put", "-key-size", "1"},
		{"range", "-consistency", "x"},
		{"txn-put", "-txn-ops", "3", "-key-space-size", "2"},
		{"put", "-no-such-flag"},
		{"compare", "put"},
		{"compare", "-a", "x:1", "-a-bin", os.Args[0], "-b", "y:1", "put"},
		{"compare", "-a", "x:1", "-b", "y:1", "nosuch"},
		{"compare", "-a", "x:1", "-b-bin", "/no/such/binary", "put"},
		{"sweep", "put"},
		{"sweep", "-a", "x:1", "-values", "", "put"},
		{"sweep", "-a", "x:1", "-values", "0", "put"},
	} {
		var out, errb bytes.Buffer
		code := run(append([]string{"-endpoints", "127.0.0.1:1", "-progress=false"}, args...), &out, &errb)
		if code == 0 {
			t.Errorf("bench %q succeeded", args)
		}
		if errb.Len() == 0 {
			t.Errorf("bench %q said nothing on stderr", args)
		}
	}
}

func TestCompareSetupNamesTheTargets(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "cairn")
	if err := os.WriteFile(bin, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	a, b := declareTarget(fs, "a"), declareTarget(fs, "b")
	if err := fs.Parse([]string{"-a-bin", bin, "-b-bin", bin, "-b-flags", "--quota-backend-bytes 100  --x=y", "put", "-total", "3"}); err != nil {
		t.Fatal(err)
	}
	c, err := compareSetup(fs, a, b, 3, 2, false)
	if err != nil {
		t.Fatal(err)
	}
	if c.ta.name != "cairn-A" || c.tb.name != "cairn-B" || c.ta.members != 3 || c.ta.bin != bin {
		t.Fatalf("targets %+v %+v", c.ta, c.tb)
	}
	if !slices.Equal(c.tb.flags, []string{"--quota-backend-bytes", "100", "--x=y"}) || len(c.ta.flags) != 0 {
		t.Fatalf("server flags %q %q", c.ta.flags, c.tb.flags)
	}
	if !strings.Contains(c.ta.String(), "3 members") {
		t.Fatalf("target %s", c.ta)
	}
}

func TestSweepArgs(t *testing.T) {
	g := global{clients: 1, conns: 8}
	g2, args, err := sweepArgs(g, []string{"-total", "10"}, "clients", "4")
	if err != nil || g2.clients != 4 || g2.conns != 4 || len(args) != 2 {
		t.Fatalf("clients=4: %+v %v %v", g2, args, err)
	}
	g2, _, _ = sweepArgs(g, nil, "conns", "2")
	if g2.conns != 2 || g2.clients != 1 {
		t.Fatalf("conns=2: %+v", g2)
	}
	w := []string{"-total", "10"}
	_, args, err = sweepArgs(g, w, "prefill", "1m")
	if err != nil || !slices.Equal(args, []string{"-total", "10", "-prefill=1000000"}) {
		t.Fatalf("prefill=1m: %v %v", args, err)
	}
	if len(w) != 2 {
		t.Fatal("sweepArgs changed the workload's arguments")
	}
	_, args, _ = sweepArgs(g, nil, "val-size", "256")
	if !slices.Equal(args, []string{"-val-size=256"}) {
		t.Fatalf("val-size: %v", args)
	}
	if _, _, err := sweepArgs(g, nil, "clients", "1.5"); err == nil {
		t.Fatal("clients=1.5 accepted")
	}
}

func TestKeysAndValues(t *testing.T) {
	if k := keyName("b", 8, 42); k != "b0000042" {
		t.Errorf("keyName = %q", k)
	}
	if k := keyName("b", 3, 12345); k != "b12345" {
		t.Errorf("keyName of a number too long = %q", k)
	}
	k := keyOptions{keySize: 8, keySpace: 10, sequential: true}
	if k.key(13) != "b0000003" {
		t.Errorf("sequential key 13 of 10 = %q", k.key(13))
	}
	k.sequential = false
	for n := int64(0); n < 100; n++ {
		if key := k.key(n); key < "b0000000" || key > "b0000009" {
			t.Fatalf("random key %q outside the key space", key)
		}
	}
	// 4 reads to a write: exactly a fifth of the operations write.
	writes := 0
	for n := int64(0); n < 1000; n++ {
		if isWrite(n, 4) {
			writes++
		}
	}
	if writes != 200 {
		t.Errorf("%d writes of 1000 at 4:1", writes)
	}
	if !isWrite(0, 0) || !isWrite(1, 0) {
		t.Error("ratio 0: every operation writes")
	}
	v := counterValue(41, 32)
	if len(v) != 32 {
		t.Errorf("counter value of %d bytes", len(v))
	}
	if n, err := parseCounter([]byte(v)); err != nil || n != 41 {
		t.Errorf("parseCounter = %d, %v", n, err)
	}
	if _, err := parseCounter([]byte("junk")); err == nil {
		t.Error("parseCounter read junk")
	}
	if _, err := consistency("s"); err != nil {
		t.Error(err)
	}
	if o, err := consistency("l"); err != nil || len(o) != 0 {
		t.Error("linearizable reads have options", o, err)
	}
}
