package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckImportsFollowsCairnPackagesOnly(t *testing.T) {
	graph := map[string]*Package{
		module + "/node":  {ImportPath: module + "/node", Imports: []string{"fmt", module + "/mvcc", "go.uber.org/zap"}},
		module + "/mvcc":  {ImportPath: module + "/mvcc", Imports: []string{module + "/shell"}},
		module + "/shell": {ImportPath: module + "/shell", Imports: []string{"net/http", "github.com/prometheus/client_golang/prometheus", "example.com/unlisted"}},
		"fmt":             {ImportPath: "fmt", Standard: true},
		"net/http":        {ImportPath: "net/http", Standard: true},
		// zap imports net/http itself; the walk must not descend into it.
		"go.uber.org/zap": {ImportPath: "go.uber.org/zap", Imports: []string{"net/http"}},
		"github.com/prometheus/client_golang/prometheus": {ImportPath: "github.com/prometheus/client_golang/prometheus"},
		"example.com/unlisted":                           {ImportPath: "example.com/unlisted"},
	}
	got := checkImports(graph, []string{module + "/node"})
	want := []string{
		"core imports example.com/unlisted, not in archlint's allowedThirdParty: " + module + "/node -> " + module + "/mvcc -> " + module + "/shell -> example.com/unlisted",
		"core imports github.com/prometheus/client_golang/prometheus: " + module + "/node -> " + module + "/mvcc -> " + module + "/shell -> github.com/prometheus/client_golang/prometheus",
		"core imports net/http: " + module + "/node -> " + module + "/mvcc -> " + module + "/shell -> net/http",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("violations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestForbidden(t *testing.T) {
	for path, want := range map[string]bool{
		"net": true, "net/http": true, "net/http/httptest": true, "os/signal": true,
		"google.golang.org/grpc": true, "google.golang.org/grpc/status": true,
		"github.com/prometheus/client_golang/prometheus": true,
		"net/url": false, "os": false, "google.golang.org/grpcx": false, "google.golang.org/protobuf/proto": false,
	} {
		if forbidden(path) != want {
			t.Errorf("forbidden(%q) = %v, want %v", path, !want, want)
		}
	}
}

func TestCheckClockFindsWallClockReads(t *testing.T) {
	dir := t.TempDir()
	src := `package p

import (
	clk "time"
)

func f() clk.Duration {
	start := clk.Now()
	<-clk.After(clk.Second)
	return clk.Since(start) + clk.Duration(1)
}
`
	if err := os.WriteFile(filepath.Join(dir, "p.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := checkClock(&Package{Dir: dir, GoFiles: []string{"p.go"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("got %d violations, want 3 (Now, After, Since):\n%s", len(got), strings.Join(got, "\n"))
	}
	for i, name := range []string{"clk.Now", "clk.After", "clk.Since"} {
		if !strings.Contains(got[i], name) {
			t.Errorf("violation %d = %q, want it to name %s", i, got[i], name)
		}
	}
}

// TestRepository is the rule itself: the core as it is today passes.
func TestRepository(t *testing.T) {
	out, err := check("../..")
	if err != nil {
		t.Fatal(err)
	}
	if len(out) > 0 {
		t.Fatalf("architecture rules broken:\n%s", strings.Join(out, "\n"))
	}
}
