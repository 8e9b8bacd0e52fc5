// Command archlint enforces the rules that keep Cairn's core simulatable
// (docs/architecture.md, "The simulatable core"). `make lint` runs it from
// the repository root; `go test ./scripts/archlint` runs the same check.
//
// Rule 1, imports: the core packages (node, node/wal, node/wal/etcdwal, mvcc,
// lease, auth, v2store) and every
// Cairn package they reach must not import gRPC, the network (net,
// net/http), os/signal or Prometheus, and may import only the third-party
// libraries listed in allowedThirdParty. The walk follows Cairn's own
// packages; a third-party library is judged as a whole when it is admitted
// to the list (raft, bbolt, zap, protobuf, btree and etcd's API protos start
// no goroutines on the core's behalf and do no I/O but what the core asks).
// Some of them import net or gRPC for features the core does not use
// (zap's HTTP level handler, the protos' gRPC service stubs), which is why
// the walk stops at them instead of descending.
//
// Rule 2, time: the core packages' non-test files must not read the wall
// clock or arm real timers (time.Now, time.Since, time.Until, time.After,
// time.AfterFunc, time.NewTimer, time.NewTicker, time.Tick, time.Sleep):
// time comes from a clock.Clock, so the simulator controls it.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

const module = "github.com/cairnkv/cairn"

// corePackages are the roots of rule 1 and the packages rule 2 reads.
var corePackages = []string{module + "/node", module + "/node/wal", module + "/node/wal/etcdwal", module + "/mvcc", module + "/lease", module + "/auth", module + "/v2store"}

// allowedThirdParty are the import path prefixes of the non-standard,
// non-Cairn libraries the core may use (see the package comment).
var allowedThirdParty = []string{
	"go.etcd.io/raft/v3",
	"go.etcd.io/bbolt",
	"go.etcd.io/etcd/api/v3/",
	"go.uber.org/zap",
	"google.golang.org/protobuf/",
	"github.com/google/btree",
}

func allowed(path string) bool {
	for _, p := range allowedThirdParty {
		if path == strings.TrimSuffix(p, "/") || strings.HasPrefix(path, strings.TrimSuffix(p, "/")+"/") {
			return true
		}
	}
	return false
}

// forbidden tells whether importing path breaks rule 1.
func forbidden(path string) bool {
	switch {
	case path == "net", strings.HasPrefix(path, "net/http"), path == "os/signal":
		return true
	case path == "google.golang.org/grpc", strings.HasPrefix(path, "google.golang.org/grpc/"):
		return true
	case strings.HasPrefix(path, "github.com/prometheus/"):
		return true
	}
	return false
}

// wallClock are the functions of package time rule 2 forbids.
var wallClock = map[string]bool{
	"Now": true, "Since": true, "Until": true, "After": true, "AfterFunc": true,
	"NewTimer": true, "NewTicker": true, "Tick": true, "Sleep": true,
}

// Package is what archlint needs of `go list -json`.
type Package struct {
	ImportPath string
	Dir        string
	GoFiles    []string
	Imports    []string
	Standard   bool
}

// checkImports walks Cairn's packages from roots and returns one violation
// per forbidden or unlisted import, with the chain of packages that leads to
// it.
func checkImports(graph map[string]*Package, roots []string) []string {
	var out []string
	seen := map[string]bool{}
	var walk func(path string, chain []string)
	walk = func(path string, chain []string) {
		if seen[path] {
			return
		}
		seen[path] = true
		chain = append(chain, path)
		pkg := graph[path]
		if pkg == nil {
			out = append(out, "package not loaded: "+path)
			return
		}
		imports := append([]string(nil), pkg.Imports...)
		sort.Strings(imports)
		for _, imp := range imports {
			via := strings.Join(chain, " -> ")
			dep := graph[imp]
			switch {
			case forbidden(imp):
				out = append(out, fmt.Sprintf("core imports %s: %s -> %s", imp, via, imp))
			case imp == module || strings.HasPrefix(imp, module+"/"):
				walk(imp, chain)
			case dep != nil && dep.Standard, dep == nil && !strings.Contains(strings.Split(imp, "/")[0], "."):
			case !allowed(imp):
				out = append(out, fmt.Sprintf("core imports %s, not in archlint's allowedThirdParty: %s -> %s", imp, via, imp))
			}
		}
	}
	for _, r := range roots {
		walk(r, nil)
	}
	return out
}

// checkClock parses a package's non-test files and reports every use of a
// forbidden function of package time.
func checkClock(pkg *Package) ([]string, error) {
	var out []string
	fset := token.NewFileSet()
	for _, name := range pkg.GoFiles {
		file := filepath.Join(pkg.Dir, name)
		f, err := parser.ParseFile(fset, file, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		timeName := ""
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p == "time" {
				timeName = "time"
				if imp.Name != nil {
					timeName = imp.Name.Name
				}
			}
		}
		if timeName == "" || timeName == "_" {
			continue
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if id, ok := sel.X.(*ast.Ident); ok && id.Name == timeName && wallClock[sel.Sel.Name] {
				out = append(out, fmt.Sprintf("%s: core reads the wall clock: %s.%s (take a clock.Clock)", fset.Position(sel.Pos()), timeName, sel.Sel.Name))
			}
			return true
		})
	}
	return out, nil
}

// load runs `go list -deps -json` on the core packages from dir.
func load(dir string) (map[string]*Package, error) {
	cmd := exec.Command("go", append([]string{"list", "-deps", "-json"}, corePackages...)...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	outb, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %v: %s", err, stderr.String())
	}
	graph := map[string]*Package{}
	dec := json.NewDecoder(bytes.NewReader(outb))
	for {
		var p Package
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			return nil, err
		}
		graph[p.ImportPath] = &p
	}
	return graph, nil
}

// check runs both rules on the module at dir.
func check(dir string) ([]string, error) {
	graph, err := load(dir)
	if err != nil {
		return nil, err
	}
	out := checkImports(graph, corePackages)
	for _, path := range corePackages {
		pkg := graph[path]
		if pkg == nil {
			return nil, fmt.Errorf("core package %s not found", path)
		}
		v, err := checkClock(pkg)
		if err != nil {
			return nil, err
		}
		out = append(out, v...)
	}
	return out, nil
}

func main() {
	out, err := check(".")
	if err != nil {
		fmt.Fprintln(os.Stderr, "archlint:", err)
		os.Exit(2)
	}
	for _, v := range out {
		fmt.Fprintln(os.Stderr, "archlint:", v)
	}
	if len(out) > 0 {
		os.Exit(1)
	}
}
